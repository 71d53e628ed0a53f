"""A small adaptive MRT for the live-service tests: the example design, shortened."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: 4 days × 2 decision points, updates every 2 decision points, a policy that moves quickly
#: (prior SD 1 of the advantage, Thompson probabilities clipped to [0.2, 0.8]).
LIVE_MRT = (ROOT / "designs" / "adaptive-prompts-mrt.toml").read_text() \
    .replace("days = 70", "days = 4") \
    .replace("update_every_days = 7", "update_every_decisions = 2") \
    .replace('smoothing = "logistic"\nslope = 10.0', 'smoothing = "none"') \
    .replace("advantage_sd = 0.2", "advantage_sd = 1.0") \
    .replace("mean = 0.08", "mean = 0.8") \
    .replace('name = "adaptive_prompts_mrt"', 'name = "live_mrt"')
assert "update_every_decisions = 2" in LIVE_MRT and 'smoothing = "none"' in LIVE_MRT
assert "mean = 0.8\n" in LIVE_MRT and "days = 4" in LIVE_MRT
