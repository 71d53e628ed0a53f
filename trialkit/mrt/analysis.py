"""Analysis of MRT data in long format (one row per participant × decision point).

The table is read with pandas (CSV or Parquet) and validated; the numbers go to the numpy
estimators in :mod:`trialkit.mrt.estimators`. Participants' rows are padded to a common length
with unavailable rows, which carry zero weight.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from trialkit.errors import DataError, TrialkitError, shown
from trialkit.mrt.checks import check_probabilities
from trialkit.mrt.estimators import emee_batch, wcls_batch
from trialkit.mrt.inference import effect_table
from trialkit.results import Result, omit_none
from trialkit.tables import MARKED_ERROR, check_magnitude, marked_rows, read_table

_TERM = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*(:[A-Za-z_.][A-Za-z0-9_.]*)*$")


def parse_formula(text: str | None, what: str) -> list[str]:
    """Terms of a right-hand-side formula ``"x1 + x2 + x1:x2"`` (``"1"`` or empty: intercept only).

    The intercept is always included; ``a:b`` is the product of columns ``a`` and ``b``.
    """
    if text is None:
        return []
    body = text.strip().lstrip("~").strip()
    if body in ("", "1"):
        return []
    terms = []
    for raw in body.split("+"):
        term = raw.strip().replace(" ", "")
        if term == "1":
            continue
        if not _TERM.match(term):
            raise TrialkitError(f"{what} formula {text!r} has the term {raw.strip()!r} — write "
                                'column names joined by "+", e.g. "x1 + x2" (a:b for a product)')
        if term not in terms:
            terms.append(term)
    return terms


@dataclass
class MrtFit:
    """A fitted causal excursion effect model (one data set)."""

    estimator: str
    effect_names: list[str]
    control_names: list[str]
    coef: np.ndarray
    cov: np.ndarray
    n_participants: int
    numerator_prob: float

    @property
    def df(self) -> int:
        """Degrees of freedom n − p − q."""
        return self.n_participants - len(self.effect_names) - len(self.control_names)

    @property
    def effect(self) -> np.ndarray:
        """Effect coefficients."""
        return self.coef[len(self.control_names):]

    @property
    def effect_cov(self) -> np.ndarray:
        """Covariance of the effect coefficients."""
        q = len(self.control_names)
        return self.cov[q:, q:]

    def summary(self, conf_level: float = 0.95, lincomb=None) -> MrtEffects:
        """Return the effect table with 1-df t tests (df = n − p − q)."""
        return MrtEffects(effect_table(self.effect, self.effect_cov, self.effect_names, self.df,
                                       conf_level, lincomb), self.n_participants)


@dataclass(frozen=True)
class MrtEffects(Result):
    """Causal excursion effects: one record per term (and per linear combination).

    :func:`analyse_mrt` adds what the analysis used: the outcome, the estimator, the numerator
    probability, whether the small-sample adjustment was applied, the moderator and control
    terms, ``probability`` when the randomisation probabilities came from the design, and
    ``data`` — how many rows there were, how many were analysed, which were left out and why,
    and the availability column.
    """

    primary: ClassVar[str | None] = "effects"
    effects: list[dict[str, Any]]
    n_participants: int
    outcome: str | None = omit_none()
    estimator: str | None = omit_none()
    numerator_prob: float | None = omit_none()
    small_sample: bool | None = omit_none()
    moderators: list[str] | None = omit_none()
    controls: list[str] | None = omit_none()
    probability: str | None = omit_none()
    variance: str | None = omit_none()
    data: dict[str, Any] | None = omit_none()


def _row(mask: np.ndarray) -> int:
    return int(np.argmax(mask)) + 1


def _numeric(data: Mapping, col: str) -> np.ndarray:
    if col not in data:
        cols = ", ".join(map(str, data.keys()))
        raise DataError(f"column '{col}' is not in the data — use one of: {cols}")
    values = np.asarray(data[col])
    if values.dtype.kind in "biuf":
        return values.astype(float)
    out = np.empty(values.shape, dtype=float)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise DataError(f"column '{col}' has the non-numeric value {v!r} at row {i + 1} — "
                            "give numbers") from None
    return out


def _no_na(values: np.ndarray, col: str, at: np.ndarray) -> None:
    """Refuse missing, infinite or absurdly large values at the rows ``at`` (available rows)."""
    bad = np.isnan(values) & at
    if bad.any():
        raise DataError(f"column '{col}' is missing at row {_row(bad)}, where the participant is "
                        "available — fill it in or mark the row unavailable")
    bad = np.isinf(values) & at
    if bad.any():
        raise DataError(f"column '{col}' has the value {values[_row(bad) - 1]:g} at row "
                        f"{_row(bad)} — give finite numbers")
    check_magnitude(np.where(at, values, 0.0), col, "data")


def _binary(values: np.ndarray, col: str, at: np.ndarray, what: str) -> None:
    bad = at & ~np.isnan(values) & (values != 0) & (values != 1)
    if bad.any():
        raise DataError(f"column '{col}' has the value {values[_row(bad) - 1]:g} at row "
                        f"{_row(bad)} — {what} must be 0 or 1")


def _term_values(data: Mapping, term: str, avail: np.ndarray, what: str) -> np.ndarray:
    out = np.ones(avail.size)
    for col in term.split(":"):
        v = _numeric(data, col)
        _no_na(v, col, avail)
        out = out * np.where(avail, v, 0.0)
    live = out[avail]
    if live.size and np.all(live == live[0]):
        raise DataError(f"{what} '{term}' is constant ({live[0]:g}) over the available rows "
                        f"(first at row {_row(avail)}) — it duplicates the intercept; drop it")
    return out


def _participant_starts(data: Mapping, id: str) -> np.ndarray:
    """Row index where each participant's rows start; rows must be grouped by participant."""
    if id not in data:
        raise DataError(f"column '{id}' is not in the data — use one of: "
                        + ", ".join(map(str, data.keys())))
    ids = np.asarray(data[id])
    if ids.size == 0:
        raise DataError("the data table has no rows — give one row per participant × decision "
                        "point")
    id_na = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in ids])
    if id_na.any():
        raise DataError(f"column '{id}' is missing at row {_row(id_na)} — every row needs a "
                        "participant id")
    starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
    seen: set = set()
    for s in starts:
        if ids[s] in seen:
            raise DataError(f"column '{id}': rows are not grouped by participant — participant "
                            f"{ids[s]!r} reappears at row {s + 1}; sort the table by participant "
                            "and decision point")
        seen.add(ids[s])
    return starts


def _check_duplicates(data: Mapping, id: str, decision_point: str) -> None:
    """Refuse a (participant, decision point) pair that appears on more than one row."""
    ids = np.asarray(data[id])
    dps = np.asarray(data[decision_point])
    first: dict = {}
    for row, key in enumerate(zip(ids.tolist(), dps.tolist(), strict=True), start=1):
        if key in first:
            raise DataError(f"participant {shown(repr(key[0]))} has decision point "
                            f"{shown(key[1])} twice (rows {first[key]} and {row}) — keep one "
                            "row per participant and decision point")
        first[key] = row


def _availability(data: Mapping, availability: str | None, n_rows: int) -> np.ndarray:
    if availability is None:
        return np.ones(n_rows, dtype=bool)
    av = _numeric(data, availability)
    na = np.isnan(av)
    if na.any():
        raise DataError(f"column '{availability}' is missing at row {_row(na)} — "
                        "availability must be 0 or 1 on every row")
    _binary(av, availability, np.ones(n_rows, bool), "availability")
    if not (av == 1).any():
        raise DataError(f"column '{availability}' is 0 on every row — no participant is ever "
                        "available, so there is nothing to estimate; check the availability column")
    return av == 1


def _probabilities(data: Mapping, prob, avail: np.ndarray) -> np.ndarray:
    if isinstance(prob, str):
        p = _numeric(data, prob)
        _no_na(p, prob, avail)
        label = f"column '{prob}'"
    else:
        p = np.full(avail.size, float(prob))
        label = "the probability"
    bad = avail & ~((p > 0) & (p < 1))
    if bad.any():
        raise DataError(f"{label} has the probability {p[_row(bad) - 1]:g} at row {_row(bad)} — "
                        "randomisation probabilities must be strictly between 0 and 1",
                        param="prob")
    return p


def _varies(avail: np.ndarray, columns) -> None:
    first = _row(avail)
    for col, values, what in columns:
        live = values[avail]
        if np.all(live == live[0]):
            raise DataError(f"column '{col}' is {live[0]:g} at every available row (first at row "
                            f"{first}) — {what}")


def _padded(starts: np.ndarray, avail: np.ndarray, n_rows: int):
    """Return a function padding row values to (1, participants, longest run of rows)."""
    lengths = np.diff(np.concatenate([starts, [n_rows]]))
    n, t_max = starts.size, int(lengths.max())
    pos = np.arange(n_rows) - np.repeat(starts, lengths)
    who = np.repeat(np.arange(n), lengths)

    def pad(v, fill=0.0):
        out = np.full((n, t_max) + v.shape[1:], fill, dtype=float)
        out[who, pos] = np.where(avail.reshape((-1,) + (1,) * (v.ndim - 1)), v, fill)
        return out[None]

    return pad, np.unique(who[avail]).size


def fit_mrt(data: Mapping, *, id: str, outcome: str, treatment: str, prob, availability: str |
            None = None, moderator: str | None = None, control: str | None = None,
            numerator_prob: float = 0.5, binary: bool = False, small="auto",
            decision_point: str | None = None, exclude: np.ndarray | None = None) -> MrtFit:
    """Fit WCLS (continuous outcome) or EMEE (``binary=True``) to a long-format table.

    ``data`` maps column names to 1-d arrays (a DataFrame works), one row per participant ×
    decision point, grouped by participant. ``id``, ``outcome``, ``treatment`` and
    ``decision_point`` (checked for missing values at available rows, and for a participant's
    decision point given twice) name columns; ``prob`` is a column of randomisation
    probabilities or one probability; ``availability`` a 0/1 column (default: all available);
    ``moderator`` and ``control`` right-hand-side formulas such as ``"x1 + x2"`` (an intercept
    is always included). Treatment is centred at ``numerator_prob`` (p̃) and weighted by
    (p̃/p)^A((1 − p̃)/(1 − p))^(1−A); ``binary`` fits EMEE on the log relative-risk scale;
    ``small`` is the Mancl–DeRouen adjustment (``"auto"``: as R ``MRTAnalysis`` — WCLS with at
    most 50 participants, EMEE always). Rows where ``exclude`` is true are left out (as if
    unavailable). Used values must be finite and at most ``MAX_ABS_VALUE`` in magnitude.
    """
    if not 0 < numerator_prob < 1:
        raise TrialkitError(f"numerator_prob = {numerator_prob!r} is outside (0, 1) — use e.g. "
                            "0.5 or the design's probability", param="numerator_prob")
    starts = _participant_starts(data, id)
    n_rows = np.asarray(data[id]).size
    if decision_point is not None:
        _check_duplicates(data, id, decision_point)
    avail = _availability(data, availability, n_rows)
    if exclude is not None:
        avail = avail & ~np.asarray(exclude, dtype=bool)
        if not avail.any():
            raise DataError("no available row is left once the excluded rows are left out — "
                            "check the data")
    a, p, y = _analysed_columns(data, treatment, prob, outcome, decision_point, avail, binary)
    mod_terms = parse_formula(moderator, "moderator")
    ctl_terms = parse_formula(control, "control")
    z = np.column_stack([np.ones(n_rows)]
                        + [_term_values(data, t, avail, "moderator") for t in mod_terms])
    b = np.column_stack([np.ones(n_rows)]
                        + [_term_values(data, t, avail, "control") for t in ctl_terms])
    check_probabilities(p[avail])
    pad, n_live = _padded(starts, avail, n_rows)
    k = z.shape[1] + b.shape[1]
    if n_live <= k:
        raise DataError(f"only {n_live} participant(s) have available rows, too few for "
                        f"{z.shape[1]} effect and {b.shape[1]} control terms (intercepts "
                        f"included; df = n − p − q = {n_live - k}) — use more than {k} "
                        "participants or fewer terms")
    fit = emee_batch if binary else wcls_batch
    res = fit(pad(y), pad(a), pad(p, 0.5), pad(avail.astype(float)), numerator_prob, pad(b),
              pad(z), small)
    _check_fit(res, binary)
    return MrtFit(estimator="emee" if binary else "wcls",
                  effect_names=["Intercept"] + mod_terms,
                  control_names=["Intercept"] + ctl_terms,
                  coef=res.coef[0], cov=res.cov[0], n_participants=int(res.n_participants[0]),
                  numerator_prob=numerator_prob)


def _analysed_columns(data: Mapping, treatment: str, prob, outcome: str,
                      decision_point: str | None, avail: np.ndarray, binary: bool):
    """Return treatment, probability and outcome, checked at the available rows."""
    a = _numeric(data, treatment)
    _no_na(a, treatment, avail)
    _binary(a, treatment, avail, "treatment")
    p = _probabilities(data, prob, avail)
    if decision_point is not None:
        _no_na(_numeric(data, decision_point), decision_point, avail)
    y = _numeric(data, outcome)
    _no_na(y, outcome, avail)
    if binary:
        _binary(y, outcome, avail, "a binary outcome")
    _varies(avail, ((treatment, a, "both treated and untreated available rows are needed to "
                     "estimate an effect"), (outcome, y, "there is no variation to analyse")))
    return a, p, y


def _check_fit(res, binary: bool) -> None:
    if not binary and not np.all(np.isfinite(res.coef[0])):
        raise TrialkitError("the model is not identifiable from these data (collinear moderators "
                            "or controls) — remove a term")
    if not res.converged[0]:
        raise TrialkitError("the estimating equation has no solution for these data (e.g. an "
                            "outcome that never or always occurs, or collinear terms) — check the "
                            "outcome or remove a term")
    if not np.all(np.isfinite(res.cov[0])):
        raise TrialkitError("the model is not identifiable from these data (collinear moderators "
                            "or controls) — remove a term")


def wcls(data: Mapping, **kwargs) -> MrtFit:
    """WCLS causal excursion effect for a continuous outcome; see :func:`fit_mrt`."""
    return fit_mrt(data, binary=False, **kwargs)


def emee(data: Mapping, **kwargs) -> MrtFit:
    """EMEE causal excursion effect (log relative risk), binary outcome; see :func:`fit_mrt`."""
    return fit_mrt(data, binary=True, **kwargs)


def parse_lincomb(text: str | None) -> np.ndarray | None:
    """Parse ``"1,1"`` (one combination) or ``"1,0;1,1"`` (several, separated by ``;``)."""
    if text is None:
        return None
    try:
        rows = [[float(x) for x in part.split(",")] for part in text.split(";") if part.strip()]
    except ValueError:
        raise TrialkitError(f"lincomb {text!r} is not a list of numbers — write weights such as "
                            '"1,1" (one per effect term; separate combinations with ";")',
                            param="lincomb") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise TrialkitError(f"lincomb {text!r} has rows of different lengths — give one weight "
                            "per effect term in every combination", param="lincomb")
    lin = np.array(rows)
    if not np.all(np.isfinite(lin)):
        raise TrialkitError(f"lincomb {text!r} has a weight that is not a finite number — give "
                            'finite weights such as "1,1"', param="lincomb")
    if np.any(np.all(lin == 0, axis=1)):
        raise TrialkitError(f"lincomb {text!r} has a combination whose weights are all zero — "
                            "give at least one non-zero weight per combination", param="lincomb")
    return lin


def _outcome(data, design, outcome: str | None, binary: bool | None):
    """Return (outcome column, binary?, the design's outcome or None)."""
    from trialkit.mrt.planning import design_outcome

    if outcome is None:
        if design is None:
            raise TrialkitError("no outcome column is given — name the proximal outcome column, "
                                "or give the design (its first outcome is the default)",
                                param="outcome")
        outcome = design.primary_outcome.name
    planned = None
    if design is not None and outcome in [o.name for o in design.outcomes]:
        planned = design_outcome(design, outcome)
    if binary is None:
        binary = planned is not None and planned.type == "binary"
    return outcome, bool(binary), planned


def _probability(columns: dict, prob, design, decision_point: str):
    """Return the probability argument of :func:`fit_mrt` and, from the design, where from."""
    from trialkit.mrt.export import design_probabilities

    if not isinstance(prob, str):
        return float(prob), None
    try:
        return float(prob), None
    except ValueError:
        pass
    if prob in columns:
        return prob, None
    if design is None:
        raise DataError(f"column '{prob}' (the randomisation probability) is not in the data — "
                        "name the probability column or give one probability, or give the "
                        "design to take the probabilities from it", param="prob")
    columns["design_probability"] = design_probabilities(design, columns[decision_point])
    return "design_probability", "the design's probabilities"


def _terms(columns: dict, planned, design, moderator, control, decision_point: str):
    """Moderator and control formulas: as given, else the design's planned terms."""
    from trialkit.mrt.export import DAY, design_terms, study_days

    if planned is None or (moderator is not None and control is not None):
        return moderator, control
    mods, ctls = design_terms(design, planned, decision_point)
    if DAY not in columns and any(DAY in t.split(":") for t in mods + ctls):
        columns[DAY] = study_days(design, columns[decision_point])
    return (" + ".join(mods) if moderator is None else moderator,
            " + ".join(ctls) if control is None else control)


def _excluded(table, include: bool) -> tuple[np.ndarray | None, int]:
    """Rows marked in error (left out unless ``include``) and how many are marked."""
    marked = marked_rows(table)
    return (None if include or not marked.any() else marked), int(marked.sum())


def _data_summary(columns: dict, id: str, availability: str | None, exclude, marked: int,
                  include: bool) -> dict[str, Any]:
    """Rows, participants, rows analysed and the rows left out with the reason."""
    n = len(columns[id])
    avail = np.ones(n, bool) if availability is None else \
        (_numeric(columns, availability) == 1)
    out = np.zeros(n, bool) if exclude is None else np.asarray(exclude, bool)
    exclusions = []
    if (~avail).any():
        exclusions.append({"reason": "not available (availability = 0)",
                           "rows": int((~avail).sum())})
    if out.any():
        exclusions.append({"reason": f"marked in error ({MARKED_ERROR} = 1)",
                           "rows": int((out & avail).sum())})
    analysed = int((avail & ~out).sum())
    return {"rows": n, "participants": len(set(np.asarray(columns[id]).tolist())),
            "analysed": analysed, "excluded": n - analysed, "exclusions": exclusions,
            "marked_error": marked, "marked_error_included": bool(include and marked),
            "availability": availability or "none (every row available)"}


def analyse_mrt(path: Any, *, id: str = "id", decision_point: str = "decision_point",
                outcome: str | None = None, treatment: str = "treatment",
                prob: str | float = "probability", availability: str | None = "availability",
                moderator: str | None = None, control: str | None = None,
                numerator_prob: float | None = None, binary: bool | None = None,
                lincomb: str | None = None, conf_level: float = 0.95, design=None,
                small="auto", include_marked_errors: bool = False, variance: str = "standard",
                policy_version: str = "policy_version") -> MrtEffects:
    """Estimate causal excursion effects from a long-format table (a pandas DataFrame).

    Column names default to those of ``trialkit trial export`` (``id``, ``decision_point``,
    ``treatment``, ``probability``, ``availability``; without an ``availability`` column every
    row is available). ``prob`` is a column name or a number. With an ``mrt`` ``design``: the
    outcome defaults to its first outcome (and EMEE for a binary one), missing probabilities come
    from the design, moderators and controls default to the planned terms
    (:func:`trialkit.mrt.export.design_terms`) and ``numerator_prob`` to the design's constant
    probability (else 0.5). Rows marked in error (``marked_error`` = 1) are left out unless
    ``include_marked_errors``. A CSV/Parquet path is still read, with a deprecation warning.

    ``variance="adaptive"`` (a design with a ``[policy]``): the marginal excursion effect with
    controls ``(1, context)`` and the adaptive sandwich of Zhang, Janson & Murphy, from the
    policy's context columns and the ``policy_version`` column of every decision.
    """
    if isinstance(path, str | os.PathLike):
        warnings.warn("analyse_mrt(PATH) is deprecated — pass a table read with "
                      "trialkit.tables.read_table", DeprecationWarning, stacklevel=2)
        data = read_table(path)
    else:
        data = path
    if decision_point not in data.columns:
        raise DataError(f"column '{decision_point}' is not in the data — use one of: "
                        + ", ".join(map(str, data.columns)), param="decision_point")
    columns = {c: data[c].to_numpy() for c in data.columns}
    outcome, binary, planned = _outcome(data, design, outcome, binary)
    prob_value, prob_label = _probability(columns, prob, design, decision_point)
    if availability == "availability" and availability not in columns:
        availability = None   # the export's column is absent: every row is available
    moderator, control = _terms(columns, planned, design, moderator, control, decision_point)
    if numerator_prob is None:
        numerator_prob = design.probability[0] if (
            design is not None and design.probability_by == "constant") else 0.5
    exclude, marked = _excluded(data, include_marked_errors)
    if variance != "standard":
        return _adaptive(columns, design, locals(), exclude, marked)
    fit = fit_mrt(columns, id=id, outcome=outcome, treatment=treatment, prob=prob_value,
                  decision_point=decision_point, availability=availability,
                  moderator=moderator, control=control, numerator_prob=numerator_prob,
                  binary=binary, small=small, exclude=exclude)
    from dataclasses import replace

    from trialkit.mrt.estimators import SMALL_SAMPLE_MAX

    applied = small is True or (small == "auto" and (binary or
                                                     fit.n_participants <= SMALL_SAMPLE_MAX))
    return replace(
        fit.summary(conf_level, parse_lincomb(lincomb)), outcome=outcome,
        estimator="EMEE" if binary else "WCLS", numerator_prob=float(numerator_prob),
        small_sample=bool(applied), moderators=fit.effect_names[1:],
        controls=fit.control_names[1:], probability=prob_label,
        data=_data_summary(columns, id, availability, exclude, marked, include_marked_errors))


def _adaptive(columns: dict, design, args: dict, exclude, marked: int) -> MrtEffects:
    """:func:`analyse_mrt` with the adaptive sandwich."""
    if args["variance"] != "adaptive":
        raise TrialkitError(f"variance = {args['variance']!r} is not known — use standard or "
                            "adaptive", param="variance")
    if design is None or getattr(design, "policy", None) is None:
        raise TrialkitError("the adaptive variance needs the design of an adaptive MRT (one with "
                            "a [policy]) — give the design, or use the standard variance",
                            param="variance")
    if args["moderator"] or args["lincomb"]:
        raise TrialkitError("the adaptive variance is computed for the marginal excursion effect "
                            "only — drop the moderators and linear combinations",
                            param="variance")
    prob = args["prob_value"]
    if not isinstance(prob, str) or prob == "design_probability":
        raise DataError("the adaptive variance needs the logged probability of every decision — "
                        "give the probability column", param="prob")
    table = adaptive_effects(
        columns, design, id=args["id"], decision_point=args["decision_point"],
        outcome=args["outcome"], treatment=args["treatment"], prob=prob,
        availability=args["availability"], version=args["policy_version"],
        numerator_prob=args["numerator_prob"], binary=args["binary"],
        conf_level=args["conf_level"], exclude=exclude)
    return MrtEffects(table, int(len(set(np.asarray(columns[args["id"]]).tolist()))),
                      outcome=args["outcome"], estimator="EMEE" if args["binary"] else "WCLS",
                      numerator_prob=float(args["numerator_prob"]), small_sample=False,
                      moderators=[], controls=list(design.policy.context),
                      variance="adaptive sandwich (Zhang, Janson & Murphy 2023)",
                      data=_data_summary(columns, args["id"], args["availability"], exclude,
                                         marked, args["include_marked_errors"]))


def _policy_arrays(columns: Mapping, spec, pad, avail: np.ndarray, version: str) -> dict:
    """Return the policy's logged history, padded (1, n, T): contexts, reward, used, versions."""
    ver = _numeric(columns, version)
    _no_na(ver, version, avail)
    if np.any((ver[avail] < 0) | (ver[avail] != np.round(ver[avail]))):
        bad = avail & ((ver < 0) | (ver != np.round(ver)))
        raise DataError(f"column '{version}' has the value {ver[_row(bad) - 1]:g} at row "
                        f"{_row(bad)} — policy versions are whole numbers ≥ 0")
    ctx = []
    for name in spec.context:
        v = _numeric(columns, name)
        _no_na(v, name, avail)
        ctx.append(v)
    reward = _numeric(columns, spec.outcome)
    used = avail & ~np.isnan(reward)
    return {"context": pad(np.column_stack(ctx) if ctx else np.zeros((avail.size, 0))),
            "reward": pad(np.nan_to_num(reward)), "used": pad(used.astype(float)),
            "version": pad(ver).astype(int)}


def _check_replay(spec, hist: dict, params, avail: np.ndarray) -> None:
    """Refuse data whose logged probabilities the design's policy does not reproduce."""
    from trialkit.mrt.policy import policy_probabilities

    worst, count = 0.0, 0
    for v in range(params.mean.shape[1]):
        rows = (hist["version"][0] == v) & (avail[0] > 0)
        if not rows.any():
            continue
        pi = policy_probabilities(spec, params.take((0, v)), hist["context"][0][rows])
        diff = np.abs(pi - hist["probability"][0][rows])
        worst, count = max(worst, float(diff.max())), count + int((diff > 1e-6).sum())
    if count:
        raise DataError(f"the design's policy does not reproduce the logged probabilities at "
                        f"{count} available row(s) (largest difference {worst:.3g}) — the "
                        "adaptive variance needs the trial's own design, its context columns and "
                        "policy versions, and every outcome recorded before each update",
                        param="variance")


def adaptive_effects(columns: Mapping, design, *, id: str, decision_point: str, outcome: str,
                     treatment: str, prob: str, availability: str | None, version: str,
                     numerator_prob: float, binary: bool, conf_level: float,
                     exclude: np.ndarray | None) -> list[dict]:
    """Marginal excursion effect with the adaptive sandwich, from a logged adaptive MRT.

    The policy's posterior of every version is rebuilt from the data (rows of earlier versions
    with their outcome); the logged probabilities must be reproduced to 1e-6. Controls are
    ``(1, context)``; the record carries ``std_error`` (adaptive) and ``std_error_standard``.
    """
    from trialkit.mrt.adaptive_variance import fit_marginal, version_params, version_statistics

    spec = design.policy
    starts = _participant_starts(columns, id)
    n_rows = np.asarray(columns[id]).size
    _check_duplicates(columns, id, decision_point)
    avail = _availability(columns, availability, n_rows)
    if exclude is not None:
        avail = avail & ~np.asarray(exclude, dtype=bool)
    a, p, y = _analysed_columns(columns, treatment, prob, outcome, decision_point, avail, binary)
    pad, _ = _padded(starts, avail, n_rows)
    hist = _policy_arrays(columns, spec, pad, avail, version)
    hist.update(action=pad(a), probability=pad(p, 0.5))
    params = version_params(spec, version_statistics(spec, hist, hist["version"]))
    _check_replay(spec, hist, params, pad(avail.astype(float)))
    res = fit_marginal(spec, hist, hist["version"], params, pad(y), pad(avail.astype(float)),
                       numerator_prob, binary)
    df = float(res["df"][0])
    table = effect_table(res["estimate"], res["se_adaptive"][:, None] ** 2, ["Intercept"], df,
                         conf_level)
    table[0]["std_error_standard"] = float(res["se_standard"][0])
    return table
