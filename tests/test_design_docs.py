"""docs/design-files.md documents every key the design loaders read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trialkit.design import _reader, load_design

ROOT = Path(__file__).resolve().parent.parent


def _documented() -> set[str]:
    """Names written as code in docs/design-files.md (inline spans and fenced examples)."""
    text = (ROOT / "docs" / "design-files.md").read_text()
    fenced = re.findall(r"```.*?```", text, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return {tok for span in fenced + inline for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


# tables whose keys are the user's own names (factor terms, stratum names), not design keys
USER_NAMED = ("effects", "strata")


@pytest.mark.parametrize("path", sorted((ROOT / "designs").glob("*.toml")), ids=lambda p: p.name)
def test_every_key_read_is_documented(path, monkeypatch):
    read: set[str] = set()
    original = _reader.Section.raw

    def recording(self, key, default=_reader.MISSING):
        read.add(self.key(key))
        return original(self, key, default)

    monkeypatch.setattr(_reader.Section, "raw", recording)
    load_design(path)
    assert len(read) > 10
    documented = _documented()
    # the last part of a dotted key is the key itself; NAME levels are the user's own names
    missing = sorted(
        k for k in read
        if re.split(r"[.\[]", k)[-1] not in documented
        and not any(f".{table}." in f".{k}" and not k.endswith(f".{table}") for table in USER_NAMED)
    )
    assert not missing, f"keys read but not documented in docs/design-files.md: {missing}"


def test_every_key_table_gives_type_default_meaning_and_example():
    lines = (ROOT / "docs" / "design-files.md").read_text().splitlines()
    headers = [line for line in lines if line.startswith("| key |")]
    assert len(headers) > 15
    for header in headers:
        assert header == "| key | type | default | meaning | example |", header
    rows = [line for line in lines if line.startswith("| `")]
    empty = [row for row in rows if row.rstrip().endswith("| |") or row.count("|") != 6]
    assert not empty, empty
