"""Grids of designs × settings: the file format, identical tables on every backend, resume, grow.

Dask runs for real: a ``LocalCluster`` and a ``dask scheduler`` + ``dask worker`` started as
separate processes on loopback (stopped by PID).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trialkit.design.grid import build_design, load_grid, loads_grid
from trialkit.engine.backends import DaskBackend, LocalPool
from trialkit.errors import TrialkitError
from trialkit.study import run_grid

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = ROOT / "designs"

GRID = f"""
name = "small"
seed = 7
reps = {{reps}}
batch = {{batch}}

[[designs]]
file = "{DESIGNS / 'three-arm-adaptive.toml'}"
label = "adaptive"
[designs.axes]
scenario = ["alternative", "null"]

[[designs]]
file = "{DESIGNS / 'app-components-factorial.toml'}"
label = "factorial"
outcome = "retention"
[designs.axes]
"sample.n_total" = [256, 512]
[designs.priors."outcomes.retention.effects.human_voice"]
mean = 0.2
sd = 0.1
"""


def grid_file(tmp_path: Path, reps: int = 12, batch: int = 5, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(GRID.format(reps=reps, batch=batch))
    return path


def table(tmp_path: Path, sub: str, backend=None, reps: int = 12, batch: int = 5,
          grow: int = 0) -> bytes:
    out = tmp_path / sub / "results.parquet"
    out.parent.mkdir(exist_ok=True)
    grid = load_grid(grid_file(tmp_path, reps, batch))
    run_grid(grid, str(out), backend, grow=grow).save(out)
    return out.read_bytes()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> tuple[Path, bytes]:
    """Return the table of the small grid run in this process (the reference)."""
    tmp = tmp_path_factory.mktemp("fresh")
    return tmp, table(tmp, "fresh")


# -- the file format ---------------------------------------------------------------------------
def test_cells_cover_every_combination_and_the_prior(tmp_path):
    grid = load_grid(grid_file(tmp_path))
    cells = grid.cells()
    assert [(c.design.label, dict(c.settings), c.assurance) for c in cells] == [
        ("adaptive", {"scenario": "alternative"}, False),
        ("adaptive", {"scenario": "null"}, False),
        ("factorial", {"sample.n_total": 256}, False),
        ("factorial", {"sample.n_total": 512}, False),
        ("factorial", {"sample.n_total": 256}, True),
        ("factorial", {"sample.n_total": 512}, True)]
    # streams are keyed by the cell: distinct seeds, unchanged by adding an axis value
    assert len({c.seed(grid.seed) for c in cells}) == len(cells)
    more = loads_grid(grid_file(tmp_path).read_text().replace("[256, 512]", "[256, 384, 512]"),
                      str(tmp_path / "g.toml"))
    seeds = {dict(c.settings).get("sample.n_total"): c.seed(7) for c in more.cells()
             if c.design.label == "factorial" and not c.assurance}
    assert seeds[512] == cells[3].seed(7)


@pytest.mark.parametrize("old, new, words", [
    ("reps = 12", "reps = 12\nrepz = 3", ["repz", "is not a known key"]),
    ('"sample.n_total" = [256, 512]', '"sample.n_total" = [256, 0.5]',
     ["designs[1].axes", "sample.n_total", "is not a whole number"]),
    ('"sample.n_total" = [256, 512]', '"sample.n_totl" = [256]',
     ["designs[1].axes", "n_totl", "is not a known key"]),
    ("mean = 0.2", 'mean = "big"', ["human_voice.mean", "is not a finite number"]),
    ('label = "factorial"', 'label = "adaptive"', ["designs", "one label"]),
])
def test_grid_errors_name_the_file_key_and_value(tmp_path, old, new, words):
    text = grid_file(tmp_path).read_text()
    assert old in text
    with pytest.raises(TrialkitError) as info:
        loads_grid(text.replace(old, new), "my-grid.toml")
    message = str(info.value)
    assert message.startswith("my-grid.toml")
    for w in words:
        assert w in message


def test_prior_on_a_key_the_design_does_not_set_is_refused(tmp_path):
    text = grid_file(tmp_path).read_text().replace("effects.human_voice", "effects.nothing_here")
    with pytest.raises(TrialkitError, match="nothing_here"):
        loads_grid(text, "g.toml")


def test_unreadable_grid_files_are_refused_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(TrialkitError, match="nowhere.toml.*cannot be read"):
        load_grid(missing)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(TrialkitError, match="latin.toml.*not UTF-8.*save the grid file as UTF-8"):
        load_grid(latin)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [\n")
    with pytest.raises(TrialkitError, match="broken.toml.*not valid TOML"):
        load_grid(broken)


# -- the numbers are the library's ---------------------------------------------------------------
def test_cells_equal_the_kinds_own_simulations(fresh):
    import pandas as pd

    from trialkit.adaptive import check_performance, run_trials, setup_trial
    from trialkit.factorial.planning import simulate_factorial_power

    tmp, data = fresh
    frame = pd.read_parquet(tmp / "fresh" / "results.parquet")
    grid = load_grid(grid_file(tmp))
    cells = grid.cells()
    # an adaptive cell is run_trials with the cell's seed
    spec = setup_trial(build_design(cells[1].design, ()), "null")
    perf = check_performance(run_trials(spec, 12, cells[1].seed(7)))
    rows = frame[(frame.cell == 1)].set_index("metric")
    assert rows.loc["prob_superior", "estimate"] == pytest.approx(perf["prob_superior"])
    assert rows.loc["expected_n", "estimate"] == pytest.approx(perf["size_mean"])
    assert rows.loc["prob_select.none", "estimate"] == pytest.approx(
        perf["prob_select"]["none"])
    # a factorial cell is simulate_factorial_power of the design with the cell's n_total
    design = build_design(cells[2].design, (("sample.n_total", 256),))
    sim = simulate_factorial_power(design, 12, cells[2].seed(7), outcome="retention")
    rows = frame[(frame.cell == 2)].set_index("metric")
    for e in sim["effects"]:
        assert rows.loc[f"power.{e['term']}", "estimate"] == pytest.approx(e["power"])
        assert rows.loc[f"power.{e['term']}", "mc_se"] == pytest.approx(e["mc_se"])
    assert (frame.reps == 12).all() and set(frame.cell) == set(range(6))


MRT_GRID = f"""
name = "mrt_small"
seed = 3
reps = 6
batch = 4

[[designs]]
file = "{DESIGNS / 'checkin-prompts-mrt.toml'}"
label = "mrt"
outcome = "mood"
[designs.axes]
"analysis.n_participants" = [30, 40]
"treatment.probability" = [0.6]
"""


def test_an_mrt_cell_is_the_kinds_own_simulation(tmp_path):
    import pandas as pd

    from trialkit.mrt.planning import simulate_mrt_power

    path = tmp_path / "mrt.toml"
    path.write_text(MRT_GRID)
    grid = load_grid(path)
    out = tmp_path / "mrt.parquet"
    res = run_grid(grid, str(out))
    res.save(out)
    frame = pd.read_parquet(out)
    assert set(frame.metric) == {"power", "failed"} and (frame.kind == "mrt").all()
    for cell in grid.cells():
        n = dict(cell.settings)["analysis.n_participants"]
        design = build_design(cell.design, cell.overrides)
        own = simulate_mrt_power(design, n, reps=6, seed=cell.seed(3), outcome="mood")
        rows = frame[frame.cell == cell.index].set_index("metric")
        assert rows.loc["power", "analysis.n_participants"] == n
        assert rows.loc["power", "estimate"] == pytest.approx(own.power)
        assert rows.loc["power", "mc_se"] == pytest.approx(own.mc_se)
    # batches of 4 (4 + 2 replicates per cell) give the table of one batch per cell
    one = tmp_path / "one.parquet"
    run_grid(loads_grid(MRT_GRID.replace("batch = 4", "batch = 6"), str(path)),
             str(one)).save(one)
    assert pd.read_parquet(one).equals(frame)


def test_assurance_draws_follow_the_prior(tmp_path):
    grid = load_grid(grid_file(tmp_path, reps=40, batch=40))
    res = run_grid(grid, str(tmp_path / "a.parquet"))
    frame = res.to_frame()
    draws = frame[frame.metric == "prior.outcomes.retention.effects.human_voice"]
    assert len(draws) == 2 and draws.assurance.all()
    # 40 draws from normal(0.2, 0.1): the mean is within 4 Monte Carlo SEs of 0.2
    assert (abs(draws.estimate - 0.2) < 4 * draws.mc_se).all()
    assert np.allclose(draws.mc_se * np.sqrt(40), 0.1, atol=0.04)
    assert draws.prior.str.contains("normal\\(0.2, 0.1\\)").all()


# -- identical tables ------------------------------------------------------------------------
def test_local_pool_and_batch_size_give_the_same_table(fresh, tmp_path):
    import pandas as pd

    _, reference = fresh
    pool = LocalPool(2)
    try:
        assert table(tmp_path, "pool", pool) == reference
    finally:
        pool.close()
    # another batch size changes which replicates share a call, not the numbers
    other = table(tmp_path, "batch3", batch=3)
    a = pd.read_parquet(tmp_path / "batch3" / "results.parquet")
    b = pd.read_parquet(tmp_path / "pool" / "results.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other != b"" and a.estimate.notna().all()


def test_grow_equals_a_fresh_run_of_the_total(tmp_path):
    fresh_16 = table(tmp_path, "fresh16", reps=16, batch=5)
    table(tmp_path, "grown", reps=12, batch=5)
    grown = table(tmp_path, "grown", reps=12, batch=5, grow=4)
    assert grown == fresh_16


def test_another_grid_is_not_mixed_into_a_store(tmp_path):
    table(tmp_path, "one")
    text = grid_file(tmp_path).read_text().replace("seed = 7", "seed = 8")
    with pytest.raises(TrialkitError, match="another grid"):
        run_grid(loads_grid(text, "g.toml"), str(tmp_path / "one" / "results.parquet"))


def test_resume_after_the_client_is_killed(fresh, tmp_path):
    _, reference = fresh
    grid = grid_file(tmp_path, batch=1)  # many small batches: the run is killed midway
    out = tmp_path / "killed" / "results.parquet"
    out.parent.mkdir()
    parts = Path(str(out) + ".parts")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "trialkit", "simulate", "grid", str(grid), "--out", str(out),
           "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(parts.glob("c*.npz"))) < 3:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    done = len(list(parts.glob("c*.npz")))
    assert 3 <= done < 72 and not out.exists()  # killed midway: some batches, no table
    again = subprocess.run(cmd + ["--format", "json"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert f'"computed": {72 - done}' in again.stdout  # only what was missing
    # batch = 1 here against the reference's batch = 5: a different fingerprint, so compare
    # with a fresh batch-1 run
    assert out.read_bytes() == table(tmp_path, "fresh1", batch=1)
    assert reference  # the module's reference table was made


# -- Dask -------------------------------------------------------------------------------------
def test_local_dask_cluster_gives_the_same_table(fresh, tmp_path):
    _, reference = fresh
    backend = DaskBackend(workers=2)
    try:
        assert backend.workers == 2
        assert table(tmp_path, "dask", backend) == reference
    finally:
        backend.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def separate_cluster(tmp_path: Path, worker_args: tuple[str, ...] = ("--no-nanny",),
                     worker_env: dict[str, str] | None = None, workers: list | None = None):
    """Start a real ``dask scheduler`` and one ``dask worker`` on loopback; stop them by PID.

    With ``workers`` (a list), one worker is started per item and their processes are put in it.
    """
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / f"dask-{port}.log", "w")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=log, stderr=log)]
    try:
        for i in range(len(workers) if workers else 1):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", *worker_args, "--no-dashboard",
                 "--host", "127.0.0.1", "--local-directory", str(tmp_path / f"worker-{port}-{i}")],
                env={**env, **(worker_env or {})}, stdout=log, stderr=log))
            if workers is not None:
                workers[i] = procs[-1]
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


@pytest.fixture
def dask_cluster(tmp_path):
    """Start a separate scheduler and one worker without a nanny."""
    with separate_cluster(tmp_path) as address:
        yield address


def connect(address: str, workers: int = 1) -> DaskBackend:
    """Connect to a cluster being started (retrying for up to a minute)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            backend = DaskBackend(scheduler=address, timeout=5)
            break
        except TrialkitError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    backend._client.wait_for_workers(workers, timeout=60)
    return backend


def test_worker_memory_trimming_is_off_in_local_clusters_and_reported_elsewhere(tmp_path):
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which slows the kernels
    local = DaskBackend(workers=1)
    try:
        assert local.trimmed == 0
        assert "MALLOC" not in local.name
        # its workers keep freed memory, as the local pool's processes do; this process not
        seen = local._client.run(lambda: __import__("trialkit.engine.memory").engine.memory._done)
        assert list(seen.values()) == [sys.platform.startswith("linux")]
        assert not any(k.startswith("MALLOC_MMAP") for k in os.environ)
    finally:
        local.close()
    with separate_cluster(tmp_path, ()) as address:  # a worker with a nanny, Dask's defaults
        backend = connect(address)
        try:
            assert backend._trimmed_workers() == 1
        finally:
            backend.close()
    conf = tmp_path / "dask-config"
    conf.mkdir()
    (conf / "trialkit.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n")
    with separate_cluster(tmp_path, (), {"DASK_CONFIG": str(conf)}) as address:
        backend = connect(address)
        try:
            assert backend._trimmed_workers() == 0
        finally:
            backend.close()


def test_separate_dask_scheduler_and_worker_give_the_same_table(fresh, tmp_path, run,
                                                               dask_cluster):
    _, reference = fresh
    backend = connect(dask_cluster)
    try:
        assert backend.trimmed == 0 and "MALLOC" not in backend.name
        assert table(tmp_path, "remote", backend) == reference
    finally:
        backend.close()
    # and through the command line
    out = tmp_path / "cli" / "results.parquet"
    out.parent.mkdir()
    res = run("simulate", "grid", grid_file(tmp_path), "--out", out, "--scheduler",
              dask_cluster, "--quiet")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == reference


def test_a_worker_killed_mid_grid_leaves_the_same_table(tmp_path):
    grid = grid_file(tmp_path, reps=40, batch=5)
    reference = tmp_path / "reference.parquet"
    run_grid(load_grid(grid), str(reference)).save(reference)
    out = tmp_path / "lost" / "results.parquet"
    out.parent.mkdir()
    workers: list = [None, None]
    with separate_cluster(tmp_path, workers=workers) as address:
        connect(address, workers=2).close()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        client = subprocess.Popen(
            [sys.executable, "-m", "trialkit", "simulate", "grid", str(grid), "--out", str(out),
             "--scheduler", address, "--quiet"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            parts = Path(f"{out}.parts")
            deadline = time.monotonic() + 120
            while len(list(parts.glob("*.npz"))) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            done_at_kill = len(list(parts.glob("*.npz")))
            os.kill(workers[0].pid, signal.SIGKILL)   # one worker lost mid-run
            output, _ = client.communicate(timeout=180)
        finally:
            _stop(client)
    assert client.returncode == 0, output
    assert 3 <= done_at_kill < 48   # 6 cells × 8 batches: the kill came mid-run
    assert workers[0].poll() is not None
    assert out.read_bytes() == reference.read_bytes()


# -- the command line --------------------------------------------------------------------------
def test_cli_grid_csv_and_errors(tmp_path, run):
    grid = grid_file(tmp_path)
    res = run("simulate", "grid", grid, "--out", tmp_path / "r.csv", "--format", "json")
    assert res.exit_code == 0, res.output
    import pandas as pd

    frame = pd.read_csv(tmp_path / "r.csv")
    assert {"cell", "design", "metric", "estimate", "mc_se", "sample.n_total"} <= set(frame)
    res = run("simulate", "grid", grid, "--out", tmp_path / "r.txt")
    assert res.exit_code == 2 and "--out" in res.output
    res = run("simulate", "grid", grid, "--out", tmp_path / "r.csv", "--dask", "remote")
    assert res.exit_code == 2 and "--dask" in res.output
    res = run("simulate", "grid", grid, "--out", tmp_path / "r.csv", "--jobs", "2",
              "--dask", "local")
    assert res.exit_code == 2 and "drop --jobs" in res.output
