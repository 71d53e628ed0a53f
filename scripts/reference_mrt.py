"""Reproduce the MRT reference numbers of docs/references.md and print measured against expected.

Run: .venv/bin/python scripts/reference_mrt.py
"""

from __future__ import annotations

import numpy as np

from trialkit.mrt import samplesize as ss
from trialkit.mrt.trajectory import day_basis, expand_days, trajectory_by_day


def main() -> None:
    days, dpd = 42, 5
    effect = expand_days(trajectory_by_day("quadratic", 0.1, days, 0.0, 28), dpd)
    avail = expand_days(trajectory_by_day("quadratic", 0.5, days, 0.7, 42), dpd)
    basis = day_basis(days, dpd, 3)
    n = ss.continuous_sample_size(effect, avail, 0.4, basis, 3, 0.05, 0.8)
    power = ss.continuous_power(40, effect, avail, 0.4, basis, 3, 0.05)
    print("R MRTSampleSize 0.3.0 (Liao et al. 2016), 42 days x 5, p 0.4, quadratic effect/avail:")
    print(f"  sample size  expected 46       measured {n['n_participants']} "
          f"(exact {n['n_exact']:.5f})")
    print(f"  power N=40   expected 0.73156  measured {power:.5f}")
    t = np.arange(1, 11)
    f = np.column_stack([np.ones(10), t])
    b = ss.binary_sample_size(f, [0.15, -0.01], f, [-0.2, -0.1], 0.8, 0.4, 0.05, 0.8)
    print("R MRTSampleSizeBinary 0.1.2 (Cohn, Qian & Murphy 2023), 10 decision points:")
    print(f"  n exact      expected 274.00551 measured {b['n_exact']:.5f}")
    print(f"  n rounded up expected 275       measured {b['n_participants']}")


if __name__ == "__main__":
    main()
