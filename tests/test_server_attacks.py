"""The server under attack: a coordinator trying to predict allocations, and kill -9 under load."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import pytest
from serverkit import Server

from trialkit.server.client import Connection, RemoteTrial
from trialkit.service.trial import Trial

TWO_ARMS = """kind = "adaptive"
name = "two_arm"
title = "Two arms"

[[arms]]
name = "control"

[[arms]]
name = "app"

[outcome]
type = "binary"
highest_is_best = false

[looks]
data = [100]
randomised = [100]

[stopping]
superiority = 0.99
inferiority = 0.01

[scenarios.null]
values = [0.2, 0.2]

[randomisation]
"""
N = 2000


def _serve_two_arms(tmp_path, method: str):
    design = tmp_path / "two.toml"
    design.write_text(TWO_ARMS + method)
    db = f"sqlite:///{tmp_path / 'two.db'}"
    key = str(tmp_path / "two.key")
    with Trial.create(design, db, key_file=key) as trial:
        token = trial.create_token("coordinator")["token"]
    return db, key, token


@pytest.mark.slow
@pytest.mark.parametrize("method,theory", [
    ('method = "blocks"\nblock_sizes = [4]\n', 17 / 24),  # 0.708: Rosenberger & Lachin §8.4
    ('method = "complete"\n', 0.5),
])
def test_a_coordinator_guesses_no_better_than_the_method_allows(tmp_path, monkeypatch, method,
                                                                theory):
    """Guess 2000 enrolments as a coordinator who sees everything a coordinator token can request.

    The convergence strategy guesses at the method's theoretical rate, and nothing else in the
    responses (receipts, sequence numbers, times) predicts the next allocation. The trial's key
    is drawn from a seeded generator, so the allocations (and the rate) are the same every run;
    the receipts still change with the times in them, so their checks allow 4 standard errors.
    """
    import random

    from trialkit.service import keys

    monkeypatch.setattr(keys.secrets, "token_bytes", random.Random(2000).randbytes)
    db, key, token = _serve_two_arms(tmp_path, method)
    with Server(db) as server, RemoteTrial(Connection(server.url, token), "two_arm") as trial:
        arms, receipts = [], []
        for i in range(N):
            out = trial.enrol(f"P{i:04d}")
            arms.append(0 if out["allocation"] == "control" else 1)
            receipts.append(out["receipt"])
        assert trial.participant("P0000")["allocation"] in ("control", "app")
    credit = 0.0
    for i, arm in enumerate(arms):
        start = i - i % 4 if "blocks" in method else 0
        counts = Counter(arms[start:i]) if "blocks" in method else Counter()
        if counts[0] == counts[1]:
            credit += 0.5  # a fair coin when tied
        else:
            credit += arm == (0 if counts[0] < counts[1] else 1)
    rate = credit / N
    se = math.sqrt(theory * (1 - theory) / N)
    assert abs(rate - theory) <= 3 * se, (rate, theory)
    # anything in the previous response as a predictor of the next allocation: at chance
    features = {
        "receipt head parity": [int(r.split(":")[3], 16) % 2 for r in receipts],
        "receipt tag parity": [int(r.split(":")[4], 16) % 2 for r in receipts],
        "sequence parity": [i % 2 for i in range(N)],
    }
    for name, values in features.items():
        table: dict[int, Counter] = {0: Counter(), 1: Counter()}
        half = N // 2
        for prev, nxt in zip(values[:half - 1], arms[1:half], strict=True):
            table[prev][nxt] += 1
        hits = sum(table[prev].most_common(1)[0][0] == nxt
                   for prev, nxt in zip(values[half - 1:-1], arms[half:], strict=True))
        assert hits / (N - half) <= 0.5 + 4 * math.sqrt(0.25 / (N - half)), name


@pytest.mark.slow
def test_kill_9_under_load_loses_nothing_a_client_received(tmp_path):
    db = f"sqlite:///{tmp_path / 'k.db'}"
    key = str(tmp_path / "k.key")
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    fixed = tmp_path / "three_arm_adaptive.toml"  # fixed blocks: no cap before a first look
    fixed.write_text((root / "designs" / "three-arm-adaptive.toml").read_text()
                     + '\n[randomisation]\nmethod = "blocks"\n')
    Trial.create(fixed, db, key_file=key).close()
    Trial.create(root / "designs" / "checkin-prompts-mrt.toml", db,
                 key_file=str(tmp_path / "m.key")).close()
    with Trial.open(db, "three_arm_adaptive") as t:
        coordinator = t.create_token("coordinator")["token"]
    with Trial.open(db, "checkin_prompts_mrt") as t:
        app = t.create_token("app")["token"]
    server = Server(db, workers=2).start()
    received: list[tuple[str, dict]] = []
    failures: list[str] = []
    guard = threading.Lock()

    def client(kind: str, c: int) -> None:
        conn = Connection(server.url, coordinator if kind == "enrol" else app, timeout=10,
                          retries=100, retry_wait=0.1)
        remote = RemoteTrial(conn, "three_arm_adaptive" if kind == "enrol"
                             else "checkin_prompts_mrt")
        try:
            for i in range(120):
                if kind == "enrol":
                    out = remote.enrol(f"c{c}-{i}")
                else:
                    out = remote.decide(f"u{c}-{i // 30}", i % 30 + 1, True)
                with guard:
                    received.append((kind, out))
        except Exception as exc:
            failures.append(f"{kind} {c}: {exc}")
        finally:
            remote.close()

    threads = [threading.Thread(target=client, args=("enrol", c)) for c in range(4)]
    threads += [threading.Thread(target=client, args=("decide", c)) for c in range(2)]
    for t in threads:
        t.start()
    try:
        while len(received) < 150:
            time.sleep(0.01)
        server.kill()  # SIGKILL, mid-load
        time.sleep(0.3)
        server = Server(db, port=server.port, workers=2).start()
        for t in threads:
            t.join(timeout=120)
    finally:
        server.stop()
    assert not failures, failures
    assert len(received) == 6 * 120
    with Trial.open(db, "three_arm_adaptive") as t:
        stored = {r["participant"]: r["arm"] for r in t.export()}
        assert t.verify(key)["ok"]
    for kind, out in received:
        if kind == "enrol":
            assert stored[out["participant"]] == out["allocation"], out
    with Trial.open(db, "checkin_prompts_mrt") as t:
        decisions = {(r["id"], r["decision_point"]): r["treatment"] for r in t.export()}
        assert t.verify(str(tmp_path / "m.key"))["ok"]
    for kind, out in received:
        if kind == "decide":
            assert decisions[(out["participant"], out["decision_point"])] == out["action"]
    assert len(stored) == 4 * 120 and len(decisions) == 2 * 120
