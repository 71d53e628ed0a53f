"""The one matplotlib set-up: a non-interactive backend, figures created and saved here.

matplotlib is imported only when a figure is made, so ``import trialkit`` and the command line
stay light.
"""

from __future__ import annotations

import os
from typing import Any

from trialkit.errors import TrialkitError

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int | None = None,
                param: str = "path") -> str:
    """Save ``fig`` to ``path`` (format by extension), close it and return the path.

    A path that cannot be written raises :class:`~trialkit.errors.TrialkitError` naming
    ``param``.
    """
    path = os.fspath(path)
    try:
        fig.savefig(path, dpi=dpi)
    except (OSError, ValueError) as exc:
        raise TrialkitError(f"{path}: cannot save the figure ({exc}) — give a writable path "
                            "ending in .png, .pdf or .svg", param=param) from None
    finally:
        pyplot().close(fig)
    return path


def is_figure_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s extension names a figure format."""
    return os.fspath(path).lower().endswith(FIGURE_FORMATS)
