"""Decision simulation: how often the decision rules pick the truly best combination.

The rules are PEV (with and without budget) and classic screening; the truths are named
scenarios.

Each replicate draws one trial: participants are allocated to the design's conditions in equal
numbers (the remainder to randomly chosen conditions), drop out at random with the design's
dropout rate, and their outcomes follow the scenario's truth. The analysis uses the cell-level
sufficient statistics, which for these models carry all the information in the data, so the
fast-path posteriors (:mod:`trialkit.bayes.fast`) are exact functions of the simulated trial.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import special

from trialkit.bayes import decide, fast
from trialkit.bayes.spec import ModelSpec, build_spec
from trialkit.engine import replicate_rngs
from trialkit.errors import TrialkitError
from trialkit.factorial.model import model_matrix, outcome_coefficients
from trialkit.factorial.scenarios import SCENARIOS, scenario_effects
from trialkit.results import Report

#: Replicates analysed together (the engine's batch).
BATCH = 200


def truth_vector(design, outcome, effects: dict[str, float]) -> tuple[list, np.ndarray]:
    """All terms of the saturated model and their true effect-coded coefficients.

    Continuous: the intercept is the outcome's ``mean``; binary: it is set so that the success
    probability with every component off equals the outcome's ``baseline``.
    """
    from trialkit.factorial.model import model_terms

    coefs = outcome_coefficients(outcome, design.factor_names, effects)
    terms = model_terms(design.k, design.k)
    return terms, np.array([coefs.get(t, 0.0) for t in terms])


def true_expected(outcome_type: str, x_true: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Return true expected outcome of rows of ``x_true`` (outcome units, or probability)."""
    eta = x_true @ beta
    return special.expit(eta) if outcome_type == "binary" else eta


def draw_cells(
    rng: np.random.Generator, cell_mu: np.ndarray, n_total: int, dropout: float,
    outcome_type: str, sd: float | None,
) -> dict[str, np.ndarray]:
    """One trial's cell-level data: counts, and sums and sums of squares (or successes)."""
    c = len(cell_mu)
    alloc = np.full(c, n_total // c)
    extra = n_total - alloc.sum()
    if extra:
        alloc[rng.choice(c, size=extra, replace=False)] += 1
    n = rng.binomial(alloc, 1.0 - dropout) if dropout > 0 else alloc
    if outcome_type == "binary":
        return {"n": n, "succ": rng.binomial(n, special.expit(cell_mu))}
    assert sd is not None
    sums = rng.normal(n * cell_mu, sd * np.sqrt(n))
    within = sd**2 * rng.chisquare(np.maximum(n - 1, 1)) * (n > 1)
    sq = within + np.where(n > 0, sums**2 / np.maximum(n, 1), 0.0)
    return {"n": n, "sum": sums, "sumsq": sq}


def _analyse_chunk(spec: ModelSpec, x: np.ndarray, data: list[dict], alpha: float):
    """Fast-path posterior expected values of every combination and screening estimates."""
    xc = spec.combination_matrix()
    n = np.array([d["n"] for d in data], float)  # (R, C)
    if spec.family == "normal":
        s = np.array([d["sum"] for d in data])
        xtx = np.einsum("ci,rc,cj->rij", x, n, x)
        xty = s @ x
        yty = np.array([d["sumsq"].sum() for d in data])
        ntot = n.sum(1)
        post = fast.normal_posterior(spec, xtx, xty, yty, ntot)
        est, pval = fast.ols(xtx, xty, yty, ntot)
    else:
        succ = np.array([d["succ"] for d in data], float)
        post = fast.logistic_posterior(spec, x, n, succ)
        est, pval = fast.logistic_mle(x, n, succ)
    return fast.expected_outcomes(post, xc), est, pval


@dataclass(frozen=True)
class DecisionSetup:
    """Everything a batch of simulated decision trials needs, computed once per study."""

    spec: ModelSpec
    x: np.ndarray          # model matrix of the design's conditions
    cell_mu: np.ndarray    # true expected outcome (or log-odds) of each condition
    costs: np.ndarray      # cost of every combination
    n_total: int
    dropout: float
    outcome_type: str
    sd: float | None
    k: int
    alpha: float
    budget: float


def decision_setup(design, outcome_name: str, scenario: str, budget: float) -> DecisionSetup:
    """Return the set-up of a decision study of ``design`` under ``scenario``."""
    outcome = next(o for o in design.outcomes if o.name == outcome_name)
    spec = build_spec(design, outcome_name)
    codes = design.conditions()
    terms, beta = truth_vector(design, outcome, scenario_effects(design, outcome, scenario))
    combos = spec.combinations()
    return DecisionSetup(
        spec=spec, x=spec.design_matrix(codes), cell_mu=model_matrix(codes, terms) @ beta,
        costs=decide.combination_costs(combos, [f.cost for f in design.factors]),
        n_total=design.sample.n_total, dropout=design.sample.dropout, outcome_type=outcome.type,
        sd=outcome.sd, k=design.k, alpha=design.analysis.alpha, budget=budget)


def decision_replicates(reps: range, *, setup: DecisionSetup, seed: int
                        ) -> dict[str, np.ndarray]:
    """Replicate generator: the combination each rule chooses in trials ``reps``, (R,) each."""
    s = setup
    data = [draw_cells(rng, s.cell_mu, s.n_total, s.dropout, s.outcome_type, s.sd)
            for rng in replicate_rngs(seed, reps.start, reps.stop)]
    values, est, pval = _analyse_chunk(s.spec, s.x, data, s.alpha)
    values = decide.orient(values, s.spec.better)
    chosen = decide.screening_rule(est, pval, s.spec.terms, s.k, s.alpha, s.spec.better)
    return {"pev": decide.pev_choice(values, s.costs),
            "pev_budget": decide.pev_choice(values, s.costs, s.budget),
            "screening": decide.combo_index(chosen)}


def decision_chunk(reps: range, *, design, outcome_name: str, scenario: str, seed: int,
                   budget: float) -> dict[str, np.ndarray]:
    """Simulate replicates ``reps`` of a decision study (set-up and replicates in one call)."""
    return decision_replicates(reps, setup=decision_setup(design, outcome_name, scenario, budget),
                               seed=seed)


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, float)
    if len(x) == 0:
        return float("nan"), float("nan")
    se = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return float(x.mean()), se


def simulate_decision(
    design, *, reps: int = 1000, seed: int = 0, scenario: str = "assumed",
    outcome: str | None = None, budget: float | None = None, jobs: int = 1,
) -> DecisionStudy:
    """Simulate the trial ``reps`` times and score PEV, PEV within budget and screening.

    Returns a dict with ``scenario``, ``truth`` (the truly best combination, unconstrained and
    within budget) and ``rules``: per rule ``p_correct``, ``regret`` (mean shortfall of the chosen
    combination's true expected outcome from the best's, in outcome units or probability) with
    Monte Carlo SEs, and per component ``sensitivity`` (chosen when it is in the truly best
    combination) and ``specificity`` (left out when it is not); a rate that is undefined for a
    scenario (e.g. sensitivity when the best combination has no components) is reported as null.
    """
    from trialkit.engine import run_replicates

    out = _check_decision_design(design, outcome)
    spec = build_spec(design, out.name)
    combos = spec.combinations()
    costs = decide.combination_costs(combos, [f.cost for f in design.factors])
    if budget is None:
        budget = float(costs.max()) / 2.0
    decide.check_budget(budget, costs)
    start = time.perf_counter()
    setup = decision_setup(design, out.name, scenario, budget)
    chosen = run_replicates(decision_replicates, reps, jobs=jobs, batch=BATCH, setup=setup,
                            seed=seed, progress="simulating trials")
    elapsed = time.perf_counter() - start

    effects = scenario_effects(design, out, scenario)
    terms, beta = truth_vector(design, out, effects)
    truth = true_expected(out.type, model_matrix(combos, terms), beta)
    value = decide.orient(truth, out.better)
    best = decide.true_best(value, costs, None, combos)
    best_budget = decide.true_best(value, costs, budget, combos)

    def label(c: int) -> list[str]:
        return [design.factor_names[i] for i in range(design.k) if combos[c, i] > 0]

    rules = {rule: _score_rule(chosen[key], target, value, combos, design.factor_names)
             for rule, key, target in (("pev", "pev", best),
                                       ("pev_within_budget", "pev_budget", best_budget),
                                       ("screening", "screening", best))}
    return DecisionStudy({
        "design": design.name, "outcome": out.name, "scenario": scenario, "reps": reps,
        "seed": seed, "n_total": design.sample.n_total, "budget": budget,
        "truth": {"best": label(best), "best_expected_outcome": float(truth[best]),
                  "best_within_budget": label(best_budget),
                  "best_within_budget_expected_outcome": float(truth[best_budget]),
                  "effects": effects},
        "rules": rules, "elapsed_seconds": elapsed,
    })


class DecisionStudy(Report):
    """How often each decision rule picks the truly best combination (simulate_decision)."""


def _check_decision_design(design, outcome: str | None):
    """Return the outcome, after checking the design can be simulated and analysed."""
    if design.kind != "factorial":
        raise TrialkitError(f"{design.source.path} is a {design.kind} design — decision "
                            "simulation needs a factorial design", param="design")
    if design.sample.n_total is None:
        raise TrialkitError(f"{design.source.path}: [sample] n_total is missing — add it to "
                            "simulate the trial")
    out = design.outcome(outcome)
    spec = build_spec(design, out.name)
    analysed = design.sample.n_total * (1 - design.sample.dropout)
    if analysed < spec.n_coef + 2:
        raise TrialkitError(f"n_total {design.sample.n_total} leaves about {analysed:.0f} "
                            f"participants for a model of {spec.n_coef} terms — increase "
                            "[sample] n_total or lower [analysis] model_order")
    x = spec.design_matrix(design.conditions())
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise TrialkitError(f"the design's conditions cannot estimate the model of order "
                            f"{design.analysis.model_order} (some of its terms are aliased) — "
                            "lower [analysis] model_order")
    return out


def _score_rule(pick: np.ndarray, target: int, value: np.ndarray, combos: np.ndarray,
                names) -> dict:
    """P(correct), regret and per-component sensitivity/specificity of one rule's choices."""
    p_correct, p_se = _mean_se(pick == target)
    regret, r_se = _mean_se(value[target] - value[pick])
    comps = []
    for i, fname in enumerate(names):
        on = combos[pick, i] > 0
        in_best = combos[target, i] > 0
        rate, se = _mean_se(on if in_best else ~on)
        comps.append({"name": fname, "in_best": bool(in_best),
                      "sensitivity": rate if in_best else None,
                      "sensitivity_se": se if in_best else None,
                      "specificity": None if in_best else rate,
                      "specificity_se": None if in_best else se,
                      "p_chosen": float(on.mean())})
    return {"p_correct": p_correct, "p_correct_se": p_se, "regret": regret,
            "regret_se": r_se, "components": comps}


def individual_data(design, outcome_name: str, effects: dict[str, float], n: int, seed: int,
                    rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Participant-level data of one trial: ±1 factor columns and the outcome column.

    Participants are allocated to the design's conditions in equal numbers (remainder at random)
    and their outcomes drawn from ``effects`` (classic factorial effects, as in design files).
    """
    rng = rng or np.random.default_rng(seed)
    out = next(o for o in design.outcomes if o.name == outcome_name)
    codes = design.conditions()
    c = codes.shape[0]
    cells = np.concatenate([np.repeat(np.arange(c), n // c),
                            rng.choice(c, size=n % c, replace=False)])
    rng.shuffle(cells)
    x = codes[cells]
    terms, beta = truth_vector(design, out, effects)
    eta = model_matrix(x, terms) @ beta
    if out.type == "binary":
        y = rng.binomial(1, special.expit(eta)).astype(float)
    else:
        y = rng.normal(eta, out.sd)
    cols = {name: x[:, i].astype(int) for i, name in enumerate(design.factor_names)}
    cols["condition"] = cells + 1
    cols[outcome_name] = y
    return cols


__all__ = ["SCENARIOS", "individual_data", "scenario_effects", "simulate_decision"]
