"""Allocation rules and the ideal design percentage against adaptr 1.4.0.

Source: docs/references.md, "Adaptive Bayesian trials" (tolerance 1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest

from trialkit.adaptive.allocation import (
    reallocate_probs,
    reallocate_rows,
    sqrt_control_probability,
)
from trialkit.adaptive.performance import ideal_design_percentage

NAN = np.nan


@pytest.mark.parametrize(("arms", "control", "other"),
                         [(4, 0.366025, 0.211325), (3, 0.414214, 0.292893), (2, 0.5, 0.5)])
def test_sqrt_based_control_allocation_matches_adaptr(arms, control, other):
    # adaptr 1.4.0, control_prob_fixed = "sqrt-based"
    c = sqrt_control_probability(arms)
    assert c == pytest.approx(control, abs=1e-6)
    assert (1 - c) / (arms - 1) == pytest.approx(other, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, (0.1, 0.3, 0.6)),
        ({"fixed_probs": [0.2, None, None]}, (0.2, 0.266667, 0.533333)),
        ({"min_probs": [0.15, 0.2, None]}, (0.15, 0.283333, 0.566667)),
        ({"soften_power": 0.5}, (0.192993, 0.334273, 0.472734)),
    ],
)
def test_reallocation_matches_adaptr(kwargs, expected):
    # adaptr 1.4.0 reallocate_probs from P(best) = (0.1, 0.3, 0.6)
    got = reallocate_probs([0.1, 0.3, 0.6], **kwargs)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_ideal_design_percentage_matches_adaptr():
    # adaptr 1.4.0: selections (0.033, 0.967, 0), true rates (0.25, 0.20, 0.30), lower is better
    assert ideal_design_percentage([0.033, 0.967, 0.0], [0.25, 0.20, 0.30]) == pytest.approx(
        98.35, abs=1e-6)
    # higher is better mirrors it; no selection gives nan rather than a number
    assert ideal_design_percentage([0.0, 0.0, 1.0], [0.25, 0.20, 0.30], True) == 100
    assert np.isnan(ideal_design_percentage([0, 0, 0], [0.25, 0.20, 0.30]))


def test_limits_clamp_and_rescale_with_dropped_arms():
    pb = np.array([[0.0, 0.05, 0.95, 0.0], [0.5, 0.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]])
    active = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 1]], dtype=bool)
    mins = np.array([0.2, 0.2, NAN, NAN])
    maxs = np.array([NAN, NAN, 0.5, NAN])
    out = reallocate_rows(pb, active, np.full(4, NAN), mins, maxs)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert np.all(out[~active] == 0)
    # all three arms hit a limit in the first pass (0.2, 0.2, 0.5): adaptr then rescales them
    np.testing.assert_allclose(out[0], [0.2 / 0.9, 0.2 / 0.9, 0.5 / 0.9, 0.0])
    assert out[1, 0] >= 0.2 - 1e-12 and out[1, 1] >= 0.2 - 1e-12 and out[1, 2] <= 0.5 + 1e-12
    # each row equals the one-trial function applied to its active arms
    one = reallocate_probs([0.2, 0.3, 0.4], min_probs=[0.2, None, None],
                           max_probs=[None, 0.5, None])
    np.testing.assert_allclose(out[2, 1:], one / one.sum())


def test_match_control_and_fixed_rows():
    out = reallocate_probs([0.1, 0.3, 0.6], match_arm=0)
    np.testing.assert_allclose(out, [0.6 / 1.5, 0.3 / 1.5, 0.6 / 1.5])
    fixed = reallocate_probs([0.1, 0.3, 0.6], fixed_probs=[0.5, 0.25, 0.25])
    np.testing.assert_allclose(fixed, [0.5, 0.25, 0.25])


def test_rescale_factor_initial_over_active_arms():
    from trialkit.adaptive.allocation import rescale_factor

    # adaptr rescale_probs: initial arms / active arms; a control with its own allocation rule
    # is left out (rescale_ignore): (initial - 1) / (active - 1)
    np.testing.assert_allclose(rescale_factor(4, np.array([4, 3, 2])), [1, 4 / 3, 2])
    np.testing.assert_allclose(rescale_factor(4, np.array([4, 3, 2]), control_fixed=True),
                               [1, 3 / 2, 3])
    assert np.isfinite(rescale_factor(3, np.array([1]), control_fixed=True)).all()


def test_rescaled_fixed_probabilities_above_one_never_give_negative_probabilities():
    # two arms fixed at 0.4 of 4, rescaled by 4/3 after one arm is dropped: 0.533 each
    pb = np.array([[0.2, 0.3, 0.5, 0.0]])
    active = np.array([[True, True, True, False]])
    fixed = np.array([0.4, 0.4, NAN, NAN]) * 4 / 3
    out = reallocate_rows(pb, active, fixed, np.full(4, NAN), np.full(4, NAN))
    assert np.all(out >= 0)
    np.testing.assert_allclose(out, [[0.5, 0.5, 0.0, 0.0]])
