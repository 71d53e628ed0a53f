"""The live service on SQLite and on a real PostgreSQL: lifecycle, methods, export, tamper."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from dbtools import run_sql

from trialkit.design import load_design
from trialkit.service import Trial

ROOT = Path(__file__).resolve().parent.parent
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"


def adaptive_design(tmp_path: Path, randomisation: str, name: str = "three_arm") -> Path:
    """Return the example adaptive design with its [randomisation] section replaced."""
    text = ADAPTIVE.read_text()
    text = text.split("\n[randomisation]")[0].replace('name = "three_arm_adaptive"',
                                                      f'name = "{name}"')
    path = tmp_path / f"{name}.toml"
    path.write_text(text + "\n" + randomisation)
    return path


BLOCKS_2_1_1 = """[randomisation]
method = "blocks"
ratio = [2, 1, 1]
block_sizes = [4, 8]

[randomisation.strata]
site = ["a", "b"]
"""


def test_create_stores_design_and_writes_a_private_key(db_url, tmp_path, run):
    key = tmp_path / "trial.key"
    result = run("trial", "create", FACTORIAL, "--db", db_url, "--key-file", key,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    design = load_design(FACTORIAL)
    assert out["design_sha256"] == design.source.sha256
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    text, sha = run_sql(db_url, "SELECT design_text, design_sha256 FROM trials")[0]
    assert text == FACTORIAL.read_text() and sha == design.source.sha256
    # the secret never reaches the database
    secret = key.read_text().split()[-1]
    dump = json.dumps([run_sql(db_url, f"SELECT * FROM {t}") for t in
                       ("trials", "audit", "participants")])
    assert secret not in dump and secret.upper() not in dump
    names = [r[0] for r in run_sql(db_url, "SELECT name FROM schema_migrations ORDER BY name")]
    assert names == ["0001_initial", "0002_keyed_audit", "0003_tokens", "0004_outcomes",
                     "0005_decision_policy"]
    # a key file is never overwritten
    again = run("trial", "create", FACTORIAL, "--name", "second", "--db", db_url,
                "--key-file", key)
    assert again.exit_code == 2 and "already exists" in again.output


def test_enrol_contract_idempotent_and_factorial_condition(db_url, tmp_path, run):
    key = tmp_path / "f.key"
    assert run("trial", "create", FACTORIAL, "--db", db_url, "--key-file", key).exit_code == 0
    conditions = load_design(FACTORIAL).conditions()
    first = json.loads(run("trial", "enrol", "app_components_factorial", "P1", "--stratum",
                           "site=london", "--db", db_url, "--format", "json").output)
    assert {"participant", "allocation", "sequence", "new"} <= set(first)
    assert first["new"] is True and first["sequence"] == 1 and first["participant"] == "P1"
    assert 1 <= first["allocation"] <= 32
    coded = list(first["condition"].values())
    assert coded == conditions[first["allocation"] - 1].tolist()
    again = json.loads(run("trial", "enrol", "app_components_factorial", "P1", "--stratum",
                           "site=london", "--db", db_url, "--format", "json").output)
    assert again["new"] is False and again["allocation"] == first["allocation"]
    assert again["sequence"] == 1 and again["receipt"] == first["receipt"]
    # the same participant in another stratum is a conflict, not a silent repeat
    other = run("trial", "enrol", "app_components_factorial", "P1", "--stratum",
                "site=online", "--db", db_url, "--format", "json")
    assert other.exit_code == 2 and len(other.output.strip().splitlines()) == 1
    assert "already enrolled in stratum site=london" in other.output
    assert run_sql(db_url, "SELECT COUNT(*) FROM participants")[0][0] == 1


def block_rows(trial, key):
    """(stratum, block number, arm) of every enrolment, from a replay with the key."""
    stratum = {r.participant: r.stratum for r in trial.store.participants(trial.name)}
    return [(stratum[r["participant"]], r["detail"]["block"][0], r["arm"])
            for r in trial.replay(key)]


def _completed_blocks_exact(rows, ratio):
    """rows: (stratum, block_no, arm) → every block except the last of each stratum is exact."""
    blocks = defaultdict(list)
    for stratum, block_no, arm in rows:
        blocks[(stratum, block_no)].append(arm)
    last = {}
    for stratum, block_no in blocks:
        last[stratum] = max(last.get(stratum, -1), block_no)
    n_checked = 0
    unit = sum(ratio)
    for (stratum, block_no), arms in blocks.items():
        if block_no == last[stratum]:
            continue
        size = len(arms)
        assert size % unit == 0
        counts = Counter(arms)
        assert [counts[j] for j in range(len(ratio))] == [r * size // unit for r in ratio]
        n_checked += 1
    return n_checked


def test_stratified_blocks_with_ratio_are_exact(db_url, tmp_path):
    design = adaptive_design(tmp_path, BLOCKS_2_1_1)
    with Trial.create(design, db_url, key_file=str(tmp_path / "k")) as trial:
        for i in range(150):
            out = trial.enrol(f"P{i}", {"site": "ab"[i % 3 == 0]})
            assert out["allocation"] in ("usual_app", "core_package", "full_package")
        status = trial.status()
        assert status["enrolled"] == 150
        assert trial.verify(str(tmp_path / "k"))["ok"]
        rows = block_rows(trial, str(tmp_path / "k"))
    assert _completed_blocks_exact(rows, (2, 1, 1)) >= 10
    sizes = {n for n in Counter((s, b) for s, b, _ in rows).values()}
    assert sizes >= {4, 8}


def test_minimisation_and_complete_trials_replay(db_url, tmp_path):
    mini = adaptive_design(tmp_path, """[randomisation]
method = "minimisation"
minimisation_factors = ["site", "sex"]
weights = [1.0, 2.0]
preferred_probability = 0.9

[randomisation.strata]
site = ["a", "b", "c"]
sex = ["f", "m"]
""", name="mini")
    comp = adaptive_design(tmp_path, "[randomisation]\nmethod = \"complete\"\n", name="comp")
    Trial.create(mini, db_url, key_file=str(tmp_path / "m.key")).close()
    Trial.create(comp, db_url, key_file=str(tmp_path / "c.key")).close()
    with Trial.open(db_url, "mini") as m, Trial.open(db_url, "comp") as c:
        for i in range(90):
            m.enrol(f"M{i}", {"site": "abc"[i % 3], "sex": "fm"[(i // 3) % 2]})
            c.enrol(f"C{i}")
        # The live service allocates exactly as the pure rule does with the trial's key (the rule's
        # balance is tested, for many fixed keys, in test_randomise_algorithms.py).
        from trialkit.randomise.history import AllocationRule, allocate_all

        rows = m.export()
        key = m.key(str(tmp_path / "m.key")).secret
        pure, _ = allocate_all(AllocationRule.from_config(m.config), key, "mini",
                               [{"site": r["site"], "sex": r["sex"]} for r in rows])
        assert [r["arm"] for r in rows] == [m.config["groups"][a.arm] for a in pure]
        counts = Counter(r["arm"] for r in rows)
        assert m.status()["imbalance"] == max(counts.values()) - min(counts.get(g, 0) for g in
                                                                   m.config["groups"])
        assert m.verify(str(tmp_path / "m.key"))["replay_ok"] is True
        assert c.verify(str(tmp_path / "c.key"))["replay_ok"] is True
        detail = m.replay(str(tmp_path / "m.key"))[5]["detail"]
        assert len(detail["u"]) == 2 and len(detail["scores"]) == 3


def test_blinded_trial_returns_codes_and_unblinds_one_participant(db_url, tmp_path, run):
    design = adaptive_design(tmp_path, "[randomisation]\nblinded = true\nblock_sizes = [3]\n")
    key = tmp_path / "b.key"
    assert run("trial", "create", design, "--db", db_url, "--key-file", key).exit_code == 0
    codes = {}
    for i in range(6):
        out = json.loads(run("trial", "enrol", "three_arm", f"B{i}", "--db", db_url,
                             "--format", "json").output)
        assert out["allocation"] not in ("usual_app", "core_package", "full_package")
        codes[f"B{i}"] = out["allocation"]
    assert run_sql(db_url, "SELECT COUNT(*) FROM participants WHERE arm IS NOT NULL")[0][0] == 0
    status = json.loads(run("trial", "status", "three_arm", "--db", db_url, "--format",
                            "json").output)
    assert "groups" not in status and status["enrolled"] == 6
    arms = []
    for p in codes:
        res = run("trial", "unblind", "three_arm", p, "--reason", "adverse event",
                  "--key-file", key, "--db", db_url, "--format", "json")
        assert res.exit_code == 0, res.output
        arms.append(json.loads(res.output)["allocation"])
    assert sorted(arms) == sorted(["usual_app", "core_package", "full_package"] * 2)
    logged = [json.loads(r[0]) for r in run_sql(db_url, "SELECT payload FROM audit WHERE "
                                                    "action = 'unblind'")]
    assert len(logged) == 6 and all(set(x) == {"participant", "reason"} for x in logged)
    no_key = run("trial", "unblind", "three_arm", "B0", "--reason", "x", "--db", db_url)
    assert no_key.exit_code == 2
    blind_export = run("trial", "export", "three_arm", "--db", db_url).output
    assert "arm" not in blind_export.splitlines()[0].split(",")
    no_reason = run("trial", "export", "three_arm", "--db", db_url, "--key-file", key)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    full = list(csv.DictReader(io.StringIO(run("trial", "export", "three_arm", "--db", db_url,
                                               "--key-file", key, "--reason",
                                               "final analysis").output)))
    assert [r["arm"] for r in full] == arms


def test_mrt_decide_single_bulk_and_export_columns(db_url, tmp_path, run):
    key = tmp_path / "m.key"
    assert run("trial", "create", MRT, "--db", db_url, "--key-file", key).exit_code == 0
    res = run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "1",
              "--available", "--db", db_url, "--format", "json")
    out = json.loads(res.output)
    assert {"action", "probability", "decision_point"} <= set(out)
    assert out["probability"] == 0.6 and out["decision_point"] == 1 and out["action"] in (0, 1)
    repeat = json.loads(run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point",
                            "1", "--available", "--db", db_url, "--format", "json").output)
    assert repeat["action"] == out["action"] and repeat["new"] is False
    un = json.loads(run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "2",
                        "--unavailable", "--reason", "driving", "--db", db_url, "--format",
                        "json").output)
    assert un["action"] == 0
    lines = ["participant,decision_point,available,reason"]
    lines += [f"U{i},{dp},{int(dp % 5 != 0)},{'' if dp % 5 else 'asleep'}"
              for i in range(2, 12) for dp in range(1, 41)]
    bulk = run("trial", "decide", "checkin_prompts_mrt", "--bulk", "--db", db_url,
               "--format", "json", input="\n".join(lines) + "\n")
    assert bulk.exit_code == 0, bulk.output
    decisions = json.loads(bulk.output)["decisions"]
    assert len(decisions) == 400
    available = [d for d in decisions if d["available"]]
    assert all(d["action"] == 0 for d in decisions if not d["available"])
    rate = sum(d["action"] for d in available) / len(available)
    assert rate == pytest.approx(0.6, abs=4 * (0.24 / len(available)) ** 0.5)
    exported = run("trial", "export", "checkin_prompts_mrt", "--db", db_url).output
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert list(rows[0]) == ["id", "decision_point", "availability", "treatment", "probability"]
    assert len(rows) == 402
    status = json.loads(run("trial", "status", "checkin_prompts_mrt", "--db", db_url,
                            "--format", "json").output)
    assert status["decision_points"] == 402 and status["participants"] == 11
    assert run("trial", "verify", "checkin_prompts_mrt", "--key-file", key, "--db",
               db_url).exit_code == 0


def test_export_factorial_csv_json_parquet_and_mark_error(db_url, tmp_path, run):
    key = tmp_path / "f.key"
    run("trial", "create", FACTORIAL, "--db", db_url, "--key-file", key)
    for i in range(10):
        run("trial", "enrol", "app_components_factorial", f"P{i}", "--stratum", "site=online",
            "--db", db_url)
    res = run("trial", "mark-error", "app_components_factorial", "P3", "--reason",
              "duplicate of P2", "--db", db_url, "--format", "json")
    assert res.exit_code == 0 and json.loads(res.output)["marked_error"] is True
    twice = run("trial", "mark-error", "app_components_factorial", "P3", "--reason", "x",
                "--db", db_url)
    assert twice.exit_code == 2
    design = load_design(FACTORIAL)
    rows = json.loads(run("trial", "export", "app_components_factorial", "--format", "json",
                          "--db", db_url).output)
    assert len(rows) == 10
    for r in rows:
        assert [r[f] for f in design.factor_names] == \
            design.conditions()[r["condition"] - 1].tolist()
        assert r["marked_error"] == (1 if r["participant"] == "P3" else 0)
    out = tmp_path / "x.parquet"
    assert run("trial", "export", "app_components_factorial", "--format", "parquet",
               "--output", out, "--db", db_url).exit_code == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out).to_pylist()
    assert [r["condition"] for r in table] == [r["condition"] for r in rows]
    status = json.loads(run("trial", "status", "app_components_factorial", "--db", db_url,
                            "--format", "json").output)
    assert status["consort"] == {"randomised": 10, "marked_error": 1, "included": 9,
                                 "unblinded": 0}
    assert run_sql(db_url, "SELECT COUNT(*) FROM participants")[0][0] == 10  # nothing deleted
    assert run("trial", "verify", "app_components_factorial", "--key-file", key, "--db",
               db_url).exit_code == 0


def test_redcap_allocation_table(db_url, tmp_path, run):
    design = adaptive_design(tmp_path, BLOCKS_2_1_1)
    key = tmp_path / "k"
    run("trial", "create", design, "--db", db_url, "--key-file", key)
    before = run_sql(db_url, "SELECT n_audit FROM trials")[0][0]
    res = run("trial", "export", "three_arm", "--allocation-table", "--rows", "24",
              "--key-file", key, "--db", db_url)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert list(rows[0]) == ["randomization_group", "site"] and len(rows) == 48
    for site in ("1", "2"):
        groups = Counter(r["randomization_group"] for r in rows if r["site"] == site)
        assert sum(groups.values()) == 24
        assert abs(groups["1"] - 12) <= 4 and abs(groups["2"] - 6) <= 2  # within one block
    assert run_sql(db_url, "SELECT n_audit FROM trials")[0][0] == before + 1
    assert run("trial", "export", "three_arm", "--allocation-table", "--db",
               db_url).exit_code == 2


TAMPERS = {
    "edit_payload": ["UPDATE audit SET payload = replace(payload, 'P1', 'P9') WHERE seq = 3"],
    "delete_row": ["DELETE FROM audit WHERE seq = 3"],
    "delete_last_row": ["DELETE FROM audit WHERE seq = 6"],
    "insert_row": ["INSERT INTO audit (trial, seq, at, who, action, payload, prev_hash, hash) "
                   "SELECT trial, 7, at, who, action, payload, hash, hash FROM audit "
                   "WHERE seq = 6"],
    "reorder": ["UPDATE audit SET seq = -1 WHERE seq = 3",
                "UPDATE audit SET seq = 3 WHERE seq = 4",
                "UPDATE audit SET seq = 4 WHERE seq = -1"],
    "edit_allocation": ["UPDATE participants SET allocation = CASE WHEN allocation = "
                        "'usual_app' THEN 'core_package' ELSE 'usual_app' END "
                        "WHERE participant = 'P0'"],
    "edit_settings": ["UPDATE trials SET config = replace(config, '\"block_sizes\":[3]', "
                      "'\"block_sizes\":[6]')"],
    "replace_design": ["UPDATE trials SET design_text = 'edited', design_sha256 = "
                       f"'{hashlib.sha256(b'edited').hexdigest()}'"],
}
EXPECTED_ROW = {"edit_payload": 3, "delete_row": 3, "delete_last_row": 6, "insert_row": 7,
                "reorder": 3, "edit_allocation": 2, "edit_settings": 1, "replace_design": 1}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampering_is_detected_and_names_the_row(db_url, tmp_path, run, tamper):
    design = adaptive_design(tmp_path, "[randomisation]\nblock_sizes = [3]\n")
    key = tmp_path / "k"
    run("trial", "create", design, "--db", db_url, "--key-file", key)
    for i in range(5):
        run("trial", "enrol", "three_arm", f"P{i}", "--db", db_url)
    assert run("trial", "verify", "three_arm", "--key-file", key, "--db", db_url).exit_code == 0
    for sql in TAMPERS[tamper]:
        run_sql(db_url, sql)
    res = run("trial", "verify", "three_arm", "--key-file", key, "--db", db_url, "--format",
              "json")
    assert res.exit_code != 0
    assert f"row {EXPECTED_ROW[tamper]}" in res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["first_bad_row"] == EXPECTED_ROW[tamper]


def test_replay_needs_the_right_key_and_detects_a_forged_allocation(db_url, tmp_path, run):
    """A forger who rebuilds the hash chain without the key fails verification with the key."""
    from trialkit.service.audit import canonical

    def row_hash(trial, seq, at, who, action, payload, prev):
        # the forger's own unkeyed chain: all anyone without the key can compute
        text = canonical([trial, seq, at, who, action, payload, prev])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    design = adaptive_design(tmp_path, "[randomisation]\nblock_sizes = [3]\n")
    key = tmp_path / "k"
    run("trial", "create", design, "--db", db_url, "--key-file", key)
    for i in range(3):
        run("trial", "enrol", "three_arm", f"P{i}", "--db", db_url)
    rows = run_sql(db_url, "SELECT seq, at, who, action, payload, prev_hash, hash FROM audit "
                       "ORDER BY seq")
    groups = ["usual_app", "core_package", "full_package"]
    payload = json.loads(rows[1][4])
    real = payload["allocation"]
    payload["allocation"] = groups[(groups.index(real) + 1) % 3]
    run_sql(db_url, "UPDATE participants SET allocation = ?, arm = ? WHERE participant = 'P0'",
        (payload["allocation"], groups.index(payload["allocation"])))
    prev = rows[0][6]
    for seq, at, who, action, text, _, _ in rows[1:]:
        text = canonical(payload) if seq == 2 else text
        h = row_hash("three_arm", seq, at, who, action, text, prev)
        run_sql(db_url, "UPDATE audit SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (text, prev, h, seq))
        prev = h
    run_sql(db_url, "UPDATE trials SET last_hash = ?", (prev,))
    assert run("trial", "verify", "three_arm", "--db", db_url).exit_code == 0  # chain only
    res = run("trial", "verify", "three_arm", "--key-file", key, "--db", db_url)
    assert res.exit_code == 1 and "row 2" in res.stderr


def test_reproducible_from_the_key_in_a_fresh_process(db_url, tmp_path):
    design = adaptive_design(tmp_path, BLOCKS_2_1_1)
    key = str(tmp_path / "k")
    with Trial.create(design, db_url, key_file=key) as trial:
        for i in range(40):
            trial.enrol(f"R{i}", {"site": "ab"[i % 2]})
        logged = [(r["participant"], r["arm"]) for r in trial.export()]
    code = ("import json, sys; from trialkit.service import Trial; "
            "t = Trial.open(sys.argv[1], 'three_arm'); "
            "print(json.dumps([[r['participant'], r['label']] for r in t.replay(sys.argv[2])]))")
    proc = subprocess.run([sys.executable, "-c", code, db_url, key], capture_output=True,
                          text=True, check=True)
    assert [tuple(x) for x in json.loads(proc.stdout)] == logged


def test_mrt_time_varying_probability_is_used_logged_and_replayed(db_url, tmp_path, run):
    """Probability by decision point of the day: each draw uses, and logs, that point's p."""
    probs = [0.2, 0.4, 0.6, 0.8, 0.5]
    text = MRT.read_text().replace('name = "checkin_prompts_mrt"', 'name = "varying"').replace(
        "probability = 0.6", f'probability_by = "decision_point"\nprobability = {probs}')
    design = tmp_path / "varying.toml"
    design.write_text(text)
    key = tmp_path / "v.key"
    assert run("trial", "create", design, "--db", db_url, "--key-file", key).exit_code == 0
    lines = ["participant,decision_point,available"]
    lines += [f"V{i},{dp},1" for i in range(160) for dp in range(1, 11)]
    res = run("trial", "decide", "varying", "--bulk", "--db", db_url, "--format", "json",
              input="\n".join(lines) + "\n")
    assert res.exit_code == 0, res.output
    decisions = json.loads(res.output)["decisions"]
    for d in decisions:
        assert d["probability"] == probs[(d["decision_point"] - 1) % 5]
    for p in (0.2, 0.8):
        acts = [d["action"] for d in decisions if d["probability"] == p]
        assert len(acts) == 320
        assert sum(acts) / len(acts) == pytest.approx(p, abs=4 * (p * (1 - p) / 320) ** 0.5)
    rows = list(csv.DictReader(io.StringIO(run("trial", "export", "varying", "--db",
                                               db_url).output)))
    assert {(int(r["decision_point"]), float(r["probability"])) for r in rows} == \
        {(dp, probs[(dp - 1) % 5]) for dp in range(1, 11)}
    assert run("trial", "verify", "varying", "--key-file", key, "--db", db_url).exit_code == 0


def test_fraction_conditions_in_balanced_blocks(db_url, tmp_path):
    """A 2^(7-2) fraction: blocks of 32 hold each of its 32 conditions once."""
    fraction = ROOT / "designs" / "app-components-fraction.toml"
    conditions = load_design(fraction).conditions()
    with Trial.create(fraction, db_url, key_file=str(tmp_path / "k")) as trial:
        for i in range(64):
            out = trial.enrol(f"F{i}")
            assert list(out["condition"].values()) == \
                conditions[out["allocation"] - 1].tolist()
        rows = trial.export()
    assert len(conditions) == 32
    for block in (rows[:32], rows[32:]):
        assert sorted(r["condition"] for r in block) == list(range(1, 33))


def test_a_newer_migration_is_applied_when_an_older_store_is_opened(db_url, tmp_path,
                                                                   monkeypatch):
    from trialkit.service import store as store_module

    Trial.create(MRT, db_url, key_file=str(tmp_path / "k")).close()
    extra = ("0099_test_upgrade", ["CREATE TABLE upgrade_probe (x INTEGER)"])
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, extra])
    with Trial.open(db_url) as trial:
        assert trial.decide("U1", 1, available=True)["decision_point"] == 1
    names = [r[0] for r in run_sql(db_url, "SELECT name FROM schema_migrations ORDER BY name")]
    assert names == ["0001_initial", "0002_keyed_audit", "0003_tokens", "0004_outcomes",
                     "0005_decision_policy",
                     "0099_test_upgrade"]
    assert run_sql(db_url, "SELECT COUNT(*) FROM upgrade_probe") == [(0,)]


@pytest.mark.parametrize("sql,row", [
    ("UPDATE decisions SET action = 1 - action WHERE decision_point = 2", 3),
    ("DELETE FROM decisions WHERE decision_point = 1", 2),
])
def test_editing_the_decisions_table_is_detected(db_url, tmp_path, run, sql, row):
    key = tmp_path / "m.key"
    run("trial", "create", MRT, "--db", db_url, "--key-file", key)
    for dp in (1, 2, 3):
        run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", dp,
            "--available", "--db", db_url)
    assert run("trial", "verify", "checkin_prompts_mrt", "--db", db_url).exit_code == 0
    run_sql(db_url, sql)
    res = run("trial", "verify", "checkin_prompts_mrt", "--db", db_url, "--format", "json")
    assert res.exit_code == 1 and f"row {row}" in res.stderr
    assert json.loads(res.stdout)["first_bad_row"] == row
