"""Every command that writes a file checks the path before any work: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"


@pytest.fixture
def allocations(tmp_path):
    """Return a factorial allocation export of 32 participants (one per condition)."""
    from trialkit.design import load_design

    design = load_design(FACTORIAL)
    rows = ["participant," + ",".join(design.factor_names)]
    rows += [f"P{i:02d}," + ",".join(str(int(v)) for v in code)
             for i, code in enumerate(design.conditions())]
    path = tmp_path / "allocations.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _refused(res, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_unknown_table_extension_is_refused_and_nothing_is_written(run, tmp_path, allocations):
    out = tmp_path / "x.xlsx"
    res = run("simulate", "outcomes", FACTORIAL, allocations, "--out", out)
    _refused(res, "x.xlsx", ".csv, .parquet", "(option --out)")
    assert not out.exists()


def test_write_table_refuses_an_unknown_extension(tmp_path):
    import pandas as pd

    from trialkit.errors import DataError
    from trialkit.tables import write_table

    with pytest.raises(DataError, match="extension"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")
    assert not (tmp_path / "t.xlsx").exists()


def test_result_save_refuses_an_unknown_extension(tmp_path):
    from trialkit.errors import TrialkitError
    from trialkit.factorial.power import factorial_power

    with pytest.raises(TrialkitError, match=r"\.json or \.csv"):
        factorial_power(3, 100, d_main=0.3).save(tmp_path / "p.txt")
    assert not (tmp_path / "p.txt").exists()


@pytest.mark.parametrize(("args", "target"), [
    (("simulate", "outcomes", FACTORIAL, "{alloc}", "--out", "{missing}/x.csv"), "x.csv"),
    (("simulate", ADAPTIVE, "--reps", "5", "--plot", "{missing}/p.png"), "p.png"),
    (("simulate", ADAPTIVE, "--reps", "5", "--save", "{missing}/s.json"), "s.json"),
    (("simulate", ADAPTIVE, "--reps", "5", "--out", "{missing}/s.json"), "s.json"),
    (("power", FACTORIAL, "--curve", "--n-from", "100", "--n-to", "200", "--out",
      "{missing}/c.json"), "c.json"),
    (("power", MRT, "--n-participants", "30", "--out", "{missing}/m.png"), "m.png"),
    (("samplesize", MRT, "--out", "{missing}/m.png"), "m.png"),
])
def test_missing_output_folder_is_refused_before_any_work(run, tmp_path, allocations, args,
                                                          target):
    missing = tmp_path / "no" / "such"
    res = run(*(str(a).format(alloc=allocations, missing=missing) for a in args))
    _refused(res, target, "does not exist", "(option --out)")
    assert not missing.exists()


def test_out_dir_under_a_file_is_refused_before_sampling(run, tmp_path, allocations):
    res = run("analyse", "factorial", FACTORIAL, allocations, "--out-dir",
              allocations / "results")
    _refused(res, "is not a folder", "(option --out-dir)")


def test_output_that_is_a_folder_is_refused(run, tmp_path, allocations):
    folder = tmp_path / "f.csv"
    folder.mkdir()
    res = run("simulate", "outcomes", FACTORIAL, allocations, "--out", folder)
    _refused(res, "is a directory")


def test_good_paths_still_write(run, tmp_path, allocations):
    out = tmp_path / "curve.json"
    res = run("power", FACTORIAL, "--curve", "--n-from", "100", "--n-to", "200", "--out", out,
              "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["n"][0] == 100
