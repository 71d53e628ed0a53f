"""What every design kind shares: its source file, name and descriptive text."""

from __future__ import annotations

from dataclasses import dataclass

from trialkit.design._reader import Section, identifier


@dataclass(frozen=True)
class DesignSource:
    """Where a design came from: its path, exact text and SHA-256 (stored by the live service)."""

    path: str
    text: str
    sha256: str


@dataclass(frozen=True)
class DesignHeader:
    """Top-level descriptive keys common to every kind."""

    name: str
    title: str
    description: str


def read_header(root: Section) -> DesignHeader:
    """Read ``name``, ``title`` and ``description`` from the top level of a design file."""
    name = identifier(root, "name")
    return DesignHeader(
        name=name,
        title=root.string("title", name),
        description=root.string("description", ""),
    )
