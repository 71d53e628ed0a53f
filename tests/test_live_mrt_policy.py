"""Live adaptive MRTs through the service: context, outcomes, policy updates, schedules, verify.

The twin test runs a small adaptive MRT with outcomes drawn from the design's truth and
recomputes every probability and every policy update from the export and the audit log with the
pure policy functions, independently of the service.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from dbtools import run_sql
from livemrt import LIVE_MRT

from trialkit.design import loads_design
from trialkit.errors import Conflict, InvalidInput, NotFound, Tampered
from trialkit.mrt.analysis import analyse_mrt
from trialkit.mrt.policy import PolicyParams, policy_probabilities, policy_update, prior_params
from trialkit.service.trial import Trial

DESIGN = loads_design(LIVE_MRT, "live_mrt.toml")
SPEC = DESIGN.policy
N, T = 8, DESIGN.schedule.n_decision_points


def _create(url, tmp_path) -> Trial:
    path = tmp_path / "live_mrt.toml"
    path.write_text(LIVE_MRT)
    return Trial.create(str(path), url, key_file=str(tmp_path / "k"))


def _n_audit(url) -> int:
    return run_sql(url, "SELECT COUNT(*) FROM audit")[0][0]


def _run_trial(trial: Trial, seed: int = 3) -> None:
    """Decide N participants in lockstep, each outcome drawn from the design's truth."""
    rng = np.random.default_rng(seed)
    out = DESIGN.outcomes[0]
    gamma, delta = dict(out.context_baseline), dict(out.context_effect)
    for dp in range(1, T + 1):
        for i in range(N):
            ctx = {"stress": float(rng.normal()), "engaged": float(rng.random() < 0.5)}
            available = bool(rng.random() < 0.8)
            got = trial.decide(f"P{i}", dp, available, None if available else "busy",
                               context=ctx if available else None)
            if available:
                a = got["action"]
                y = sum(gamma[k] * ctx[k] for k in gamma) + a * (
                    out.effect.mean + sum(delta[k] * ctx[k] for k in delta)) + rng.normal()
                trial.record_outcome(f"P{i}", y, decision_point=dp)


def test_twin_every_probability_and_update_recomputed_from_the_export(tmp_path):
    """Probabilities within the bounds, equal to the pure policy on the logged history."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    with _create(url, tmp_path) as trial:
        _run_trial(trial)
        data = pd.DataFrame(trial.export())
        updates = [r["payload"] for r in trial.audit_log() if r["action"] == "policy_update"]
        verified = trial.verify(str(tmp_path / "k"))
    assert verified["ok"] and verified["replay_ok"], verified
    assert verified["replayed"] == len(data) + len(updates)
    # the schedule: one update before decision points 3, 5 and 7 (every 2), all automatic
    assert [(u["version"], u["stage"], u["trigger"]) for u in updates] == [
        (1, 1, "schedule"), (2, 2, "schedule"), (3, 3, "schedule")]
    assert (data["policy_version"] == (data["decision_point"] - 1) // 2).all()
    avail = data["availability"] == 1
    p = data.loc[avail, "probability"]
    assert ((p >= SPEC.p_min) & (p <= SPEC.p_max)).all()
    assert p.nunique() > 1 and p.max() > 0.5     # the policy learned that prompts help
    # every version's posterior from the rows of earlier versions, every probability from it
    ctx = data[list(SPEC.context)].to_numpy(float)
    for v in range(len(updates) + 1):
        if v == 0:
            params = prior_params(SPEC)
        else:
            rows = (data["policy_version"] < v).to_numpy() & avail.to_numpy()
            params = policy_update(SPEC, ctx[rows], data["treatment"][rows],
                                   data["probability"][rows], data["brushing"][rows],
                                   np.ones(rows.sum()))
            np.testing.assert_allclose(params.mean, updates[v - 1]["mean"], rtol=0, atol=1e-12)
            np.testing.assert_allclose(params.covariance, updates[v - 1]["covariance"],
                                       rtol=0, atol=1e-12)
            assert updates[v - 1]["rows"] == rows.sum() and updates[v - 1]["missing"] == 0
        mine = ((data["policy_version"] == v) & avail).to_numpy()
        again = policy_probabilities(SPEC, PolicyParams(params.mean, params.covariance),
                                     ctx[mine])
        np.testing.assert_allclose(again, data["probability"][mine], rtol=0, atol=1e-12)
    # the export is what analyse mrt --variance adaptive reads, with its default column names
    res = analyse_mrt(data, design=DESIGN, variance="adaptive")
    assert res.variance.startswith("adaptive sandwich")
    assert np.isfinite(res.effects[0]["std_error"]) and res.effects[0]["std_error"] > 0


def test_bad_context_and_outcomes_are_refused_with_nothing_written(db_url, tmp_path):
    with _create(db_url, tmp_path) as trial:
        before = _n_audit(db_url)
        bad = [({"stress": 0.1}, "missing the context engaged"),
               ({"stress": 0.1, "engaged": 1, "mood": 2}, "'mood' is not one of"),
               ({"stress": float("nan"), "engaged": 1}, "not finite"),
               ({"stress": "inf", "engaged": 1}, "not finite"),
               ({"stress": "high", "engaged": 1}, "not a number"),
               ({"stress": 1e300, "engaged": 1}, "absurd"),
               (None, "needs the context stress, engaged"),
               ([1, 2], "not a set of name=value pairs")]
        for ctx, words in bad:
            with pytest.raises(InvalidInput, match=words):
                trial.decide("P1", 1, True, context=ctx)
        # one bad row of many: nothing decided
        with pytest.raises(InvalidInput):
            trial.decide_many([("P1", 1, True, None, {"stress": 0, "engaged": 1}),
                               ("P2", 1, True, None, {"stress": 0})])
        assert _n_audit(db_url) == before
        assert trial.decide("P1", 1, False, "asleep")["policy_version"] == 0
        trial.decide("P2", 1, True, context={"stress": 0, "engaged": 1})
        n = _n_audit(db_url)
        with pytest.raises(Conflict, match="was unavailable"):
            trial.record_outcome("P1", 1.0, decision_point=1)
        with pytest.raises(NotFound, match="has not been decided"):
            trial.record_outcome("P2", 1.0, decision_point=2)
        with pytest.raises(InvalidInput, match="belongs to a decision point"):
            trial.record_outcome("P2", 1.0)
        with pytest.raises(InvalidInput, match="not finite"):
            trial.record_outcome("P2", "nan", decision_point=1)
        # all or none: a good outcome with a bad one records nothing
        with pytest.raises(NotFound, match="outcome 2: .*nothing was recorded"):
            trial.record_outcomes([{"participant": "P2", "decision_point": 1, "value": 1},
                                   {"participant": "P9", "decision_point": 1, "value": 1}])
        assert _n_audit(db_url) == n
        trial.record_outcome("P2", 0.5, decision_point=1)
        with pytest.raises(Conflict, match="a correction needs a reason"):
            trial.record_outcome("P2", 0.7, decision_point=1)
        assert trial.record_outcome("P2", 0.7, reason="typo", decision_point=1)["corrected"]
        for text, words in [("3..2", "wrong order"), ("0..2", "first decision point"),
                            (f"1..{T + 1}", "last decision point"), ("a..b", "first")]:
            with pytest.raises(InvalidInput, match=words):
                trial.schedule("P3", text)
        with pytest.raises(InvalidInput, match="'mood' is not one of"):
            trial.schedule("P3", "1..2", {"mood": 1})
        assert trial.verify(str(tmp_path / "k"))["ok"]


def test_schedule_decides_ahead_from_the_policy_in_force_and_is_logged(db_url, tmp_path):
    with _create(db_url, tmp_path) as trial:
        trial.decide("P1", 1, True, context={"stress": 0.5, "engaged": 1})
        trial.record_outcome("P1", 2.0, decision_point=1)
        made = trial.policy_update()
        assert (made["version"], made["trigger"], made["rows"]) == (1, "manual", 1)
        out = trial.schedule("OFF", "2..6", {"engaged": 1})
        assert [d["decision_point"] for d in out["decisions"]] == [2, 3, 4, 5, 6]
        assert out["context"] == {"stress": 0.0, "engaged": 1.0}   # stress: its default (mean)
        # no update runs for a schedule: all five use version 1, although 3..6 are later stages
        assert {d["policy_version"] for d in out["decisions"]} == {1}
        params = PolicyParams(np.asarray(made["mean"]), np.asarray(made["covariance"]))
        want = policy_probabilities(SPEC, params, np.array([[0.0, 1.0]]))[0]
        assert all(abs(d["probability"] - want) < 1e-12 for d in out["decisions"])
        # repeating returns the logged decisions; the audit log holds one row per decision
        again = trial.schedule("OFF", "2..6", {"engaged": 1})
        assert [d["new"] for d in again["decisions"]] == [False] * 5
        logged = [r["payload"] for r in trial.audit_log() if r["action"] == "decide"
                  and r["payload"]["participant"] == "OFF"]
        assert len(logged) == 5 and all(p["scheduled"] for p in logged)
        rows = [r for r in trial.export() if r["id"] == "OFF"]
        assert [r["scheduled"] for r in rows] == [1] * 5 and rows[0]["engaged"] == 1.0
        # the next live decision at a later stage runs the schedule's update first
        got = trial.decide("P1", 3, True, context={"stress": 0, "engaged": 0})
        assert got["policy_version"] == 2
        assert trial.policy()["updates"][-1]["trigger"] == "schedule"
        assert trial.verify(str(tmp_path / "k"))["replay_ok"]


def test_a_fixed_probability_mrt_takes_no_context_outcome_or_update(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    from pathlib import Path

    fixed = Path(__file__).resolve().parent.parent / "designs" / "checkin-prompts-mrt.toml"
    with Trial.create(str(fixed), url, key_file=str(tmp_path / "k")) as trial:
        with pytest.raises(InvalidInput, match="use no context"):
            trial.decide("P1", 1, True, context={"x": 1})
        got = trial.decide("P1", 1, True)
        assert "policy_version" not in got
        for call in (trial.policy_update, trial.policy,
                     lambda: trial.record_outcome("P1", 1, decision_point=1),
                     lambda: trial.schedule("P1", "1..2")):
            with pytest.raises(InvalidInput, match="does not take"):
                call()
        assert list(trial.export()[0]) == ["id", "decision_point", "availability", "treatment",
                                           "probability"]


def _small_trial(url, tmp_path) -> Trial:
    trial = _create(url, tmp_path)
    for i in range(3):
        trial.decide(f"P{i}", 1, True, context={"stress": 0.1 * i, "engaged": 1})
        trial.record_outcome(f"P{i}", float(i), decision_point=1)
    trial.decide("P0", 3, True, context={"stress": 0.3, "engaged": 0})  # runs update 1
    return trial


@pytest.mark.parametrize("edit", ["probability", "context", "version", "outcome"])
def test_verify_catches_an_edited_table(db_url, tmp_path, edit):
    sql = {"probability": "UPDATE decisions SET probability = 0.8 WHERE participant = 'P1'",
           "context": "UPDATE decisions SET context = '{\"engaged\":1.0,\"stress\":2.0}' "
                      "WHERE participant = 'P1'",
           "version": "UPDATE decisions SET policy_version = 0 WHERE decision_point = 3",
           "outcome": "UPDATE outcomes SET value = 9 WHERE participant = 'P2'"}[edit]
    with _small_trial(db_url, tmp_path) as trial:
        assert trial.verify(str(tmp_path / "k"))["ok"]
        run_sql(db_url, sql)
        report = trial.verify(str(tmp_path / "k"))
    assert not report["ok"] and not report["tables_ok"], report
    assert "was edited" in report["problem"]


def test_an_edited_policy_row_is_refused_and_caught(db_url, tmp_path):
    with _small_trial(db_url, tmp_path) as trial:
        seq, payload = run_sql(db_url, "SELECT seq, payload FROM audit WHERE action = "
                                       "'policy_update'")[0]
        data = json.loads(payload)
        data["mean"][-3] += 5.0          # a large advantage: the next prompts at p_max
        run_sql(db_url, "UPDATE audit SET payload = ? WHERE seq = ?",
                (json.dumps(data, separators=(",", ":"), sort_keys=True), seq))
        with pytest.raises(Tampered, match="policy update"):
            trial.decide("P1", 3, True, context={"stress": 0, "engaged": 1})
        with pytest.raises(Tampered):
            trial.policy_update()
        report = trial.verify(str(tmp_path / "k"))
    assert not report["ok"] and report["first_bad_row"] == seq


def test_a_deleted_policy_row_is_caught(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with _small_trial(url, tmp_path) as trial:
        run_sql(url, "DELETE FROM audit WHERE action = 'policy_update'")
        report = trial.verify(str(tmp_path / "k"))
    assert not report["ok"] and not report["chain_ok"], report


def test_replay_recomputes_every_probability_and_update(tmp_path):
    """A log forged with the key (probability changed) fails the replay, not the MACs."""
    from trialkit.service.audit import AuditRow, canonical, row_mac

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with _small_trial(url, tmp_path) as trial:
        key = trial.key()
        rows = trial.store.audit_rows(trial.name)
        assert trial.adapter.check_replay(key, rows)[:2] == (None, "")
        for action, change in [("decide", {"probability": 0.61}),
                               ("policy_update", {"rows": 2})]:
            forged, prev = [], rows[0].prev_hash
            done = False
            for r in rows:
                data = r.data()
                if r.action == action and not done and (action != "decide" or r.seq > 3):
                    data.update(change)
                    done = True
                text = canonical(data)
                mac = row_mac(key, r.seq, r.at, r.who, r.action, text, prev)
                forged.append(AuditRow(r.seq, r.at, r.who, r.action, text, prev, mac))
                prev = mac
            bad, problem, _ = trial.adapter.check_replay(key, forged)
            assert bad is not None and "does not replay" in problem, problem
            assert ("probability" if action == "decide" else "rows") in problem
