"""Library errors carry no CLI words; the CLI names the flag of the parameter at fault."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from trialkit.adaptive.gsd import gsd_boundaries
from trialkit.cli._common import LazyGroup, flag_hint, param_flag
from trialkit.errors import DesignError, TrialkitError


def test_param_is_a_tuple_of_names():
    assert TrialkitError("x — y").param == ()
    assert TrialkitError("x — y", param="reps").param == ("reps",)
    assert TrialkitError("x — y", param=("a", "b")).param == ("a", "b")
    assert DesignError("f.toml", "k", 1, "bad", "fix").param == ()


def test_library_message_names_the_parameter_not_the_flag():
    with pytest.raises(TrialkitError) as info:
        gsd_boundaries(3, alpha=0.7)
    assert info.value.param == ("alpha",)
    assert "alpha = 0.7 is invalid" in str(info.value) and "--" not in str(info.value)


def _group() -> click.Group:
    @click.group(cls=LazyGroup)
    def cli() -> None:
        """Test group."""

    @cli.command("go")
    @click.argument("design_file", metavar="DESIGN")
    @click.option("--n-total", type=int)
    @click.option("--power", "target", type=float)
    def go(design_file, n_total, target) -> None:
        """Raise the error named by DESIGN."""
        raise {"one": TrialkitError("n_total = 1 is too small — use more", param="n_total"),
               "dest": TrialkitError("power 2 is invalid — use (0, 1)", param="power"),
               "two": TrialkitError("give one — not both", param=("n_total", "power")),
               "arg": TrialkitError("bad design — fix it", param="design_file"),
               "none": TrialkitError("plain — nothing to add"),
               "other": TrialkitError("x — y", param="not_an_option")}[design_file]

    return cli


@pytest.mark.parametrize(("which", "expected"), [
    ("one", "Error: n_total = 1 is too small — use more (option --n-total)"),
    ("dest", "Error: power 2 is invalid — use (0, 1) (option --power)"),
    ("two", "Error: give one — not both (options --n-total, --power)"),
    ("arg", "Error: bad design — fix it (argument DESIGN)"),
    ("none", "Error: plain — nothing to add"),
    ("other", "Error: x — y"),
])
def test_cli_appends_the_flag_of_the_parameter(which, expected):
    result = CliRunner().invoke(_group(), ["go", which])
    assert result.exit_code == 2
    assert result.output.strip() == expected
    assert "Traceback" not in result.output


def test_flag_lookup_on_a_real_command():
    from trialkit.cli.adaptive import gsd

    assert param_flag(gsd, "kind") == "--type"
    assert param_flag(gsd, "info_fractions") == "--info-fractions"
    assert param_flag(gsd, "missing") is None
    assert flag_hint(gsd, ("effect", "power")) == " (options --effect, --power)"
    assert flag_hint(None, ("effect",)) == ""


def test_gsd_cli_names_the_flag(run):
    result = run("gsd", "--looks", "3", "--alpha", "0.7")
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: alpha = 0.7 is invalid — use a one-sided level in "
                                     "(0, 0.5) (option --alpha)")
