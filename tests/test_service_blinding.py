"""Blinded trials stay blinded: without the key, arms are recovered at no better than chance.

An attacker who reads every table and file but the key tries complete randomisation, permuted
blocks and minimisation trials.

The attacker has the trialkit library and the design. They try what worked against earlier
versions (a stored uniform put through ``arm_from_uniform``), then every stored field of each
participant (participants row and audit payload) as a predictor trained on half of the
participants whose arms they somehow learned, and the sealed state's length over time.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from dbtools import run_sql

from trialkit.randomise import arm_from_uniform
from trialkit.service import Trial

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
N = 300

METHODS = {
    "complete": '[randomisation]\nmethod = "complete"\nblinded = true\n',
    "blocks": ('[randomisation]\nmethod = "blocks"\nblock_sizes = [3, 6]\nblinded = true\n\n'
               '[randomisation.strata]\nsite = ["a", "b"]\n'),
    "minimisation": ('[randomisation]\nmethod = "minimisation"\nblinded = true\n'
                     'minimisation_factors = ["site", "sex"]\n\n'
                     '[randomisation.strata]\nsite = ["a", "b", "c"]\nsex = ["f", "m"]\n'),
}


def blind_design(tmp_path: Path, randomisation: str) -> Path:
    """Return the example adaptive design as trial ``blind`` with another randomisation."""
    design = tmp_path / "blind.toml"
    text = ADAPTIVE.read_text().split("\n[randomisation]")[0]
    design.write_text(text.replace('name = "three_arm_adaptive"', 'name = "blind"') + "\n"
                      + randomisation)
    return design


def _floats(value, out):
    if isinstance(value, float) and 0 <= value < 1:
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _floats(v, out)
    elif isinstance(value, list):
        for v in value:
            _floats(v, out)
    elif isinstance(value, str) and value[:1] in "[{":
        try:
            _floats(json.loads(value), out)
        except ValueError:
            pass
    return out


def _features(participant_row: dict, payload: dict) -> dict[str, str]:
    """Every stored value of a participant, and simple transforms a guesser would try."""
    out = {}
    for name, value in {**{f"col.{k}": v for k, v in participant_row.items()},
                        **{f"audit.{k}": v for k, v in payload.items()}}.items():
        if name in ("col.participant", "audit.participant"):
            continue
        text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
        out[name] = text
        out[name + ".len"] = str(len(text))
        out[name + ".first"] = text[:1]
        out[name + ".last"] = text[-1:]
        out[name + ".parity"] = str(sum(map(ord, text)) % 2)
    return out


def _trained_accuracy(features: list[dict[str, str]], arms: list[int], name: str) -> float:
    """Accuracy on the second half of a value → majority-arm table learned on the first half."""
    half = len(arms) // 2
    table: dict[str, Counter] = defaultdict(Counter)
    for f, arm in zip(features[:half], arms[:half], strict=True):
        table[f.get(name, "")][arm] += 1
    overall = Counter(arms[:half]).most_common(1)[0][0]
    hits = 0
    for f, arm in zip(features[half:], arms[half:], strict=True):
        seen = table.get(f.get(name, ""))
        guess = seen.most_common(1)[0][0] if seen else overall
        hits += guess == arm
    return hits / (len(arms) - half)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_an_attacker_without_the_key_recovers_arms_at_chance(db_url, tmp_path, method):
    design = blind_design(tmp_path, METHODS[method])
    key = str(tmp_path / "k")
    lengths = set()
    with Trial.create(design, db_url, key_file=key) as trial:
        for i in range(N):
            strata = {"site": "abc"[i % 3], "sex": "fm"[(i // 3) % 2]}
            strata = {k: v for k, v in strata.items() if k in trial.adapter.rule.strata}
            if method == "blocks":
                strata["site"] = "ab"[i % 2]
            trial.enrol(f"S{i:03d}", strata)
            lengths.add(len(run_sql(db_url, "SELECT state FROM trials")[0][0]))
        truth = {r["participant"]: r["arm"] for r in trial.replay(key)}
    # Nothing stored reveals the arm directly.
    assert run_sql(db_url, "SELECT COUNT(*) FROM participants WHERE arm IS NOT NULL OR "
                           "block_no IS NOT NULL OR block_pos IS NOT NULL OR state != '{}'") == \
        [(0,)]
    # The sealed state never changes length, so its size says nothing about the counts.
    assert len(lengths) == 1
    rows = _participant_rows(db_url)
    payloads = {json.loads(p)["participant"]: json.loads(p) for (p,) in
                run_sql(db_url, "SELECT payload FROM audit WHERE action = 'enrol' ORDER BY seq")}
    order = sorted(truth)
    arms = [truth[p] for p in order]
    # 1. stored uniforms put through the allocation rule (the attack that worked before)
    uniforms = {p: _floats(rows[p], []) + _floats(payloads[p], []) for p in order}
    assert all(not u for u in uniforms.values()), "a uniform draw is stored in clear"
    # 2. every stored field as a predictor, trained on half the participants
    features = [_features(rows[p], payloads[p]) for p in order]
    names = sorted({n for f in features for n in f})
    chance = max(Counter(arms).values()) / len(arms)
    se = math.sqrt(chance * (1 - chance) / (len(arms) // 2))
    for name in names:
        acc = _trained_accuracy(features, arms, name)
        assert acc <= chance + 3.5 * se, (name, acc, chance)
    # 3. the guesser that maps any 0-1 number to an arm: nothing to map
    assert sum(arm_from_uniform(u, (1, 1, 1)) == truth[p] for p in order for u in uniforms[p]) == 0


def _participant_rows(url: str) -> dict[str, dict]:
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///"):])
        conn.row_factory = sqlite3.Row
        try:
            return {r["participant"]: dict(r) for r in conn.execute("SELECT * FROM participants")}
        finally:
            conn.close()
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return {r["participant"]: dict(r) for r in conn.execute("SELECT * FROM participants")}


def test_blinded_export_with_the_key_needs_a_reason_and_is_logged(db_url, tmp_path, run):
    design = blind_design(tmp_path, '[randomisation]\nblinded = true\nblock_sizes = [3]\n')
    key = tmp_path / "k"
    assert run("trial", "create", design, "--db", db_url, "--key-file", key).exit_code == 0
    for i in range(4):
        run("trial", "enrol", "blind", f"B{i}", "--db", db_url)
    before = run_sql(db_url, "SELECT COUNT(*) FROM audit")[0][0]
    refused = run("trial", "export", "blind", "--key-file", key, "--db", db_url)
    assert refused.exit_code == 2 and "--reason" in refused.output
    assert run_sql(db_url, "SELECT COUNT(*) FROM audit")[0][0] == before
    ok = run("trial", "export", "blind", "--key-file", key, "--reason", "DSMB closed session",
             "--user", "stats-1", "--db", db_url, "--format", "json")
    assert ok.exit_code == 0 and all("arm" in r for r in json.loads(ok.output))
    who, payload = run_sql(db_url, "SELECT who, payload FROM audit WHERE action = "
                                   "'unblind_export'")[0]
    assert who == "stats-1"
    assert json.loads(payload) == {"reason": "DSMB closed session", "participants": 4,
                                   "through_sequence": 4}
    status = json.loads(run("trial", "status", "blind", "--db", db_url, "--format",
                            "json").output)
    assert status["consort"]["unblinded"] == 4


def test_unblind_counts_participants_and_is_refused_open_label(db_url, tmp_path, run):
    blinded = blind_design(tmp_path, '[randomisation]\nblinded = true\nblock_sizes = [3]\n')
    key = tmp_path / "k"
    run("trial", "create", blinded, "--db", db_url, "--key-file", key)
    run("trial", "enrol", "blind", "B0", "--db", db_url)
    outs = [json.loads(run("trial", "unblind", "blind", "B0", "--reason", r, "--key-file", key,
                           "--db", db_url, "--format", "json").output)
            for r in ("adverse event", "adverse event follow-up")]
    assert outs[0]["allocation"] == outs[1]["allocation"]
    assert [o["first_time"] for o in outs] == [True, False]
    status = json.loads(run("trial", "status", "blind", "--db", db_url, "--format", "json").output)
    assert status["consort"]["unblinded"] == 1
    assert len(run_sql(db_url, "SELECT seq FROM audit WHERE action = 'unblind'")) == 2
    run("trial", "create", ADAPTIVE, "--db", db_url, "--key-file", tmp_path / "open.key")
    run("trial", "enrol", "three_arm_adaptive", "O1", "--db", db_url)
    refused = run("trial", "unblind", "three_arm_adaptive", "O1", "--reason", "x", "--key-file",
                  tmp_path / "open.key", "--db", db_url)
    assert refused.exit_code == 2 and "open-label" in refused.output
