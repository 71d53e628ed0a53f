"""The simulation engine: one stream per replicate, whatever the batches or worker processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trialkit.engine import ReplicateStreams, replicate_rngs, run_replicates
from trialkit.engine.runner import concatenate
from trialkit.errors import TrialkitError

ROOT = Path(__file__).resolve().parent.parent


def _draws(replicates: range, *, seed: int) -> dict:
    rngs = replicate_rngs(seed, replicates.start, replicates.stop)
    return {"x": np.array([g.standard_normal(3) for g in rngs]),
            "i": np.array(list(replicates))}


def test_replicate_streams_are_the_spawned_children():
    spawned = np.random.SeedSequence(42).spawn(6)
    ours = replicate_rngs(42, 0, 6)
    for child, rng in zip(spawned, ours, strict=True):
        np.testing.assert_array_equal(np.random.default_rng(child).random(5), rng.random(5))
    # a later range gives the later children, without spawning the earlier ones
    np.testing.assert_array_equal(replicate_rngs(42, 4, 5)[0].random(5),
                                  np.random.default_rng(spawned[4]).random(5))


@pytest.mark.parametrize(("chunk_size", "jobs"), [(None, 1), (1, 1), (7, 1), (None, 2), (3, 2)])
def test_results_do_not_depend_on_chunks_or_jobs(chunk_size, jobs):
    reference = run_replicates(_draws, 20, seed=9)
    got = run_replicates(_draws, 20, seed=9, chunk_size=chunk_size, jobs=jobs)
    np.testing.assert_array_equal(got["x"], reference["x"])
    np.testing.assert_array_equal(got["i"], np.arange(20))


def test_other_seed_other_results():
    a = run_replicates(_draws, 5, seed=1)["x"]
    b = run_replicates(_draws, 5, seed=2)["x"]
    assert not np.allclose(a, b)


def test_concatenate_arrays_dicts_and_lists():
    assert concatenate([[1, 2], [3]]) == [1, 2, 3]
    np.testing.assert_array_equal(concatenate([np.ones((2, 2)), np.zeros((1, 2))]).shape, (3, 2))
    out = concatenate([{"a": np.array([1])}, {"a": np.array([2, 3])}])
    np.testing.assert_array_equal(out["a"], [1, 2, 3])


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"reps": 0}, "reps = 0"), ({"reps": 3, "jobs": 0}, "jobs = 0"),
])
def test_bad_reps_and_jobs(kwargs, needle):
    reps = kwargs.pop("reps")
    with pytest.raises(TrialkitError, match=needle):
        run_replicates(_draws, reps, seed=1, **kwargs)


def test_bad_seed():
    with pytest.raises(TrialkitError, match="seed = -1 is invalid"):
        replicate_rngs(-1, 0, 2)
    with pytest.raises(TrialkitError, match="seed = -1 is invalid"):
        ReplicateStreams(-1, 0, 2)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3, 2**130 + 99])
def test_replicate_streams_are_those_of_replicate_rngs(seed):
    for start, stop in ((0, 40), (9990, 10010), (123456, 123460)):
        ref = [r.standard_normal(4) for r in replicate_rngs(seed, start, stop)]
        got = [g.standard_normal(4) for g in ReplicateStreams(seed, start, stop)]
        assert len(got) == stop - start
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_array_equal(a, b)


def test_batches_are_cut_at_multiples_of_the_batch_whatever_the_jobs_and_start():
    from trialkit.engine import replicate_batches

    assert replicate_batches(12, batch=5) == [range(0, 5), range(5, 10), range(10, 12)]
    assert replicate_batches(12, batch=5, jobs=3) == replicate_batches(12, batch=5)
    assert replicate_batches(8, start=7, batch=5) == [range(7, 10), range(10, 15)]
    assert replicate_batches(10, jobs=3) == [range(0, 4), range(4, 8), range(8, 10)]
    assert replicate_batches(10, jobs=2, max_batch=3) == [range(0, 3), range(3, 5),
                                                          range(5, 8), range(8, 10)]


def test_start_continues_an_earlier_run():
    first = run_replicates(_draws, 7, seed=4)
    more = run_replicates(_draws, 5, seed=4, start=7, batch=3)
    whole = run_replicates(_draws, 12, seed=4)
    np.testing.assert_array_equal(np.concatenate([first["x"], more["x"]]), whole["x"])
    np.testing.assert_array_equal(more["i"], np.arange(7, 12))


def test_old_engine_name_still_imports_with_a_deprecation_warning():
    import importlib
    import sys

    sys.modules.pop("trialkit.simulate", None)
    with pytest.warns(DeprecationWarning, match="trialkit.engine"):
        old = importlib.import_module("trialkit.simulate")
    assert old.run_replicates is run_replicates
    from trialkit.simulate.engine import run_replicates as via_old_module

    assert via_old_module is run_replicates


def _blas_threads(reps: range) -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_replicates_run_with_one_blas_thread():
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        inside = run_replicates(_blas_threads, 2, combine=lambda parts: parts[0])
        after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert inside and set(inside) == {1}
    assert after == before  # restored when the run ends


def _keeps_freed_memory(reps: range | None = None) -> list[bool]:
    from trialkit.engine import memory

    return [memory._done]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_worker_processes_keep_freed_memory_and_the_callers_process_does_not():
    # a fresh interpreter: run replicates on a pool, then ask the workers and the caller
    code = ("from trialkit.engine import run_replicates\n"
            "from trialkit.engine import memory\n"
            "from trialkit.engine.backends import LocalPool, Task\n"
            "import tests.test_engine as t\n"
            "if __name__ == '__main__':\n"
            "    workers = run_replicates(t._keeps_freed_memory, 4, jobs=2, batch=1)\n"
            "    pool, seen = LocalPool(2), []\n"
            "    pool.run([Task(str(i), t._keeps_freed_memory) for i in range(2)],\n"
            "             lambda task, result: seen.extend(result))\n"
            "    pool.close()\n"
            "    print(workers, seen, memory._done)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.strip()
    assert out == "[True, True, True, True] [True, True] False"
