"""The design report: every number is the library's, and a real browser shows it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from trialkit.design import load_design
from trialkit.design.grid import loads_grid
from trialkit.study import run_grid
from trialkit.study.report import design_report, number

ROOT = Path(__file__).resolve().parent.parent
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"

GRID = f"""
name = "report_grid"
seed = 3
reps = 10
[[designs]]
file = "{FACTORIAL}"
label = "factorial"
outcome = "retention"
[designs.axes]
"sample.n_total" = [256, 512]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    res = run_grid(loads_grid(GRID, str(tmp / "g.toml")), str(tmp / "r.parquet"))
    res.save(tmp / "r.parquet")
    frame = res.to_frame()
    design = load_design(FACTORIAL)
    page = design_report(design, frame).to_html()
    (tmp / "report.html").write_text(page)
    return tmp, design, frame, page


def _cells(page: str) -> list[str]:
    return [unescape(c) for c in re.findall(r"<td>(.*?)</td>", page)]


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?(e[-+]\d+)?", text) is not None


def test_every_number_in_the_report_is_the_librarys(built):
    from trialkit.factorial.planning import factorial_design_power, factorial_design_sample_size

    _, design, frame, page = built
    expected: set[str] = set()
    s = design.sample
    expected |= {number(v) for v in (s.n_total, s.dropout, design.analysis.alpha,
                                     design.analysis.power)}
    expected |= {number(f.cost) for f in design.factors}
    library = set()
    for out in design.outcomes:
        for e in factorial_design_power(design, outcome=out.name)["effects"]:
            library |= {number(e["effect"]), number(e["power"])}
    grid = set()
    for r in frame.to_dict("records"):
        grid |= {number(int(r["cell"])), number(int(r["reps"])), number(r["estimate"]),
                 number(r["mc_se"]), number(int(r["sample.n_total"]))}
    numbers = [c for c in _cells(page) if _is_number(c)]
    assert len(numbers) > 100
    stray = [c for c in numbers if c not in expected | library | grid]
    assert stray == []
    # and the library's numbers are all there: analytic power and the grid's estimates
    assert library <= set(numbers)
    kept = frame[frame.metric.str.startswith("power")]
    assert {number(v) for v in kept.estimate} <= set(numbers)
    assert {number(v) for v in kept.mc_se} <= set(numbers)
    need = factorial_design_sample_size(design)
    assert f"{need['n_total']} participants are needed" in page
    assert design.source.sha256 in page


def test_report_is_self_contained(built):
    _, _, _, page = built
    assert "<svg" in page and "<script" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_in_a_real_headless_browser(built):
    from matplotlib import image

    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing — scripts/setup.sh installs Debian's package")
        pytest.skip("chromium is not installed (scripts/setup.sh installs it as root)")
    tmp, _, _, _ = built
    shot = tmp / "shot.png"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp / 'profile'}", "--window-size=1200,1400",
         f"--screenshot={shot}", (tmp / "report.html").as_uri()],
        capture_output=True, text=True, timeout=90)
    assert shot.exists(), proc.stderr[-500:]
    img = image.imread(shot)[..., :3]
    assert img.shape[0] == 1400 and img.std() > 0.05  # not blank
    dark = img.max(axis=2) < 0.3
    # the title: dark text in the top band
    assert dark[:90].sum() > 500
    # a plot: saturated colours (markers) somewhere below the title
    saturated = (img.max(axis=2) - img.min(axis=2)) > 0.4
    assert saturated[90:].sum() > 200
    # the table: long horizontal border lines in the lower half
    grey_rows = ((img[700:, :, 0] > 0.6) & (img[700:, :, 0] < 0.8)).sum(axis=1)
    assert (grey_rows > 400).sum() >= 5


@pytest.mark.parametrize("design", ["three-arm-adaptive.toml", "checkin-prompts-mrt.toml"])
def test_cli_report_of_each_kind(tmp_path, run, design):
    out = tmp_path / "r.html"
    res = run("report", ROOT / "designs" / design, "--out", out, "--reps", "20")
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "Power and sample size" in page or "Operating characteristics" in page
    assert "<svg" in page


def test_cli_report_with_a_grid_and_bad_paths(built, run, tmp_path):
    tmp, _, _, _ = built
    res = run("report", FACTORIAL, "--grid", tmp / "r.parquet", "--out", tmp_path / "a.html")
    assert res.exit_code == 0, res.output
    assert "Operating characteristics across the grid" in (tmp_path / "a.html").read_text()
    res = run("report", FACTORIAL, "--out", tmp_path / "a.txt")
    assert res.exit_code == 2 and "--out" in res.output and ".pdf" in res.output


# -- PDF ------------------------------------------------------------------------------------
def _weasyprint():
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"WeasyPrint cannot be used ({exc}) — scripts/setup.sh installs the "
                        "pdf extra and Pango")
        pytest.skip(f"WeasyPrint cannot be used here ({exc})")


def _pdf_text(data: bytes) -> tuple[list[str], list[bytes]]:
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    return ([p.extract_text() for p in reader.pages],
            [p.get_contents().get_data() for p in reader.pages])


def test_pdf_report_holds_every_number_of_the_page_and_its_figures(built):
    _weasyprint()
    _, design, frame, page = built
    data = design_report(design, frame).to_pdf()
    assert data[:5] == b"%PDF-"
    texts, streams = _pdf_text(data)
    assert len(texts) >= 3
    words = set(" ".join(texts).split())
    numbers = [c for c in _cells(page) if _is_number(c)]
    assert len(numbers) > 100
    missing = sorted({c for c in numbers if c not in words})
    assert missing == []
    joined = " ".join(" ".join(texts).split())
    assert "Design report: App components screening" in joined
    assert design.source.sha256 in words
    assert "Operating characteristics across the grid" in joined
    # the figures are vector drawings: curves and lines in the pages' content
    curves = sum(s.count(b" c\n") for s in streams)
    assert curves > 1000


def test_cli_writes_a_pdf_report(run, tmp_path):
    _weasyprint()
    out = tmp_path / "r.pdf"
    res = run("report", ROOT / "designs" / "three-arm-adaptive.toml", "--out", out,
              "--reps", "20")
    assert res.exit_code == 0, res.output
    texts, _ = _pdf_text(out.read_bytes())
    joined = " ".join(" ".join(texts).split())
    assert "Design report" in joined and "Allocation" in joined


def test_pdf_without_weasyprint_is_one_line(monkeypatch, tmp_path):
    import sys

    from trialkit.errors import TrialkitError

    report = design_report(load_design(FACTORIAL), None)
    monkeypatch.setitem(sys.modules, "weasyprint", None)   # as if it were not installed
    with pytest.raises(TrialkitError) as info:
        report.save(tmp_path / "r.pdf")
    text = str(info.value)
    assert "trialkit[pdf]" in text and "\n" not in text and " — " in text
    assert not (tmp_path / "r.pdf").exists()
