"""Status, analysis-ready export and the REDCap allocation table of a live trial."""

from __future__ import annotations

import itertools
import json
from typing import Any

from trialkit.errors import ServiceError
from trialkit.randomise import block_sequence


def _imbalance(counts: list[int], ratio: list[int]) -> float:
    scaled = [c / r for c, r in zip(counts, ratio, strict=True)]
    return max(scaled) - min(scaled)


def status(trial) -> dict[str, Any]:
    """Counts per arm/condition and stratum, imbalance and CONSORT-style counts.

    For blinded trials counts per arm are not shown (they would need the key).
    """
    cfg = trial.config
    store = trial.store
    out: dict[str, Any] = {"trial": trial.name, "kind": trial.kind, "design": cfg["design"],
                           "design_sha256": trial.design_sha256}
    unblinded = store.query("SELECT COUNT(*) FROM audit WHERE trial = ? AND action = 'unblind'",
                            (trial.name,))[0][0]
    if trial.kind == "mrt":
        rows = store.query("SELECT participant, available, reason, probability, action FROM "
                           "decisions WHERE trial = ?", (trial.name,))
        avail = [r for r in rows if r[1]]
        reasons: dict[str, int] = {}
        for r in rows:
            if not r[1]:
                reasons[r[2]] = reasons.get(r[2], 0) + 1
        treated = sum(r[4] for r in avail)
        out.update({
            "participants": len({r[0] for r in rows}),
            "decision_points": len(rows),
            "available": len(avail),
            "treated": treated,
            "treated_rate": treated / len(avail) if avail else None,
            "mean_probability": (sum(r[3] for r in avail) / len(avail)) if avail else None,
            "unavailable": [{"reason": k, "n": v} for k, v in sorted(reasons.items())],
        })
        return out
    groups = cfg["groups"]
    ratio = cfg["ratio"]
    rows = store.query("SELECT stratum, arm, error FROM participants WHERE trial = ?",
                       (trial.name,))
    blinded = cfg["blinded"]
    word = "condition" if trial.kind == "factorial" else "arm"
    n_error = sum(1 for r in rows if r[2])
    out.update({"method": cfg["method"], "blinded": blinded, "enrolled": len(rows)})
    by_stratum: dict[str, list[int]] = {}
    for stratum, arm, _ in rows:
        counts = by_stratum.setdefault(stratum, [0] * len(groups))
        if arm is not None:
            counts[arm] += 1
    strata_rows = []
    for stratum in sorted(by_stratum):
        counts = by_stratum[stratum]
        rec: dict[str, Any] = {"stratum": stratum or "(all)", "enrolled": sum(counts)
                               if not blinded else sum(1 for r in rows if r[0] == stratum)}
        if not blinded:
            rec["imbalance"] = _imbalance(counts, ratio)
            rec.update({f"{word}_{g}" if trial.kind == "factorial" else g: c
                        for g, c in zip(groups, counts, strict=True)})
        strata_rows.append(rec)
    if not blinded:
        total = [sum(c[j] for c in by_stratum.values()) for j in range(len(groups))]
        out["imbalance"] = _imbalance(total, ratio) if rows else 0.0
        out["groups"] = [{word: int(g) if trial.kind == "factorial" else g, "ratio": r,
                          "enrolled": n} for g, r, n in zip(groups, ratio, total, strict=True)]
    out["strata"] = strata_rows
    out["consort"] = {"randomised": len(rows), "marked_error": n_error,
                      "included": len(rows) - n_error, "unblinded": unblinded}
    return out


def export_rows(trial, key_file: str | None = None) -> list[dict[str, Any]]:
    """Analysis-ready rows.

    Factorial: ``participant, sequence, condition``, one ±1 effect-coded column per factor, the
    strata, ``enrolled_at, marked_error, error_reason``. Multi-arm: ``arm`` instead of the condition
    columns. MRT: exactly ``id, decision_point, availability, treatment, probability``. For blinded
    trials the ``code`` column is exported, and the arms only when ``key_file`` is given.
    """
    cfg = trial.config
    store = trial.store
    if trial.kind == "mrt":
        rows = store.query("SELECT participant, decision_point, available, action, probability "
                           "FROM decisions WHERE trial = ? ORDER BY participant, decision_point",
                           (trial.name,))
        return [dict(zip(MRT_COLUMNS, (p, dp, int(a), int(t), prob), strict=True))
                for p, dp, a, t, prob in rows]
    blinded = cfg["blinded"]
    key = trial.key(key_file) if (blinded and key_file) else None
    rows = store.query("SELECT participant, sequence, strata, arm, allocation, enrolled_at, "
                       "error, error_reason FROM participants WHERE trial = ? ORDER BY sequence",
                       (trial.name,))
    out = []
    for participant, sequence, strata, arm, allocation, at, error, reason in rows:
        rec: dict[str, Any] = {"participant": participant, "sequence": sequence}
        if blinded:
            rec["code"] = allocation
            arm = trial._decode(key, participant, allocation) if key is not None else None
        if arm is not None or not blinded:
            if trial.kind == "factorial":
                rec["condition"] = arm + 1
                rec.update(zip(cfg["factor_names"], cfg["conditions"][arm], strict=True))
            else:
                rec["arm"] = cfg["groups"][arm]
        rec.update(json.loads(strata))
        rec.update({"enrolled_at": at, "marked_error": int(error), "error_reason": reason})
        out.append(rec)
    return out


MRT_COLUMNS = ("id", "decision_point", "availability", "treatment", "probability")


def export_columns(trial, key_file: str | None = None) -> list[str]:
    """The columns of :func:`export_rows`, also when there are no rows yet (the CSV header)."""
    cfg = trial.config
    if trial.kind == "mrt":
        return list(MRT_COLUMNS)
    cols = ["participant", "sequence"]
    if cfg["blinded"]:
        cols.append("code")
    if not cfg["blinded"] or key_file:
        cols += ["condition", *cfg["factor_names"]] if trial.kind == "factorial" else ["arm"]
    return [*cols, *cfg["strata"], "enrolled_at", "marked_error", "error_reason"]


def allocation_table(trial, n_per_stratum: int, key_file: str | None = None,
                     user: str | None = None) -> list[dict[str, Any]]:
    """A REDCap-compatible allocation table: ``randomization_group`` and one column per stratum.

    Values are REDCap raw codes: the 1-based group (arm or condition) number and the 1-based level
    number of each stratum. Blocks come from a stream of the key separate from the live
    allocations, so exporting the table reveals nothing about the service's own sequence. The
    export is logged.
    """
    cfg = trial.config
    if trial.kind == "mrt":
        raise ServiceError("an MRT has no allocation table — decisions are drawn at each "
                           "decision point with 'trialkit trial decide'")
    if cfg["method"] == "minimisation":
        raise ServiceError("minimisation depends on earlier participants and cannot be "
                           "tabulated in advance — use the live service, or method = \"blocks\"")
    if n_per_stratum < 1:
        raise ServiceError(f"rows per stratum {n_per_stratum} must be at least 1 — give --rows N")
    key = trial.key(key_file)
    levels = cfg["strata"]
    names = list(levels)
    sizes = cfg["block_sizes"] if cfg["method"] == "blocks" else [sum(cfg["ratio"])]
    out = []
    for combo in itertools.product(*(range(len(levels[n])) for n in names)):
        label = "redcap|" + ";".join(f"{n}={levels[n][i]}" for n, i in zip(names, combo,
                                                                           strict=True))
        if cfg["method"] == "blocks":
            seq = [a for a, _, _ in block_sequence(key, trial.name, label, n_per_stratum, sizes,
                                                  cfg["ratio"])]
        else:
            from trialkit.randomise import KeyedStream, arm_from_uniform

            stream = KeyedStream(key, "complete", trial.name, label)
            seq = [arm_from_uniform(stream.uniform(), cfg["ratio"]) for _ in range(n_per_stratum)]
        for arm in seq:
            rec = {"randomization_group": arm + 1}
            rec.update({n: i + 1 for n, i in zip(names, combo, strict=True)})
            out.append(rec)
    who = trial._user(user)
    with trial.store.write(trial.name):
        head = trial._head()
        trial._log(head, who, "allocation_table", {"rows_per_stratum": n_per_stratum,
                                                   "rows": len(out)})
    return out
