"""The reference numbers the tests and docs cite live in the repository: docs/references.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = ROOT / "docs" / "references.md"

#: Every reference value a test asserts, as the tests write it, by the test file that uses it.
CITED = {
    "test_factorial_power.py": ["0.7354", "787", "7074", "3930", "0.49003"],
    "test_mrt_formulas.py": ["0.73156", "274.00551"],
    "test_mrt_basis.py": ["274.00551"],
    "test_mrt_reference_analysis.py": ["0.1093021779", "0.0850773027", "0.0370845534",
                                       "0.0867163602", "0.2550226212", "0.0500707111",
                                       "0.1764743504", "0.0585231671", "0.2042679",
                                       "0.6705732"],
    "test_gsd.py": ["3.4710914", "2.4544323", "2.0040356"],
    "test_adaptive_allocation.py": ["0.366025", "0.211325", "0.414214", "0.292893", "98.35",
                                    "0.266667", "0.533333", "0.283333", "0.566667",
                                    "0.192993", "0.334273", "0.472734"],
    "test_adaptive_simulation.py": ["1392", "0.616", "0.157"],
    "test_randomise_algorithms.py": ["0.750", "0.708", "0.683", "0.666"],
}


def _files():
    for folder in ("tests", "docs", "scripts", "trialkit"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and path != REFERENCES:
                yield path
    yield ROOT / "README.md"


def test_no_file_cites_a_reference_file_outside_the_repository():
    outside = "REFERENCES" + ".md"   # spelt in two parts, so this file does not cite it
    offenders = [str(p.relative_to(ROOT)) for p in _files()
                 if outside in p.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.mark.parametrize("test_file", sorted(CITED))
def test_every_cited_number_is_in_the_references_page_and_the_test(test_file):
    page = REFERENCES.read_text(encoding="utf-8")
    text = (ROOT / "tests" / test_file).read_text(encoding="utf-8")
    assert "docs/references.md" in text, f"{test_file} does not cite docs/references.md"
    for number in CITED[test_file]:
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", page), number
        assert number in text, (test_file, number)


def test_every_section_names_its_source():
    page = REFERENCES.read_text(encoding="utf-8")
    sections = re.split(r"^## ", page, flags=re.M)[1:]
    assert len(sections) >= 6
    for section in sections:
        title = section.splitlines()[0]
        if title != "Literature":
            assert "Source:" in section, title


def test_the_reference_data_are_in_the_repository_as_described():
    import pandas as pd

    data = pd.read_csv(ROOT / "tests" / "data" / "mrt_reference_data.csv")
    assert list(data.columns) == ["id", "decision_point", "available", "prob", "treated", "mood",
                                  "engaged", "mood_next"]
    assert data["id"].nunique() == 60 and data.groupby("id").size().eq(30).all()
    assert set(data.loc[data["decision_point"] <= 15, "prob"]) == {0.6}
    assert set(data.loc[data["decision_point"] > 15, "prob"]) == {0.4}
    assert "tests/data/mrt_reference_data.csv" in REFERENCES.read_text(encoding="utf-8")


def test_docs_link_the_references_page():
    for doc in ("adaptive.md", "mrt.md"):
        assert "(references.md" in (ROOT / "docs" / doc).read_text(encoding="utf-8"), doc
