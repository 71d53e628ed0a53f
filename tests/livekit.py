"""A small live adaptive design shared by the live adaptive tests."""

LIVE_DESIGN = """
kind = "adaptive"
name = "live"

[[arms]]
name = "a"
[[arms]]
name = "b"
[[arms]]
name = "c"

[outcome]
type = "binary"

[looks]
data = [20, 40, 60]
randomised = [30, 50, 60]

[stopping]
superiority = 0.99
inferiority = 0.01

[posterior]
selection = "best"

[scenarios.null]
values = [0.3, 0.3, 0.3]
"""
