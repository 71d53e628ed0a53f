"""Reproduce the factorial reference numbers of docs/references.md and print them side by side.

Usage: python scripts/reference_factorial.py
"""

from __future__ import annotations

from trialkit.design.fractions import (
    fraction_matrix,
    generators_for_resolution,
    max_resolution,
    resolution,
)
from trialkit.factorial.costs import factorial_costs
from trialkit.factorial.model import model_terms
from trialkit.factorial.power import design_matrix_power, factorial_power, factorial_sample_size


def main() -> None:
    rows = []
    a = factorial_power(5, 300, raw_main=3, sigma=10, model_order=2)["power"]
    rows.append(("MOST-A FactorialPowerPlan power", "0.7354", f"{a}"))
    c = factorial_sample_size(5, 0.8, d_main=0.2)["n_total"]
    rows.append(("MOST-C FactorialPowerPlan ntotal", "787", f"{c}"))
    costs = factorial_costs(9, 4, 0.2)["approaches"]
    got = ", ".join(f"{r['subjects']}/{r['conditions']}" for r in costs)
    rows.append(("COSTS-9 RelativeCosts1", "7074/18, 3930/10, 1024/512, 800/32", got))
    codes = fraction_matrix(4, ("D = ABC",))
    pw = design_matrix_power(codes, model_terms(4, 1), [0, 1, 1, 1, 1])[1]
    rows.append(("dexpy f_power 2^(4-1), SNR 2", "0.49003", f"{pw:.5f}"))
    for k, runs, res in [(5, 16, 5), (6, 16, 4), (7, 16, 4), (8, 16, 4), (6, 32, 6), (7, 32, 4),
                         (8, 64, 5), (10, 128, 5), (11, 128, 5), (12, 128, 4)]:
        gens = generators_for_resolution(k, res, runs)
        rows.append((f"catalogue {k} factors / {runs} runs", f"Res {res}",
                     f"Res {max_resolution(k, runs)} (brute force {resolution(k, gens)}): "
                     f"{', '.join(gens)}"))
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'reference':36s}  trialkit")
    for name, ref, mine in rows:
        print(f"{name.ljust(width)}  {ref:36s}  {mine}")


if __name__ == "__main__":
    main()
