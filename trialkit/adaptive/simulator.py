"""The adaptive-trial simulator, vectorised across simulated trials.

All trials of a block advance look by look together: every trial still running randomises its next
patients, is analysed, drops arms and stops under masks. Trial ``i`` of a run seeded ``s`` draws
everything from its own generator (``SeedSequence(s, spawn_key=(i,))``): first one uniform per
patient for the allocation and one per patient for the outcome, then the posterior draws of each
analysis. Results therefore do not depend on blocks, chunks or ``--jobs``.

The algorithm is that of adaptr's ``run_trial``: posterior draws per active arm (beta(prior +
events) for binary outcomes; normal(mean, sd/sqrt(n)) for continuous ones), P(best) from the
draws, inferiority (arms dropped and draws renewed until none is inferior), superiority,
equivalence and futility per look, response-adaptive reallocation (softened, clamped, fixed arms
kept) and, with a common control, a superior arm becoming the new control.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from trialkit.adaptive.allocation import reallocate_rows, rescale_factor
from trialkit.adaptive.posterior import DrawsPosterior, ExactPosterior
from trialkit.adaptive.spec import TrialSpec
from trialkit.simulate.engine import concatenate, replicate_rngs

FINAL_STATUS = ("max", "superiority", "equivalence", "futility")
ARM_STATUS = ("active", "control", "superior", "inferior", "equivalence", "futile")
ACTIVE, CONTROL, SUPERIOR, INFERIOR, EQUIVALENT, FUTILE = range(6)
BLOCK = 200
_BLOCK_VALUES = 20_000_000  # at most this many values per large array of a block (~160 MB)


def simulate_range(reps: range, spec: TrialSpec, seed: int, offset: int = 0) -> dict:
    """Simulate trials ``offset + reps`` (a module-level function for :func:`run_replicates`)."""
    start, stop = reps.start + offset, reps.stop + offset
    per_trial = max(spec.max_n, spec.n_arms * spec.draws if spec.method == "draws" else 0)
    block = max(1, min(BLOCK, _BLOCK_VALUES // per_trial))  # bounded memory for many draws
    parts = [_simulate_block(a, min(a + block, stop), spec, seed)
             for a in range(start, stop, block)]
    return concatenate(parts)


def _simulate_block(start: int, stop: int, spec: TrialSpec, seed: int) -> dict:
    exact = spec.method == "exact"
    t, a, n_looks, n_max, d = stop - start, spec.n_arms, spec.n_looks, spec.max_n, spec.draws
    rngs = replicate_rngs(seed, start, stop)
    u_alloc = np.empty((t, n_max))
    u_out = np.empty((t, n_max))
    for j, rng in enumerate(rngs):
        u_alloc[j] = rng.random(n_max)
        u_out[j] = rng.random(n_max) if spec.binary else rng.standard_normal(n_max)
    true = np.asarray(spec.true_values, dtype=float)
    sds = np.asarray(spec.sds, dtype=float)
    drift = spec.trend * np.arange(n_max) / max(n_max - 1, 1)
    hib = spec.highest_is_best
    worst = -np.inf if hib else np.inf
    prior_a, prior_b = spec.prior
    fixed = np.asarray(spec.fixed_probs, dtype=float)
    mins = np.asarray(spec.min_probs, dtype=float)
    maxs = np.asarray(spec.max_probs, dtype=float)

    arm_of = np.zeros((t, n_max), dtype=np.int8)
    y = np.zeros((t, n_max))
    active = np.ones((t, a), dtype=bool)
    status = np.zeros((t, a), dtype=np.int8)
    ctrl = np.full(t, spec.control, dtype=np.int64)
    if spec.control >= 0:
        status[:, spec.control] = CONTROL
    alloc = np.tile(np.asarray(spec.start_probs, dtype=float), (t, 1))
    status_look = np.zeros((t, a), dtype=np.int64)
    final_status = np.zeros(t, dtype=np.int8)
    running = np.ones(t, dtype=bool)
    looks_done = np.zeros(t, dtype=np.int64)
    followed_n = np.zeros(t, dtype=np.int64)
    final_n = np.zeros(t, dtype=np.int64)
    pb_last = np.full((t, a), np.nan)
    alloc_hist = np.full((t, n_looks, a), np.nan, dtype=np.float32)
    cum_n = np.zeros((t, a))
    cum_s = np.zeros((t, a))
    cum_ss = np.zeros((t, a))
    check_eq = np.full(t, spec.equivalence_prob is not None)
    check_fut = np.full(t, spec.futility_prob is not None)
    arms_idx = np.arange(a)
    fallback_sd = 1e3 * max(float(sds.max()), 1.0)

    def stats_rows(rows: np.ndarray):
        n, s = cum_n[rows], cum_s[rows]
        if spec.binary:
            return prior_a + s, prior_b + n - s
        mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        var = np.divide(cum_ss[rows] - n * mean**2, n - 1, out=np.zeros_like(s), where=n > 1)
        se = np.where(n > 1, np.sqrt(np.maximum(var, 0) / np.maximum(n, 1)), fallback_sd)
        return mean, np.maximum(se, 1e-12)

    def posterior(rows: np.ndarray):
        """Posteriors of the active arms of trials ``rows`` (draws or quadrature)."""
        p1, p2 = stats_rows(rows)
        act_rows = active[rows]
        if exact:
            if spec.binary:
                return ExactPosterior.beta(p1, p2, act_rows, hib)
            return ExactPosterior.normal(p1, p2, act_rows, hib)
        out = np.full((rows.size, a, d), worst)
        for j, i in enumerate(rows):
            act = np.flatnonzero(act_rows[j])
            if spec.binary:
                out[j, act] = rngs[i].beta(p1[j, act, None], p2[j, act, None],
                                           size=(act.size, d))
            else:
                out[j, act] = rngs[i].normal(p1[j, act, None], p2[j, act, None],
                                             size=(act.size, d))
        return DrawsPosterior(out, act_rows, hib)

    def compare(post, c: int):
        res = post.compare(np.array([c]), spec.equivalence_diff, spec.futility_diff)
        return tuple(None if x is None else x[0] for x in res)

    def limits(rows: np.ndarray):
        """Fixed probabilities and limits for ``rows``, after control rules and rescaling."""
        n_act = active[rows].sum(axis=1)
        fx = np.tile(fixed, (rows.size, 1))
        lo = np.tile(mins, (rows.size, 1))
        hi = np.tile(maxs, (rows.size, 1))
        control_rule = spec.control >= 0 and spec.control_allocation != "none"
        factor = rescale_factor(a, n_act, control_rule)[:, None]
        if spec.rescale in ("fixed", "both"):
            fx = fx * factor
        if spec.rescale in ("limits", "both"):
            lo = lo * factor
            hi = np.minimum(hi * factor, 1.0)
        match = None
        if spec.control >= 0 and spec.control_allocation != "none":
            c = ctrl[rows]
            r = np.arange(rows.size)
            lo[r, c] = np.nan
            hi[r, c] = np.nan
            if spec.control_allocation == "match":
                match = c
            else:
                fx[r, c] = [spec.control_fixed_for(int(k)) for k in n_act]
        return fx, lo, hi, match

    def _control_look(i: int, look: int, post_i, pb_i: np.ndarray) -> None:
        """One analysis of trial ``i`` with a common control (adaptr's loop, one trial)."""
        d1 = spec.data_looks[look]
        sup_l, inf_l = spec.superiority[look], spec.inferiority[look]
        c = int(ctrl[i])
        act = active[i]
        pbetter, peq, pfut = compare(post_i, c)
        eq_stop = fut_stop = stop = False
        run_check = True
        while run_check:
            run_check = False
            update = False
            inferior = act & (np.nan_to_num(pbetter, nan=1.0) < inf_l)
            if inferior.any():
                status[i, inferior] = INFERIOR
                status_look[i, inferior] = d1
                act &= ~inferior
                update = True
            better = np.nan_to_num(pbetter, nan=-1.0)
            better[~act] = -1.0
            if (better > sup_l).any():
                new = int(better.argmax())
                status[i, new] = CONTROL
                status[i, c] = INFERIOR
                status_look[i, c] = d1
                act[c] = False
                c = new
                ctrl[i] = c
                run_check = update = True
                if spec.equivalence_only_first:
                    check_eq[i] = False
                if spec.futility_only_first:
                    check_fut[i] = False
            else:
                if check_eq[i] and peq is not None:
                    eq = act & (np.nan_to_num(peq, nan=0.0) > spec.equivalence_prob[look])
                    if eq.any():
                        status[i, eq] = EQUIVALENT
                        status_look[i, eq] = d1
                        act &= ~eq
                        update = True
                        if act.sum() == 1:
                            eq_stop = True
                            check_fut[i] = False
                if check_fut[i] and pfut is not None:
                    fut = act & (np.nan_to_num(pfut, nan=0.0) > spec.futility_prob[look])
                    fut &= status[i] != EQUIVALENT
                    if fut.any():
                        status[i, fut] = FUTILE
                        status_look[i, fut] = d1
                        act &= ~fut
                        update = True
                        if act.sum() == 1:
                            fut_stop = True
            if act.sum() == 1:
                last = int(np.flatnonzero(act)[0])
                status[i, last] = ACTIVE if (eq_stop or fut_stop) else SUPERIOR
                status_look[i, last] = d1
                stop = True
            if update:
                post_i = posterior(np.array([i]))
                pb_i = post_i.prob_best()[0]
                pbetter, peq, pfut = compare(post_i, c)
            if stop:
                break
        pb_last[i] = np.where(act, pb_i, np.nan)
        if stop:
            final_status[i] = 2 if eq_stop else 3 if fut_stop else 1
            running[i] = False

    prev_data = 0
    for look in range(n_looks):
        idx = np.flatnonzero(running)
        if idx.size == 0:
            break
        r0 = spec.randomised_at_looks[look - 1] if look else 0
        r1 = spec.randomised_at_looks[look]
        d1 = spec.data_looks[look]
        alloc_hist[idx, look] = alloc[idx]
        if r1 > r0:
            cum = np.cumsum(alloc[idx], axis=1)
            cum = cum / cum[:, -1:]
            new = (u_alloc[idx, r0:r1, None] >= cum[:, None, :]).sum(axis=2)
            new = np.minimum(new, a - 1)
            arm_of[idx, r0:r1] = new
            base = true[new] + drift[r0:r1]
            if spec.binary:
                y[idx, r0:r1] = u_out[idx, r0:r1] < np.clip(base, 0.0, 1.0)
            else:
                y[idx, r0:r1] = base + sds[new] * u_out[idx, r0:r1]
        if d1 > prev_data:
            onehot = arm_of[idx, prev_data:d1, None] == arms_idx
            yy = y[idx, prev_data:d1, None]
            cum_n[idx] += onehot.sum(axis=1)
            cum_s[idx] += (onehot * yy).sum(axis=1)
            if not spec.binary:
                cum_ss[idx] += (onehot * yy**2).sum(axis=1)
        prev_data = d1
        followed_n[idx] = d1
        final_n[idx] = r1
        looks_done[idx] = look + 1
        sup_l, inf_l = spec.superiority[look], spec.inferiority[look]

        post = posterior(idx)
        pb = post.prob_best()
        if spec.control < 0:
            # Inferiority: drop arms, renew draws, repeat until no arm is inferior.
            while True:
                inferior = active[idx] & (pb < inf_l)
                rows = np.flatnonzero(inferior.any(axis=1))
                if rows.size == 0:
                    break
                g = idx[rows]
                hit = inferior[rows]
                status[g] = np.where(hit, INFERIOR, status[g])
                status_look[g] = np.where(hit, d1, status_look[g])
                active[g] &= ~hit
                renewed = posterior(g)
                post.put(rows, renewed)
                pb[rows] = renewed.prob_best()
            pb_last[idx] = np.where(active[idx], pb, np.nan)
            best = pb.argmax(axis=1)
            sup = pb.max(axis=1) > sup_l
            g = idx[sup]
            status[g, best[sup]] = SUPERIOR
            status_look[g, best[sup]] = d1
            final_status[g] = 1
            running[g] = False
            if spec.equivalence_prob is not None:
                rows = np.flatnonzero(~sup)
                if rows.size:
                    p_eq = post.take(rows).prob_all_equivalent(spec.equivalence_diff)
                    eq = rows[p_eq > spec.equivalence_prob[look]]
                    g = idx[eq]
                    status[g] = np.where(active[g], EQUIVALENT, status[g])
                    status_look[g] = np.where(active[g], d1, status_look[g])
                    final_status[g] = 2
                    running[g] = False
            rows = np.flatnonzero(running[idx])
            if rows.size:
                g = idx[rows]
                fx, lo, hi, _ = limits(g)
                alloc[g] = reallocate_rows(pb[rows], active[g], fx, lo, hi,
                                           spec.softening[look])
        else:
            for j, i in enumerate(idx):
                _control_look(i, look, post.take([j]), pb[j])
            rows = np.flatnonzero(running[idx])
            if rows.size:
                g = idx[rows]
                fx, lo, hi, match = limits(g)
                pbr = np.where(active[g], pb_last[g], 0.0)
                alloc[g] = reallocate_rows(pbr, active[g], fx, lo, hi, spec.softening[look],
                                           match)

    # Final analysis with every randomised patient.
    within = np.arange(n_max)[None, :] < final_n[:, None]
    onehot = (arm_of[:, :, None] == arms_idx) & within[:, :, None]
    ns_all = onehot.sum(axis=1)
    sums_all = (onehot * y[:, :, None]).sum(axis=1)
    if spec.binary:
        # posterior median, adaptr's default (robust) estimate for binary outcomes
        post_all = special.betaincinv(prior_a + sums_all, prior_b + ns_all - sums_all, 0.5)
    else:
        post_all = np.divide(sums_all, ns_all, out=np.full_like(sums_all, np.nan),
                             where=ns_all > 0)
    return {
        "final_status": final_status,
        "final_n": final_n,
        "followed_n": followed_n,
        "looks": looks_done,
        "arm_status": status,
        "status_look": status_look,
        "probs_best_last": pb_last,
        "ns_all": ns_all.astype(np.int64),
        "sum_ys_all": sums_all,
        "post_all": post_all,
        "final_control": ctrl,
        "alloc_history": alloc_hist,
    }
