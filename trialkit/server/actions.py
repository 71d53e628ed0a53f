"""Server actions that are more than one call on an open trial."""

from __future__ import annotations

from typing import Any

from trialkit.errors import NotFound
from trialkit.server.registry import Registry
from trialkit.service import identity
from trialkit.service.lifecycle import creation_report
from trialkit.service.trial import Trial


def create_trial(registry: Registry, design_text: str, name: str | None,
                 who: str) -> dict[str, Any]:
    """Create a trial from a design's text; its key goes to the server's key folder."""
    from trialkit.design import loads_design

    if registry.keys is None:
        raise NotFound("this server has no key folder, so it cannot create trials — start it "
                       "with a key folder", param="key_dir")
    design = loads_design(design_text, "<request>")
    name = identity.trial_name(name or design.name)
    path = registry.keys.trial_key_path(name)
    with Trial.create(design, registry.db, key_file=path, name=name, user=who) as trial:
        return creation_report(trial, path, "(the server's store)")
