"""Shared options: one spelling, type and default each; old spellings work with a note."""

from __future__ import annotations

import click
import pytest

from trialkit.cli import cli
from trialkit.cli._common import DEFAULT_REPS, DEFAULT_SEED, DesignDispatchGroup, _load

# `trial export --format` names the file format of data (csv, json, parquet), not the rendering
# of a report: it is the one --format that is not the shared option.
DATA_FORMAT = "trialkit trial export"


def _commands(group: click.Group, ctx: click.Context, path: str = "trialkit"):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield f"{path} {name}", cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, click.Context(cmd), f"{path} {name}")
        if isinstance(cmd, DesignDispatchGroup):
            for kind, spec in cmd.by_kind.items():
                yield f"{path} {name} FILE({kind})", _load(spec)


OPTIONS = [(path, p) for path, cmd in _commands(cli, click.Context(cli)) for p in cmd.params
           if isinstance(p, click.Option)]


@pytest.mark.parametrize(("flag", "kind", "default"), [
    ("--seed", click.IntRange, DEFAULT_SEED), ("--reps", click.IntRange, DEFAULT_REPS),
    ("--jobs", click.IntRange, 1), ("--format", click.Choice, "table")])
def test_shared_options_have_one_type_and_one_default(flag, kind, default):
    found = [(path, p) for path, p in OPTIONS if flag in p.opts and path != DATA_FORMAT]
    assert len(found) >= 3
    for path, p in found:
        assert isinstance(p.type, kind), path
        assert p.default == default, path


def test_output_files_are_spelt_out_or_out_dir():
    visible = {o for _, p in OPTIONS if not p.hidden for o in p.opts}
    assert {"--out", "--out-dir"} <= visible
    assert not visible & {"--output", "-o", "--save", "--plot"}
    hidden = {o for _, p in OPTIONS if p.hidden for o in p.opts}
    assert hidden == {"--save", "--plot", "--out", "--output", "-o"}  # deprecated spellings


def test_deprecated_plot_spelling_writes_the_figure_with_a_note(run, designs_dir, tmp_path):
    out = tmp_path / "mrt.png"
    res = run("samplesize", designs_dir / "checkin-prompts-mrt.toml", "--plot", out)
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == ("Note: --plot is deprecated and will be removed — use "
                                          "--out")
    assert out.read_bytes()[:4] == b"\x89PNG"
    bad = run("samplesize", designs_dir / "checkin-prompts-mrt.toml", "--out", tmp_path / "x.txt")
    assert bad.exit_code == 2 and "not a figure file" in bad.stderr
