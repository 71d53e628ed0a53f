"""The adaptive simulator's own beta functions: exact cases, SciPy agreement, a SciPy-free start."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from trialkit.adaptive.beta import beta_median, betainc, betaln
from trialkit.engine.memory import keep_freed_memory

DESIGN = Path(__file__).resolve().parent.parent / "designs" / "three-arm-adaptive.toml"


def _exact_log_beta(a: int, b: int) -> float:
    """Return log B(a, b) for whole numbers from factorials, exactly, then rounded once."""
    value = Fraction(math.factorial(a - 1) * math.factorial(b - 1), math.factorial(a + b - 1))
    return math.log(value.numerator) - math.log(value.denominator)


@pytest.mark.parametrize(("a", "b"), [(1, 1), (3, 4), (20, 7), (150, 600), (1000, 1001)])
def test_betaln_equals_the_factorial_formula(a, b):
    assert betaln(float(a), float(b)) == pytest.approx(_exact_log_beta(a, b), rel=1e-13, abs=1e-13)


def test_betaln_matches_scipy_over_a_wide_range():
    rng = np.random.default_rng(11)
    a = np.concatenate([rng.uniform(0.05, 5, 400), rng.integers(1, 3000, 400) + 1.0,
                        rng.uniform(0.1, 20_000, 400)])
    b = rng.permutation(a)
    got, ref = betaln(a, b), special.betaln(a, b)
    assert got.shape == a.shape
    # SciPy itself is off by up to ~2e-10 where one argument is small and the other large
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_betaln_where_scipy_loses_digits():
    """A small and a large argument, where SciPy loses digits.

    mpmath 1.4.1 (40 digits) gives -0.35245659889192016; scipy.special.betaln 1.17 gives
    -0.3524565989500843.
    """
    assert betaln(0.19522826727392606, 17030.8687746924) == pytest.approx(
        -0.35245659889192016, rel=1e-14)


@pytest.mark.parametrize("a", [0.3, 1.0, 2.5, 17.0, 400.0, 5000.0])
def test_medians_with_closed_forms(a):
    """Beta(a, 1) has median 2^(-1/a), Beta(1, a) its mirror, and Beta(a, a) median 1/2."""
    assert beta_median(a, 1.0) == pytest.approx(0.5 ** (1 / a), rel=1e-13)
    assert beta_median(1.0, a) == pytest.approx(1 - 0.5 ** (1 / a), rel=1e-12)
    assert beta_median(a, a) == pytest.approx(0.5, rel=1e-14)


def test_median_matches_scipy_on_simulated_posteriors():
    rng = np.random.default_rng(5)
    n = rng.integers(0, 3000, (500, 3))
    events = rng.binomial(n, rng.uniform(0.02, 0.98, (500, 3)))
    a, b = 1.0 + events, 1.0 + n - events
    got = beta_median(a, b)
    assert got.shape == (500, 3)
    np.testing.assert_allclose(got, special.betaincinv(a, b, 0.5), rtol=1e-13)


def test_median_matches_scipy_for_small_priors():
    rng = np.random.default_rng(6)
    a, b = rng.uniform(0.05, 5, 400), rng.uniform(0.05, 5, 400)
    got = beta_median(a, b)
    assert np.all((got > 0) & (got < 1))
    np.testing.assert_allclose(got, special.betaincinv(a, b, 0.5), rtol=1e-11)
    # and the medians halve the probability, by SciPy's incomplete beta function
    np.testing.assert_allclose(special.betainc(a, b, got), 0.5, atol=1e-12)


def test_betainc_matches_scipy_and_its_ends():
    rng = np.random.default_rng(7)
    a, b = rng.uniform(0.1, 800, 600), rng.uniform(0.1, 800, 600)
    x = rng.uniform(0, 1, 600)
    np.testing.assert_allclose(betainc(x, a, b), special.betainc(a, b, x), atol=1e-12)
    ends = betainc(np.array([0.0, 1.0]), np.array([2.0, 2.0]), np.array([3.0, 3.0]))
    assert ends.tolist() == [0.0, 1.0]


def test_keep_freed_memory_is_set_once_and_reports_it():
    code = ("from trialkit.engine.memory import keep_freed_memory\n"
            "print(keep_freed_memory(), keep_freed_memory())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    expected = "True" if sys.platform.startswith("linux") else "False"
    assert out == [expected, expected]
    assert keep_freed_memory() in (True, False)


def test_simulating_binary_adaptive_trials_does_not_import_scipy():
    """SciPy's import takes longer than simulating a thousand trials: the command avoids it."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['trialkit', 'simulate', {str(DESIGN)!r}, '--reps', '20',"
            " '--scenario', 'alternative', '--jobs', '2', '--quiet']\n"
            "try:\n    runpy.run_module('trialkit', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('SCIPY:' + str(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert any(line.startswith("metrics.prob_superior") for line in lines)
    assert lines[-1] == "SCIPY:[]"
