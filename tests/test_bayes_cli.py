"""CLI wiring of the factorial analysis (prior draws in place of sampling), priors and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.bayes import decide
from trialkit.bayes.decision_study import individual_data
from trialkit.design import load_design, loads_design

DESIGN = "designs/app-components-factorial.toml"
FAST = ("--draws", "200", "--chains", "2", "--tune", "0")


@pytest.fixture(scope="module")
def design(pytestconfig):
    return load_design(pytestconfig.rootpath / DESIGN)


@pytest.fixture(scope="module")
def export(design, tmp_path_factory):
    """Return a trial export: ±1 factor columns, condition, outcomes and a baseline covariate."""
    cols = individual_data(design, "phq9_change", dict(design.outcomes[0].effects), 512, seed=11)
    ret = individual_data(design, "retention", dict(design.outcomes[1].effects), 512, seed=11)
    table = pd.DataFrame(cols)
    table["retention"] = ret["retention"].astype(int)
    table["baseline_phq9"] = np.random.default_rng(1).normal(14, 4, len(table)).round()
    path = tmp_path_factory.mktemp("export") / "export.csv"
    table.to_csv(path, index=False)
    return path


def _json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_analyse_json_contract_with_prior_draws(run, pytestconfig, export):
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export, "--engine",
              "prior", *FAST, "--mcid", "0.5", "--budget", "10", "--format", "json")
    out = _json(res)
    assert {"components", "combinations", "decision", "diagnostics"} <= set(out)
    comp = out["components"]
    assert [c["name"] for c in comp] == ["human_voice", "validating_statements",
                                         "personalised_notifications", "activity_choice",
                                         "goal_setting"]
    for c in comp:
        assert {"name", "effect_mean", "hdi_low", "hdi_high", "p_positive",
                "p_above_mcid"} <= set(c)
        assert c["hdi_low"] <= c["effect_mean"] <= c["hdi_high"]
        assert 0 <= c["p_above_mcid"] <= c["p_beneficial"] <= 1
    combos = out["combinations"]
    assert len(combos) == 32
    assert {"components_on", "expected_outcome", "hdi_low", "hdi_high", "p_best",
            "cost"} <= set(combos[0])
    assert sum(c["p_best"] for c in combos) == pytest.approx(1.0)
    costs = {tuple(c["components_on"]): c["cost"] for c in combos}
    assert costs[("human_voice", "goal_setting")] == 17.0
    dec = out["decision"]
    assert {"pev", "pev_within_budget", "screening"} <= set(dec)
    assert costs[tuple(dec["pev_within_budget"])] <= 10
    diag = out["diagnostics"]
    assert {"rhat_max", "ess_bulk_min", "divergences"} <= set(diag)
    # PEV is the argmax of the posterior expected outcome (lower is better here)
    best = min(combos, key=lambda c: c["expected_outcome"])
    assert dec["pev"] == best["components_on"]


def test_screening_matches_statsmodels_and_lists_disagreements(run, pytestconfig, export,
                                                               design):
    import statsmodels.api as sm

    from trialkit.factorial.model import model_matrix, model_terms

    out = _json(run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export,
                    "--method", "ols", "--format", "json"))
    table = pd.read_csv(export)
    x = model_matrix(table[list(design.factor_names)].to_numpy(), model_terms(5, 2))
    res = sm.OLS(table["phq9_change"].to_numpy(), x).fit()
    chosen = decide.screening_rule(res.params[None], res.pvalues[None], model_terms(5, 2), 5,
                                   0.05, "lower")[0]
    assert out["decision"]["screening"] == [f for f, c in zip(design.factor_names, chosen,
                                                              strict=True) if c]
    np.testing.assert_allclose([t["p_value"] for t in out["ols"]], res.pvalues, rtol=1e-9)
    np.testing.assert_allclose([t["coef"] for t in out["ols"]], res.params, rtol=1e-9)
    # classic effects (2 × coefficient) for contrasts only; the intercept is not a contrast
    assert out["ols"][0]["term"] == "intercept" and out["ols"][0]["effect"] is None
    np.testing.assert_allclose([t["effect"] for t in out["ols"][1:]], 2 * res.params[1:],
                               rtol=1e-9)
    both = _json(run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export,
                     "--engine", "prior", *FAST, "--format", "json"))
    d = both["decision"]
    listed = {x["component"] for x in d["disagreements"]}
    assert listed == set(d["pev"]) ^ set(d["screening"])


def test_multi_outcome_value_function_and_covariate(run, pytestconfig, export, tmp_path):
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export, "--engine", "fast",
              "--outcome", "phq9_change", "--outcome", "retention", "--weight", "retention=3",
              "--covariate", "baseline_phq9", "--out-dir", tmp_path / "res", "--format", "json")
    out = _json(res)
    vf = out["decision"]["value_function"]
    assert vf["weights"] == {"phq9_change": 0.25, "retention": 0.75}
    assert set(out["outcomes"]) == {"phq9_change", "retention"}
    assert "baseline_phq9" in [t["term"] for t in out["terms"]]
    # the value-function choice maximises the DAIVE-scaled weighted value
    e1 = np.array([c["expected_outcome"] for c in out["outcomes"]["phq9_change"]["combinations"]])
    e2 = np.array([c["expected_outcome"] for c in out["outcomes"]["retention"]["combinations"]])
    v = 0.25 * (e1.max() - e1) / np.ptp(e1) + 0.75 * (e2 - e2.min()) / np.ptp(e2)
    labels = [c["components_on"] for c in out["combinations"]]
    assert vf["choice"] == labels[int(np.argmax(v))]
    assert (tmp_path / "res" / "forest_phq9_change.png").stat().st_size > 1000
    assert (tmp_path / "res" / "combinations_retention.png").exists()
    assert json.loads((tmp_path / "res" / "report.json").read_text())["outcome"] == "phq9_change"


def test_null_data_cannot_separate_options(run, pytestconfig, design, tmp_path):
    cols = individual_data(design, "phq9_change", {}, 512, seed=3)
    path = tmp_path / "null.csv"
    pd.DataFrame(cols).to_csv(path, index=False)
    out = _json(run("analyse", "factorial", pytestconfig.rootpath / DESIGN, path, "--engine",
                    "fast", "--draws", "2000", "--format", "json"))
    p_best = np.array([c["p_best"] for c in out["combinations"]])
    assert p_best.max() < 0.5
    assert out["decision"]["separated"] is False
    assert "cannot separate" in out["decision"]["note"]
    assert out["decision"]["best_credible_set_size"] >= 8
    # with strong effects and many participants the data do separate the options
    effects = {"human_voice": -2.0, "validating_statements": -2.0, "activity_choice": -1.5,
               "personalised_notifications": -1.5, "goal_setting": 1.5}
    cols = individual_data(design, "phq9_change", effects, 4000, seed=3)
    pd.DataFrame(cols).to_csv(path, index=False)
    strong = _json(run("analyse", "factorial", pytestconfig.rootpath / DESIGN, path, "--engine",
                       "fast", "--format", "json"))["decision"]
    assert strong["separated"] is True and strong["best_credible_set_size"] <= 2
    assert strong["pev"] == ["human_voice", "validating_statements",
                             "personalised_notifications", "activity_choice"]


def test_prior_predictive_command(run, pytestconfig):
    out = _json(run("analyse", "prior-predictive", pytestconfig.rootpath / DESIGN,
                    "--draws", "4000", "--seed", "1", "--format", "json"))
    assert out["outcome"] == "phq9_change" and out["n_total"] == 512
    main = {e["term"]: e for e in out["effects"]}["human_voice"]
    # classic effect 2β with β ~ N(0, (σ·0.5)²), σ ~ sqrt(InvGamma(2, 25)): median ≈ 0
    assert abs(main["q50"]) < 0.3
    assert main["q95"] > 2 and main["q05"] < -2
    # trial SD ≈ σ·sqrt(1 + 5·0.5² + 10·E[τ²]) with median σ = sqrt(25 / 1.678), E[τ²] = 0.25²
    expected = np.sqrt(25 / 1.678) * np.sqrt(1 + 5 * 0.25 + 10 * 0.0625)
    assert out["trial_sd"]["q50"] == pytest.approx(expected, rel=0.1)
    binary = _json(run("analyse", "prior-predictive", pytestconfig.rootpath / DESIGN,
                       "--outcome", "retention", "--format", "json"))
    assert 0 < binary["trial_mean"]["q05"] < binary["trial_mean"]["q95"] < 1


def test_simulate_decision_cli(run, pytestconfig):
    out = _json(run("simulate", "decision", pytestconfig.rootpath / DESIGN, "--reps", "200",
                    "--seed", "1", "--scenario", "sparse", "--format", "json"))
    assert out["truth"]["best"] == ["human_voice", "validating_statements"]
    for rule in ("pev", "pev_within_budget", "screening"):
        r = out["rules"][rule]
        assert 0 <= r["p_correct"] <= 1 and r["p_correct_se"] > 0 and r["regret"] >= 0
        assert len(r["components"]) == 5


def test_design_priors_are_read_and_used(design, pytestconfig):
    from trialkit.bayes.spec import build_spec

    text = (pytestconfig.rootpath / DESIGN).read_text()
    text += ('\n[priors]\nmain_sd = 0.8\ninteractions = "fixed"\n'
             '[priors.retention]\nmain_sd = 2.0\ninteraction_sd = 0.1\n')
    d = loads_design(text, "x.toml")
    s1 = build_spec(d, "phq9_change")
    s2 = build_spec(d, "retention")
    assert s1.prior_scale[1] == 0.8 and s1.interactions == "fixed"
    assert s2.prior_scale[1] == 2.0 and s2.interaction_sd == 0.1 and s2.interactions == "fixed"
    assert build_spec(design, "phq9_change").interactions == "hierarchical"


@pytest.mark.parametrize("extra, message", [
    ('[priors]\nmain_sd = -1\n', "priors.main_sd"),
    ('[priors]\nmian_sd = 1\n', "did you mean 'main_sd'"),
    ('[priors]\ninteractions = "horseshoe"\n', "hierarchical, fixed"),
    ('[priors.nonexistent]\nmain_sd = 1\n', "not an outcome"),
])
def test_bad_priors_exit_2(run, pytestconfig, tmp_path, extra, message):
    path = tmp_path / "d.toml"
    path.write_text((pytestconfig.rootpath / DESIGN).read_text() + "\n" + extra)
    res = run("analyse", "prior-predictive", path)
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("Error: ")
    assert message in res.stderr


def _bad(tmp_path, export, change):
    table = pd.read_csv(export)
    change(table)
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("change, args, message", [
    (lambda t: t.pop("goal_setting"), (), "no column for factor(s) goal_setting"),
    (lambda t: t.__setitem__("human_voice", (t["human_voice"] > 0).astype(int)), (),
     "factor column 'human_voice' is coded {0, 1}"),
    (lambda t: t.__setitem__("phq9_change", t["phq9_change"].where(t.index > 2)), (),
     "'phq9_change' has 3 missing values"),
    (lambda t: None, ("--budget", "-1"), "below the cheapest option"),
    (lambda t: None, ("--outcome", "nope"), "not in the design"),
    (lambda t: None, ("--covariate", "age"), "no covariate column 'age'"),
    (lambda t: t.__setitem__("retention", 2), ("--outcome", "retention"),
     "values other than 0 and 1"),
    (lambda t: None, ("--weight", "retention"), "OUTCOME=NUMBER"),
    (lambda t: t.__setitem__("phq9_change", t["phq9_change"].where(t.index > 0, np.inf)), (),
     "'phq9_change' has 1 infinite values"),
    (lambda t: t.__setitem__("phq9_change", 1.0), (), "same value in every row"),
    (lambda t: None, ("--covariate", "phq9_change"), "is a factor or an analysed outcome"),
    (lambda t: None, ("--budget", "nan"), "budget nan is not a number"),
    (lambda t: None, ("--mcid", "nan"), "mcid = nan is not a number — give the MCID as a "
     "positive size (option --mcid)"),
])
def test_bad_input_exit_2_one_line(run, pytestconfig, tmp_path, export, change, args, message):
    path = _bad(tmp_path, export, change)
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, path, "--engine", "prior",
              *FAST, *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("Error: ")
    assert message in res.stderr


def test_bad_simulation_input_exit_2(run, pytestconfig):
    res = run("simulate", "decision", pytestconfig.rootpath / DESIGN, "--reps", "0")
    assert res.exit_code == 2 and res.stderr.startswith("Error: ")
    res = run("simulate", "decision", pytestconfig.rootpath / DESIGN, "--budget", "-3")
    assert res.exit_code == 2 and "below the cheapest option" in res.stderr
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, "missing.csv")
    assert res.exit_code == 2 and "no such file" in res.stderr


def test_parquet_input_and_csv_output(run, pytestconfig, export, tmp_path):
    table = pd.read_csv(export).drop(columns="condition")
    path = tmp_path / "export.parquet"
    table.to_parquet(path)
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, path, "--engine", "fast",
              "--seed", "2", "--format", "csv")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("name,effect_mean,hdi_low,hdi_high,p_positive")
    assert len(lines) == 6
    again = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export, "--engine",
                "fast", "--seed", "2", "--format", "csv")
    assert again.stdout == res.stdout  # same data, same seed: same report


def test_wrong_design_kind_and_too_many_factors_exit_2(run, pytestconfig, tmp_path, export):
    res = run("simulate", "decision", pytestconfig.rootpath / "designs/checkin-prompts-mrt.toml")
    assert res.exit_code == 2 and "needs a factorial design" in res.stderr
    text = (pytestconfig.rootpath / DESIGN).read_text()
    extra = "".join(f'\n[[factors]]\nname = "extra{i}"\n' for i in range(8))
    path = tmp_path / "big.toml"
    text = text.replace("\n[analysis]", extra + "\n[analysis]", 1)
    path.write_text(text[:text.index("[randomisation]")])
    res = run("simulate", "decision", path, "--reps", "10")
    assert res.exit_code == 2 and "at most 12 factors" in res.stderr
    assert res.stderr.count("\n") == 1


@pytest.mark.parametrize("outcome", ["phq9_change", "retention"])
def test_null_p_best_uniform_over_trials_and_rarely_separated(design, outcome):
    # Acceptance (issue 6): with all effects zero, P(best) is near uniform and the tool says the
    # data cannot separate the options. In one trial the noise favours some combinations; over
    # trials every combination is equally likely to be best (the null is symmetric under
    # switching any factor's coding), so the average P(best) is uniform.
    from trialkit.bayes.analyse import analyse_factorial

    p_best, separated, credible = [], [], []
    for i in range(200):
        table = pd.DataFrame(individual_data(design, outcome, {}, 512, seed=500 + i))
        res = analyse_factorial(design, table, outcomes=(outcome,), method="bayes",
                                engine="fast", draws=1000, chains=1, seed=i)
        dec = res["decision"]
        p_best.append([c["p_best"] for c in res["combinations"]])
        separated.append(dec["separated"])
        credible.append(dec["best_credible_set_size"])
        assert ("cannot separate" in dec["note"]) is (not dec["separated"])
    mean = np.array(p_best).mean(0)
    # 200 trials: SE of each average ≈ 0.003; allow ±0.02 around 1/32 and a small total distance
    assert np.abs(mean - 1 / 32).max() < 0.02
    assert 0.5 * np.abs(mean - 1 / 32).sum() < 0.1
    # the 0.5 threshold declares a null trial separated rarely
    assert np.mean(separated) < 0.05
    assert np.median(credible) >= 8


def test_null_note_in_the_default_table_output(run, pytestconfig, design, tmp_path):
    path = tmp_path / "null.csv"
    pd.DataFrame(individual_data(design, "phq9_change", {}, 512, seed=3)).to_csv(path,
                                                                               index=False)
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, path, "--engine", "fast")
    assert res.exit_code == 0, res.output
    note = next(line for line in res.stdout.splitlines() if line.startswith("decision.note"))
    assert "the data cannot separate the options" in note
    assert "decision.separated" in res.stdout and "False" in res.stdout


def test_budget_decisions_through_the_cli(run, pytestconfig, export):
    def decision(*args):
        out = _json(run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export,
                        "--engine", "fast", "--method", "bayes", "--seed", "4", *args,
                        "--format", "json"))
        costs = {tuple(c["components_on"]): c["cost"] for c in out["combinations"]}
        return out["decision"], costs

    free, costs = decision()
    assert free["pev_within_budget"] == free["pev"]
    large, _ = decision("--budget", "1000")
    assert large["pev_within_budget"] == large["pev"] == free["pev"]
    assert costs[tuple(free["pev"])] > 5  # so that a budget of 5 binds
    tight, _ = decision("--budget", "5")
    assert costs[tuple(tight["pev_within_budget"])] <= 5
    assert decision("--budget", "0")[0]["pev_within_budget"] == []


def test_component_probabilities_follow_the_better_direction(design):
    from trialkit.bayes.analyse import _component_rows
    from trialkit.bayes.spec import build_spec

    # classic effects (2 × coefficient) spread evenly over (-1, 3) for every component
    effects = np.linspace(-1, 3, 40001)[1:-1]
    for outcome, beneficial, above in (("phq9_change", 0.25, 0.125),
                                       ("retention", 0.75, 0.625)):
        spec = build_spec(design, outcome)
        b = np.zeros((len(effects), spec.n_coef))
        b[:, spec.main_index] = effects[:, None] / 2
        rows = _component_rows(spec, b, mcid=0.5)
        for row in rows:
            assert row["effect_mean"] == pytest.approx(1.0)
            assert row["p_positive"] == pytest.approx(0.75, abs=1e-3)
            assert row["p_beneficial"] == pytest.approx(beneficial, abs=1e-3)
            assert row["p_above_mcid"] == pytest.approx(above, abs=1e-3)
            assert row["hdi_high"] - row["hdi_low"] == pytest.approx(0.95 * 4, abs=1e-3)
        assert _component_rows(spec, b, mcid=None)[0]["p_above_mcid"] is None


def test_convergence_warning_exit_0_and_strict_exit_1(run, pytestconfig, export):
    # ten prior draws per chain fail the ESS limit: a warning, and exit 1 only with --strict
    args = ("analyse", "factorial", pytestconfig.rootpath / DESIGN, export, "--engine", "prior",
            "--draws", "10", "--chains", "2", "--tune", "0", "--method", "bayes",
            "--covariate", "baseline_phq9", "--format", "json")
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert "Warning: convergence diagnostics failed" in res.stderr
    out = json.loads(res.stdout)
    assert out["diagnostics"]["ok"] is False
    assert any("bulk ESS" in p for p in out["diagnostics"]["problems"])
    assert out["terms"][-1]["term"] == "baseline_phq9"
    strict = run(*args, "--strict")
    assert strict.exit_code == 1
    assert "Warning: convergence diagnostics failed" in strict.stderr


def test_bad_decision_simulation_inputs_exit_2(run, pytestconfig, tmp_path):
    res = run("simulate", "decision", pytestconfig.rootpath / DESIGN, "--budget", "nan")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "budget nan is not a number" in res.stderr
    # a resolution IV fraction cannot estimate two-factor interactions
    text = (pytestconfig.rootpath / "designs/app-components-fraction.toml").read_text()
    path = tmp_path / "fraction2.toml"
    path.write_text(text.replace("model_order = 1", "model_order = 2"))
    res = run("simulate", "decision", path, "--reps", "5")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "cannot estimate the model of order 2" in res.stderr


def test_scenarios_come_from_the_design_file(run, pytestconfig):
    path = pytestconfig.rootpath / DESIGN
    res = run("simulate", "decision", path, "--scenario", "voice_only", "--reps", "50",
              "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["truth"]["effects"] == {"human_voice": -1.0}
    assert out["truth"]["best"] == ["human_voice"]
    bad = run("simulate", "decision", path, "--scenario", "nope", "--reps", "5")
    assert bad.exit_code == 2
    assert ("use one of: voice_only, null, sparse, antagonistic, assumed (option --scenario)"
            in bad.stderr)
    power = run("power", path, "--simulate", "--scenario", "voice_only", "--reps", "50",
                "--format", "json")
    assert power.exit_code == 0, power.output
    effects = {e["term"]: e for e in json.loads(power.stdout)["effects"]}
    assert effects["human_voice"]["effect"] == -1.0 and effects["goal_setting"]["effect"] == 0
    assert effects["human_voice"]["analytic_power"] is None
    no_sim = run("power", path, "--scenario", "voice_only")
    assert no_sim.exit_code == 2 and "add --simulate" in no_sim.stderr
