"""docs/cli.md documents every command and is up to date with the commands' help."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "scripts" / "cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date():
    expected = _generator().render()
    actual = (ROOT / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run `python scripts/cli_docs.py`"


def test_every_command_is_documented():
    text = (ROOT / "docs" / "cli.md").read_text()
    for path, _ in _generator()._walk(_generator().cli, ["trialkit"]):
        assert f"## `{' '.join(path)}`" in text
