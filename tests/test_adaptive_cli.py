"""``trialkit simulate FILE`` / ``trialkit calibrate``: JSON contract and bad input (exit 2)."""

from __future__ import annotations

import json

import pytest

from trialkit.adaptive import calibrate_trial, setup_trial
from trialkit.design import loads_design

SMALL = """
kind = "adaptive"
name = "small_null"

[[arms]]
name = "a"
[[arms]]
name = "b"

[outcome]
type = "binary"

[looks]
data = [100, 200, 300]

[stopping]
superiority = 0.99
inferiority = 0.01

[posterior]
draws = 500
selection = "best"

[scenarios.null]
values = [0.3, 0.3]
"""


def test_simulate_json_contract_and_jobs_invariance(run, designs_dir, tmp_path):
    design = designs_dir / "three-arm-adaptive.toml"
    args = ["simulate", design, "--reps", "30", "--seed", "3", "--method", "exact",
            "--format", "json"]
    one = run(*args)
    assert one.exit_code == 0, one.output
    data = json.loads(one.output)
    m = data["metrics"]
    for key in ("size_mean", "size_sd", "prob_superior", "prob_equivalence", "prob_futility",
                "prob_conclusive", "prob_max", "prob_select", "rmse", "idp"):
        assert key in m, key
    assert set(m["prob_select"]) == {"arm_usual_app", "arm_core_package", "arm_full_package",
                                     "none"}
    assert "seconds" in data and data["scenario"] == "alternative"
    two = json.loads(run(*args, "--jobs", "2").output)
    assert two["metrics"] == m


def test_simulate_save_grows_and_refuses_other_seed(run, designs_dir, tmp_path):
    design = designs_dir / "three-arm-adaptive.toml"
    path = tmp_path / "saved.json"
    first = run("simulate", design, "--scenario", "null", "--reps", "10", "--seed", "2",
                "--method", "exact", "--out", path, "--format", "json")
    assert first.exit_code == 0, first.output
    grown = run("simulate", design, "--scenario", "null", "--reps", "20", "--seed", "2",
                "--method", "exact", "--out", path, "--format", "json")
    assert json.loads(grown.output)["reps"] == 20
    bad = run("simulate", design, "--scenario", "null", "--reps", "30", "--seed", "9",
              "--method", "exact", "--out", path)
    assert bad.exit_code == 2 and "seed 2" in bad.output


def test_saved_results_refuse_another_method_and_damaged_files(run, designs_dir, tmp_path):
    design = designs_dir / "three-arm-adaptive.toml"
    path = tmp_path / "saved.json"
    first = run("simulate", design, "--reps", "5", "--seed", "2", "--method", "exact",
                "--out", path, "--format", "json")
    assert first.exit_code == 0, first.output
    before = path.read_text()
    for reps in ("3", "10"):  # neither a slice nor a grown file of the other method
        other = run("simulate", design, "--reps", reps, "--seed", "2", "--method", "draws",
                    "--out", path)
        assert other.exit_code == 2
        lines = other.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and "'exact'" in lines[0]
    assert path.read_text() == before
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"format": "trialkit-adaptive-results/1"}')
    bad = run("simulate", design, "--reps", "5", "--out", damaged)
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert bad.output.strip().startswith("Error:") and "damaged" in bad.output


def test_list_selection_without_preferences_exit_2(run, designs_dir):
    result = run("simulate", designs_dir / "three-arm-adaptive.toml", "--reps", "5",
                 "--method", "exact", "--selection", "list")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "needs preferences" in lines[0]


def test_unknown_scenario_exit_2(run, designs_dir):
    result = run("simulate", designs_dir / "three-arm-adaptive.toml", "--scenario", "nope")
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error:") and "alternative, null" in result.output



@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('name = "usual_app"\n', 'name = "usual_app"\nstart_probability = 0.5\n',
         "arms.start_probability"),
        ("min_probs = [0.2, 0.2, 0.2]", "min_probs = [0.4, 0.4, 0.4]", "allocation.min_probs"),
        ("superiority = 0.99", "superiority = [" + ", ".join(["0.99"] * 17) + ", 0.995]",
         "stopping.superiority"),
        ("data = [300, 400,", "data = [400, 300,", "looks.data"),
        ("draws = 5000", "draws = 50", "posterior.draws"),
        ("equivalence_diff = 0.05", "equivalence_diff = 0.05\nfutility_prob = 0.9\n"
         "futility_diff = 0.05", "stopping.futility_prob"),
        ("inferiority = 0.01", "inferiority = [" + ", ".join(["0.01"] * 17) + ", 0.005]",
         "stopping.inferiority"),
        ("min_probs = [0.2, 0.2, 0.2]", "fixed_probs = [0.3, 0.3, 0.3]", "allocation.fixed_probs"),
        ("min_probs = [0.2, 0.2, 0.2]", "max_probs = [0.3, 0.3, 0.3]", "allocation.max_probs"),
    ],
)
def test_bad_design_exit_2_naming_the_key(run, designs_dir, tmp_path, old, new, key):
    text = (designs_dir / "three-arm-adaptive.toml").read_text()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1))
    result = run("simulate", bad, "--reps", "5")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and f"'{key}'" in lines[0]
    assert "Traceback" not in result.output


def test_calibration_reaches_target_reproducibly():
    spec = setup_trial(loads_design(SMALL, "small.toml"), method="exact")
    out = calibrate_trial(spec, target=0.1, reps=300, seed=1, tol=1e-3)
    again = calibrate_trial(spec, target=0.1, reps=300, seed=1, tol=1e-3)
    assert out == again
    assert abs(out["prob_superior"] - 0.1) <= 0.03
    assert out["inferiority"] == pytest.approx(1 - out["superiority"])
    check = out["check"]
    assert abs(check["prob_superior"] - 0.1) <= 4 * check["mc_se"] + 0.03
    assert check["ci_low"] <= check["prob_superior"] <= check["ci_high"]


def test_calibrate_cli(run, tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    result = run("calibrate", path, "--target", "0.1", "--reps", "100", "--seed", "1",
                 "--method", "exact", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert 0.9 <= data["superiority"] <= 0.9999 and data["evaluations"]
    bad = run("calibrate", path, "--target", "1.5", "--reps", "10")
    assert bad.exit_code == 2 and "--target" in bad.output


def test_simulate_plot_writes_png(run, designs_dir, tmp_path):
    png = tmp_path / "trials.png"
    result = run("simulate", designs_dir / "three-arm-adaptive.toml", "--reps", "20",
                 "--method", "exact", "--out", png, "--format", "json")
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(result.output)["plot"] == str(png)


def test_design_show_adaptive(run, designs_dir):
    result = run("design", "show", designs_dir / "three-arm-adaptive.toml", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [a["min_probability"] for a in data["arms"]] == [0.2, 0.2, 0.2]
    assert data["looks"][0] == {"look": 1, "data": 300, "randomised": 400, "superiority": 0.99,
                                "inferiority": 0.01, "equivalence_prob": 0.9,
                                "futility_prob": None, "softening": 1.0}
    assert {s["scenario"] for s in data["scenarios"]} >= {"alternative", "null"}


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("min_probs = [0.2, 0.2, 0.2]",
         "min_probs = [0.2, 0.2, 0.2]\nfixed_probs = [0.3, 0.3, 0.4]", "allocation.min_probs"),
        ("min_probs = [0.2, 0.2, 0.2]", 'control = "sqrt-based"', "allocation.control"),
        ("equivalence_diff = 0.05\n", "", "stopping.equivalence_diff"),
        ("inferiority = 0.01", "inferiority = 0.995", "stopping.inferiority"),
        ("softening", "softening", None),
        ('selection = "best"', 'selection = "control"', "posterior.selection"),
        ("values = [0.25, 0.20, 0.30]", "values = [0.25, 0.20, 1.30]",
         "scenarios.alternative.values"),
    ],
)
def test_more_design_errors_name_the_key(designs_dir, old, new, key):
    from trialkit.errors import DesignError

    text = (designs_dir / "three-arm-adaptive.toml").read_text()
    if key is None:  # softening per look must have one value per look
        text = text.replace("min_probs = [0.2, 0.2, 0.2]",
                            "min_probs = [0.2, 0.2, 0.2]\nsoftening = [0.5, 0.5]")
        key = "allocation.softening"
    else:
        assert old in text
        text = text.replace(old, new, 1)
    with pytest.raises(DesignError, match=key.replace(".", r"\.")):
        loads_design(text, "bad.toml")


def test_continuous_design_needs_sds():
    from trialkit.errors import DesignError

    text = SMALL.replace('type = "binary"', 'type = "continuous"')
    with pytest.raises(DesignError, match=r"scenarios\.null\.sds"):
        loads_design(text, "bad.toml")


def _with_posterior(text: str, posterior: str) -> str:
    """Replace the body of the [posterior] table (which is followed by another table)."""
    head, _, rest = text.partition("[posterior]")
    return head + "[posterior]\n" + posterior + "\n\n[" + rest.split("\n[", 1)[1]


def test_list_selection_from_the_design_file_and_the_cli(run, tmp_path):
    path = tmp_path / "list.toml"
    path.write_text(_with_posterior(SMALL, 'draws = 500\nselection = "list"\n'
                                           'preferences = ["b", "a"]'))
    listed = json.loads(run("simulate", path, "--reps", "40", "--seed", "3",
                            "--format", "json").output)["metrics"]
    best = json.loads(run("simulate", path, "--reps", "40", "--seed", "3", "--selection",
                          "best", "--format", "json").output)["metrics"]
    # under the null few trials stop for superiority: "list" selects arm b in the others,
    # "best" splits them between the arms
    assert listed["prob_select"]["arm_b"] > 0.85
    assert listed["prob_select"]["arm_b"] > best["prob_select"]["arm_b"]
    via_cli = json.loads(run("simulate", path, "--reps", "40", "--seed", "3", "--selection",
                             "list", "--prefer", "a", "--format", "json").output)["metrics"]
    assert via_cli["prob_select"]["arm_a"] > 0.85


@pytest.mark.parametrize(("posterior", "needle"), [
    ('selection = "list"', "'posterior.preferences' = []: is needed by selection 'list'"),
    ('selection = "best"\npreferences = ["a"]', "is unused with selection 'best'"),
    ('selection = "list"\npreferences = ["c"]', "'posterior.preferences' = 'c'"),
])
def test_bad_preferences_exit_2_naming_the_key(run, tmp_path, posterior, needle):
    path = tmp_path / "bad.toml"
    path.write_text(_with_posterior(SMALL, posterior))
    result = run("design", "validate", path)
    assert result.exit_code == 2 and needle in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_old_output_spellings_still_work_with_a_note(run, designs_dir, tmp_path):
    png, saved = tmp_path / "trials.png", tmp_path / "trials.json"
    result = run("simulate", designs_dir / "three-arm-adaptive.toml", "--reps", "5",
                 "--method", "exact", "--plot", png, "--save", saved, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Note: --save is deprecated and will be removed — use --out",
        "Note: --plot is deprecated and will be removed — use --out"]
    assert json.loads(result.stdout)["plot"] == str(png)
    assert png.read_bytes()[:4] == b"\x89PNG" and json.loads(saved.read_text())["n_rep"] == 5


def test_out_refuses_an_unknown_extension(run, designs_dir, tmp_path):
    result = run("simulate", designs_dir / "three-arm-adaptive.toml", "--reps", "5",
                 "--out", tmp_path / "trials.txt")
    assert result.exit_code == 2 and "not a figure file" in result.output


def test_trial_create_of_adaptive_design_runs_its_rules_live_or_says_it_does_not(
        run, designs_dir, tmp_path):
    """An adaptive design runs live adaptively; with a fixed method the create output says so."""
    db = f"sqlite:///{tmp_path / 't.db'}"
    result = run("trial", "create", designs_dir / "three-arm-adaptive.toml", "--db", db,
                 "--key-file", tmp_path / "t.key", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["method"] == "adaptive" and "notes" not in out
    assert "Note:" not in result.stderr
    fixed = tmp_path / "fixed.toml"
    fixed.write_text((designs_dir / "three-arm-adaptive.toml").read_text().replace(
        'name = "three_arm_adaptive"', 'name = "fixed"') + '\n[randomisation]\nmethod = "blocks"\n')
    result = run("trial", "create", fixed, "--db", db, "--key-file", tmp_path / "f.key",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["notes"]) == 1
    assert "[allocation] and [stopping] rules are not applied live" in out["notes"][0]
    assert "Note: the live trial allocates by fixed blocks" in result.stderr
    status = run("trial", "status", "fixed", "--db", db, "--format", "json")
    assert json.loads(status.stdout)["notes"] == out["notes"]
