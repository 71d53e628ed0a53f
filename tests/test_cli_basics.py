"""The CLI shell: version, help with examples on every command, one-line errors, cheap start-up."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

import trialkit
from trialkit.cli import cli
from trialkit.cli._common import DesignDispatchGroup, _load, render


def _all_commands(group: click.Group, ctx: click.Context, path: str = "trialkit"):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield f"{path} {name}", cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, click.Context(cmd), f"{path} {name}")
        if isinstance(cmd, DesignDispatchGroup):
            for kind, spec in cmd.by_kind.items():
                yield f"{path} {name} FILE({kind})", _load(spec)


COMMANDS = list(_all_commands(cli, click.Context(cli)))


def test_version(run):
    result = run("--version")
    assert result.exit_code == 0
    assert trialkit.__version__ in result.output


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path, cmd):
    assert cmd.help, f"{path} has no help text"
    assert "Example:" in cmd.help, f"{path} help has no Example block"


def test_help_lists_the_command_groups(run):
    result = run("--help")
    assert result.exit_code == 0
    for name in ("design", "power", "samplesize", "simulate", "analyse", "trial", "gsd"):
        assert name in result.output


def test_usage_error_is_one_line_exit_2(run):
    result = run("design", "show")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error:")


def test_unknown_command_is_one_line_exit_2(run):
    result = run("powr")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1


def test_library_error_is_one_line_exit_2(run, tmp_path):
    result = run("design", "show", tmp_path / "missing.toml")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "cannot be read" in result.output and "Traceback" not in result.output


def test_dispatch_rejects_a_non_file(run):
    result = run("power", "no-such-file.toml")
    assert result.exit_code == 2
    assert "neither a design file nor a subcommand" in result.output


def test_import_does_not_load_heavy_libraries():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import trialkit.cli"],
        capture_output=True, text=True, check=True,
    ).stderr
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.splitlines()
              if "|" in line}
    for heavy in ("pymc", "pytensor", "arviz", "matplotlib"):
        assert heavy not in loaded, f"importing trialkit.cli loads {heavy}"


def test_help_does_not_load_heavy_libraries():
    code = ("import sys; from trialkit.cli import cli\n"
            "try:\n    cli.main(['--help'], prog_name='trialkit')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY:' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_render_formats():
    data = {"n": 3, "power": 0.123456789, "nested": {"a": 1},
            "effects": [{"term": "a", "power": 0.5}, {"term": "b", "power": float("nan")}]}
    import json

    parsed = json.loads(render(data, "json"))
    assert parsed["effects"][1]["power"] is None  # never a bare NaN in JSON
    table = render(data, "table")
    assert "nested.a" in table and "effects:" in table and "0.123457" in table
    csv_text = render(data, "csv")
    assert csv_text.splitlines()[0] == "term,power"
    assert render({"a": 1, "b": "x"}, "csv").splitlines() == ["key,value", "a,1", "b,x"]


def test_public_api_names_resolve_lazily():
    code = ("import sys, trialkit\n"
            "assert 'numpy' not in sys.modules  # import trialkit stays cheap\n"
            "names = sorted(trialkit._API)\n"
            "missing = [n for n in names if not callable(getattr(trialkit, n, None))]\n"
            "print(len(names), missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, missing = out.stdout.split(" ", 1)
    assert int(count) >= 20 and missing.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        getattr(trialkit, "nonexistent")
