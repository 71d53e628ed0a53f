"""Design-file validation: every error class, through the library and the CLI."""

from __future__ import annotations

import json
import re

import pytest

from trialkit.design import load_design, loads_design
from trialkit.errors import DesignError

FACTORIAL = """
kind = "factorial"
name = "mini"

[[factors]]
name = "human_voice"
cost = 2.0

[[factors]]
name = "goal_setting"

[[factors]]
name = "mood_tracking"

[analysis]
model_order = 2
alpha = 0.05

[sample]
n_total = 96

[outcomes.phq9]
type = "continuous"
sd = 5.0

[outcomes.phq9.effects]
human_voice = -1.0
"goal_setting:human_voice" = 0.5

[outcomes.retention]
type = "binary"
baseline = 0.45
"""


def test_minimal_factorial_loads():
    design = loads_design(FACTORIAL, "mini.toml")
    assert design.kind == "factorial"
    assert design.factor_names == ("human_voice", "goal_setting", "mood_tracking")
    assert design.conditions().shape == (8, 3)
    # interaction terms are normalised to the factors' file order
    assert design.outcomes[0].effects == {"human_voice": -1.0, "human_voice:goal_setting": 0.5}
    assert len(design.source.sha256) == 64


@pytest.mark.parametrize(
    ("old", "new", "key", "value"),
    [
        # misspelt key
        ("n_total = 96", "n_totl = 96", "sample.n_totl", "96"),
        # probability out of (0, 1)
        ("alpha = 0.05", "alpha = 1.2", "analysis.alpha", "1.2"),
        ("baseline = 0.45", "baseline = 0.0", "outcomes.retention.baseline", "0.0"),
        # duplicated factor name
        ('name = "mood_tracking"', 'name = "goal_setting"', "factors", "'goal_setting'"),
        # non-positive sizes
        ("n_total = 96", "n_total = 0", "sample.n_total", "0"),
        ("sd = 5.0", "sd = -1.0", "outcomes.phq9.sd", "-1.0"),
        # wrong type
        ("n_total = 96", 'n_total = "many"', "sample.n_total", "'many'"),
        ("n_total = 96", "n_total = 96.5", "sample.n_total", "96.5"),
        # unknown choice
        ('type = "continuous"', 'type = "ordinal"', "outcomes.phq9.type", "'ordinal'"),
        # effect naming an unknown factor
        ("human_voice = -1.0", "human_vioce = -1.0", "outcomes.phq9.effects.human_vioce", "-1.0"),
        # model order beyond k
        ("model_order = 2", "model_order = 4", "analysis.model_order", "4"),
        # missing required key
        ('kind = "factorial"', 'kind = "factorial"\n', "outcomes.phq9.sd", None),
        # unknown kind
        ('kind = "factorial"', 'kind = "crossover"', "kind", "'crossover'"),
        # generators naming unknown factors
        ("[analysis]", '[fraction]\ngenerators = ["C = AZ"]\n\n[analysis]', "fraction.generators",
         None),
    ],
)
def test_bad_values_name_file_key_and_value(old, new, key, value):
    text = FACTORIAL.replace(old, new, 1)
    if key == "outcomes.phq9.sd":
        text = text.replace("sd = 5.0\n", "")
    with pytest.raises(DesignError) as info:
        loads_design(text, "bad.toml")
    message = str(info.value)
    assert message.startswith("bad.toml: ")
    assert f"'{key}'" in message
    if value is not None:
        assert f"= {value}" in message
    assert " — " in message  # what is wrong — what to do
    assert "\n" not in message


def test_unknown_key_suggests_the_closest():
    with pytest.raises(DesignError, match=r"did you mean 'n_total'\?"):
        loads_design(FACTORIAL.replace("n_total", "n_totl"), "bad.toml")


def test_fewer_than_two_factors():
    text = re.sub(r"\[\[factors\]\]\nname = \"goal_setting\"\n\n\[\[factors\]\]\n"
                  r"name = \"mood_tracking\"\n", "", FACTORIAL)
    text = text.replace('"goal_setting:human_voice" = 0.5\n', "")
    with pytest.raises(DesignError, match="at least 2 factors"):
        loads_design(text, "bad.toml")


def test_generators_must_define_last_factors():
    text = FACTORIAL.replace("[analysis]", '[fraction]\ngenerators = ["A = BC"]\n\n[analysis]')
    with pytest.raises(DesignError, match="fraction.generators"):
        loads_design(text, "bad.toml")


def test_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(DesignError, match="not valid TOML"):
        loads_design("kind = ", "broken.toml")
    with pytest.raises(DesignError, match="cannot be read"):
        load_design(tmp_path / "nope.toml")


def test_adaptive_duplicate_arm_and_start_probabilities(designs_dir):
    text = (designs_dir / "three-arm-adaptive.toml").read_text()
    dup = text.replace('name = "full_package"', 'name = "core_package"')
    with pytest.raises(DesignError, match="duplicated"):
        loads_design(dup, "bad.toml")


def test_mrt_probability_out_of_range(designs_dir):
    text = (designs_dir / "checkin-prompts-mrt.toml").read_text()
    bad = text.replace("probability = 0.6", "probability = 1.2")
    with pytest.raises(DesignError, match=r"treatment\.probability' = 1\.2"):
        loads_design(bad, "bad.toml")


# -- through the CLI ---------------------------------------------------------------------------
def test_validate_examples_exit_zero(run, designs_dir):
    files = sorted(designs_dir.glob("*.toml"))
    assert len(files) >= 4
    result = run("design", "validate", *files)
    assert result.exit_code == 0, result.output
    assert result.output.count("valid") == len(files)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("n_total = 96", "n_totl = 96", "'sample.n_totl' = 96"),
        ("alpha = 0.05", "alpha = 1.2", "'analysis.alpha' = 1.2"),
        ('name = "mood_tracking"', 'name = "goal_setting"', "'factors' = 'goal_setting'"),
    ],
)
def test_validate_bad_file_exits_2_with_one_line(run, tmp_path, old, new, needle):
    bad = tmp_path / "bad.toml"
    bad.write_text(FACTORIAL.replace(old, new, 1))
    result = run("design", "validate", bad)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert str(bad) in lines[0] and needle in lines[0]
    assert "Traceback" not in result.output


def test_validate_reports_one_line_per_bad_file(run, tmp_path, designs_dir):
    bad1, bad2 = tmp_path / "a.toml", tmp_path / "b.toml"
    bad1.write_text(FACTORIAL.replace("alpha = 0.05", "alpha = 2"))
    bad2.write_text(FACTORIAL.replace("n_total = 96", "n_total = -3"))
    good = designs_dir / "app-components-factorial.toml"
    result = run("design", "validate", bad1, good, bad2)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 2


def test_show_fraction_json_lists_32_coded_conditions(run, designs_dir):
    result = run("design", "show", designs_dir / "app-components-fraction.toml", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "factorial"
    conditions = data["conditions"]
    assert len(conditions) == 32
    names = [f["name"] for f in data["factors"]]
    assert len(names) == 7
    codes = [[c[n] for n in names] for c in conditions]
    assert all(v in (-1, 1) for row in codes for v in row)
    assert len({tuple(r) for r in codes}) == 32
    # every column balanced; generated columns F = ABCD, G = ABDE
    for j in range(7):
        assert sum(row[j] for row in codes) == 0
    for row in codes:
        a, b, c, d, e, f, g = row
        assert f == a * b * c * d and g == a * b * d * e


def test_show_csv_writes_the_conditions(run, designs_dir):
    result = run("design", "show", designs_dir / "app-components-factorial.toml", "--format", "csv")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("condition,human_voice,")
    assert len(lines) == 1 + 32


def test_show_every_example_in_every_format(run, designs_dir):
    for path in sorted(designs_dir.glob("*.toml")):
        for fmt in ("table", "json", "csv"):
            result = run("design", "show", path, "--format", fmt)
            assert result.exit_code == 0, (path, fmt, result.output)
            assert result.output.strip()
