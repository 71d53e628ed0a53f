"""Sample settings that contradict each other or the design are refused, never replaced silently."""

from __future__ import annotations

import pytest

# A 2^(6-1) fraction (32 conditions) run in clinics.
FRACTION = """kind = "factorial"
name = "clinic_fraction"
[[factors]]
name = "a"
[[factors]]
name = "b"
[[factors]]
name = "c"
[[factors]]
name = "d"
[[factors]]
name = "e"
[[factors]]
name = "f"
[fraction]
generators = ["F = ABCDE"]
[sample]
{sample}
[outcomes.y]
type = "continuous"
sd = 5.0
[outcomes.y.effects]
a = -1.0
b = -0.8
"""

BETWEEN_24 = 'assignment = "between"\nclusters = 24\ncluster_size = 20\nicc = 0.05'


def _write(tmp_path, sample: str, name: str = "design.toml"):
    path = tmp_path / name
    path.write_text(FRACTION.format(sample=sample))
    return path


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize(("command", "options"), [
    (("design", "validate"), ()), (("power",), ()), (("power",), ("--simulate", "--reps", "20")),
    (("samplesize",), ()), (("simulate", "decision"), ("--reps", "5"))])
def test_fewer_clusters_than_conditions_are_refused(run, tmp_path, command, options):
    path = _write(tmp_path, BETWEEN_24)
    line = _one_line_error(run(*command, path, *options))
    assert "24 clusters for 32 conditions" in line
    assert "at least 32 clusters" in line


def test_trial_create_refuses_fewer_clusters_than_conditions(run, tmp_path):
    path = _write(tmp_path, BETWEEN_24)
    res = run("trial", "create", path, "--db", f"sqlite:///{tmp_path / 't.db'}", "--key-file",
              tmp_path / "t.key")
    line = _one_line_error(res)
    assert "at least 32 clusters" in line
    assert not (tmp_path / "t.key").exists()


def test_enough_clusters_are_accepted_and_an_override_is_checked(run, tmp_path):
    path = _write(tmp_path, BETWEEN_24.replace("clusters = 24", "clusters = 32"))
    assert run("design", "validate", path).exit_code == 0
    res = run("power", path, "--format", "json")
    assert res.exit_code == 0, res.output
    # 400 participants in clusters of 20 are 20 clusters: fewer than the 32 conditions
    line = _one_line_error(run("power", path, "--n-total", "400"))
    assert "20 clusters are fewer than the 32 conditions" in line and "--n-total" in line


def test_samplesize_of_between_design_has_a_cluster_per_condition(run, tmp_path):
    import json

    path = _write(tmp_path, BETWEEN_24.replace("clusters = 24", "clusters = 32")
                  .replace("icc = 0.05", "icc = 0.0"))
    res = run("samplesize", path, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_clusters"] >= 32


def test_n_total_disagreeing_with_clusters_times_size_is_refused(run, tmp_path):
    path = _write(tmp_path, 'assignment = "within"\nclusters = 10\ncluster_size = 40\n'
                            'n_total = 960\nicc = 0.05')
    for args in (("design", "validate", path), ("power", path)):
        line = _one_line_error(run(*args))
        assert "'sample.n_total' = 960" in line
        assert "10 × 40 = 400" in line and "n_total = 400" in line


def test_agreeing_n_total_is_accepted(run, tmp_path):
    path = _write(tmp_path, 'assignment = "within"\nclusters = 10\ncluster_size = 40\n'
                            'n_total = 400\nicc = 0.05')
    assert run("design", "validate", path).exit_code == 0


@pytest.mark.parametrize("sample", [
    'assignment = "within"\ncluster_size = 40\nn_total = 1000000000000\nicc = 0.05',
    'n_total = 1000000000000',
    'assignment = "within"\nclusters = 100000000\ncluster_size = 40\nicc = 0.05'])
def test_huge_samples_are_refused_at_validation(run, tmp_path, sample):
    path = _write(tmp_path, sample)
    line = _one_line_error(run("design", "validate", path))
    assert "1e+09" in line


def test_clusters_with_independent_assignment_are_refused(run, tmp_path):
    path = _write(tmp_path, "n_total = 400\nclusters = 10")
    line = _one_line_error(run("design", "validate", path))
    assert "'sample.clusters' = 10" in line and "independent" in line
