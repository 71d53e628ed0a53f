"""Grid files: several designs and the settings to vary, read into a frozen :class:`GridSpec`.

A grid file names one or more design files (``[[designs]]``), for each the *axes* to vary —
dotted keys of the design file with a list of values, the special axis ``scenario`` — and
optionally *priors*: keys whose value is drawn per replicate from a normal design prior
(assurance). Every cell of the grid is one design with one combination of axis values; each cell
is validated by the design kind's own reader when the grid is read, so an axis value the kind
does not allow is reported before anything runs, naming the grid file, the axis and the value.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass
from typing import Any

from trialkit.design._reader import Section, identifier, parse_toml, read_text
from trialkit.design.base import DesignSource
from trialkit.errors import MISSING, DesignError

#: The axis that chooses one of a design's named scenarios instead of a design key.
SCENARIO_AXIS = "scenario"
#: Distributions a design prior may have.
PRIOR_DISTRIBUTIONS = ("normal",)

Value = int | float | tuple[float, ...] | str


@dataclass(frozen=True)
class Prior:
    """A design prior: the value at ``key`` is drawn per replicate from normal(mean, sd)."""

    key: str
    distribution: str
    mean: float
    sd: float

    def describe(self) -> str:
        """Return ``normal(mean, sd)``."""
        return f"{self.distribution}({self.mean:g}, {self.sd:g})"


@dataclass(frozen=True)
class GridDesign:
    """One design of a grid with its axes and priors.

    Attributes
    ----------
    label : str
        Name of the design in the results (default: the design's ``name``).
    path : str
        The design file.
    text : str
        The design file's text (cells are built from it, so workers read no files).
    kind : str
        The design's kind.
    outcome : str or None
        The outcome simulated (factorial, MRT; default the first).
    scenario : str or None
        The scenario simulated when there is no ``scenario`` axis.
    axes : tuple of (key, values)
        The settings to vary, in file order.
    priors : tuple of Prior
        Keys drawn from a design prior (each cell is then run with and without them).
    """

    label: str
    path: str
    text: str
    kind: str
    outcome: str | None
    scenario: str | None
    axes: tuple[tuple[str, tuple[Value, ...]], ...]
    priors: tuple[Prior, ...]

    @property
    def sha256(self) -> str:
        """SHA-256 of the design file's text."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Cell:
    """One cell of a grid: a design, one value per axis, and whether its priors are drawn."""

    index: int
    design: GridDesign
    settings: tuple[tuple[str, Value], ...]
    assurance: bool

    @property
    def scenario(self) -> str | None:
        """The scenario simulated in this cell."""
        for key, value in self.settings:
            if key == SCENARIO_AXIS:
                return str(value)
        return self.design.scenario

    @property
    def overrides(self) -> tuple[tuple[str, Value], ...]:
        """The design keys this cell changes (axes other than ``scenario``)."""
        return tuple((k, v) for k, v in self.settings if k != SCENARIO_AXIS)

    def key(self, seed: int) -> str:
        """Return the canonical text that, with the grid's seed, keys this cell's streams."""
        return json.dumps([seed, self.design.label, self.design.sha256,
                           [[k, list(v) if isinstance(v, tuple) else v]
                            for k, v in self.settings], self.assurance], sort_keys=True)

    def seed(self, seed: int) -> int:
        """Seed of this cell's replicates: a 64-bit hash of the grid's seed and the cell."""
        return int(hashlib.sha256(self.key(seed).encode("utf-8")).hexdigest()[:16], 16)


@dataclass(frozen=True)
class GridSpec:
    """A validated grid file."""

    path: str
    name: str
    title: str
    seed: int
    reps: int
    batch: int | None
    designs: tuple[GridDesign, ...]
    sha256: str

    def cells(self) -> list[Cell]:
        """Every cell, design by design, axes varying with the last one fastest."""
        out: list[Cell] = []
        for d in self.designs:
            keys = [k for k, _ in d.axes]
            combos = list(itertools.product(*(v for _, v in d.axes)))
            for assurance in (False, True) if d.priors else (False,):
                for combo in combos:
                    out.append(Cell(len(out), d, tuple(zip(keys, combo, strict=True)),
                                    assurance))
        return out

    def fingerprint(self) -> str:
        """Return what must match for stored replicates to be reused (seed, cells, batch)."""
        cells = [c.key(self.seed) for c in self.cells()]
        return hashlib.sha256(json.dumps([self.batch, cells]).encode()).hexdigest()


# -- applying settings to a design ---------------------------------------------------------------
def _parts(key: str) -> list[str]:
    return key.split(".")


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` of parsed TOML ``data`` (a number part indexes a list)."""
    node: Any = data
    parts = _parts(key)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(f"'{'.'.join(parts[:i])}' has no entry {part}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise KeyError(f"'{'.'.join(parts[:i])}' is not a table or a list")


def get_key(data: dict[str, Any], key: str) -> Any:
    """Return the value at dotted ``key`` of parsed TOML ``data`` (``MISSING`` when absent)."""
    node: Any = data
    for part in _parts(key):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return MISSING
    return node


def design_data(text: str, overrides: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """Return the parsed design ``text`` with ``overrides`` (dotted key, value) applied."""
    data = copy.deepcopy(tomllib.loads(text))
    for key, value in overrides:
        set_key(data, key, list(value) if isinstance(value, tuple) else value)
    return data


def build_design(d: GridDesign, overrides: tuple[tuple[str, Any], ...]) -> Any:
    """Validate the design ``d`` with ``overrides`` by its kind's reader; return the design."""
    from trialkit.design import KINDS

    data = design_data(d.text, overrides)
    where = d.path if not overrides else (
        f"{d.path} with " + ", ".join(f"{k} = {_shown_value(v)}" for k, v in overrides))
    source = DesignSource(path=where, text=d.text, sha256=d.sha256)
    return KINDS[d.kind](Section(data, where), source)


def _shown_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{v:g}" for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- reading ---------------------------------------------------------------------------------
def _axis_value(sec: Section, key: str, value: Any) -> Value:
    if key == SCENARIO_AXIS:
        if not isinstance(value, str) or not value:
            raise sec.error(key, value, "is not a scenario name", 'write names: ["a", "b"]')
        return value
    if isinstance(value, list):
        return tuple(_number(sec, key, v) for v in value)
    return _number(sec, key, value)


def _number(sec: Section, key: str, value: Any) -> float:
    """Read a finite number; a whole number stays an ``int`` (integer keys: n_total)."""
    checked = sec.check_number(key, value)
    return value if isinstance(value, int) else checked


def _read_axes(sec: Section | None) -> tuple[tuple[str, tuple[Value, ...]], ...]:
    if sec is None:
        return ()
    axes = []
    for key, values in sec.data.items():
        sec.raw(key)
        if not isinstance(values, list) or not values:
            raise sec.error(key, values, "is not a non-empty list of values",
                            "write the values to try, e.g. [256, 512]")
        read = tuple(_axis_value(sec, key, v) for v in values)
        if len(set(read)) != len(read):
            raise sec.error(key, values, "repeats a value", "give every value once")
        axes.append((key, read))
    return tuple(axes)


def _read_priors(sec: Section | None) -> tuple[Prior, ...]:
    if sec is None:
        return ()
    out = []
    for key in list(sec.data):
        sub = sec.section(key, required=True)
        dist = sub.string("distribution", "normal", choices=PRIOR_DISTRIBUTIONS)
        out.append(Prior(key, dist, sub.number("mean"), sub.positive("sd")))
        sub.done()
    return tuple(out)


def _design_file(sec: Section, folder: str) -> tuple[str, str]:
    rel = sec.string("file")
    path = rel if os.path.isabs(rel) else os.path.normpath(os.path.join(folder, rel))
    try:
        with open(path, encoding="utf-8") as fh:
            return path, fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise sec.error("file", rel, f"cannot be read ({exc})",
                        "give a design file's path, relative to the grid file") from None


def _read_design(sec: Section, folder: str) -> GridDesign:
    path, text = _design_file(sec, folder)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise sec.error("file", path, f"is not valid TOML ({exc})", "fix the design file"
                        ) from None
    kind = str(data.get("kind"))
    label = identifier(sec, "label", str(data.get("name", "")) or MISSING)
    d = GridDesign(label=label, path=path, text=text, kind=kind,
                   outcome=sec.string("outcome", None), scenario=sec.string("scenario", None),
                   axes=_read_axes(sec.section("axes")), priors=_read_priors(sec.section("priors")))
    sec.done()
    _check_cells(sec, d)
    return d


def _check_cells(sec: Section, d: GridDesign) -> None:
    """Build every cell's design once: an axis value the kind refuses is reported now."""
    from trialkit.design import KINDS

    if d.kind not in KINDS:
        raise sec.error("file", d.path, f"has the unknown kind {d.kind!r}",
                        "use a design of kind " + ", ".join(KINDS))
    keys = [k for k, _ in d.axes if k != SCENARIO_AXIS]
    for combo in itertools.product(*(v for k, v in d.axes if k != SCENARIO_AXIS)):
        overrides = tuple(zip(keys, combo, strict=True))
        try:
            build_design(d, overrides + tuple((p.key, p.mean) for p in d.priors))
        except KeyError as exc:
            raise sec.error("axes", dict(overrides), f"cannot be set ({exc.args[0]})",
                            "use dotted keys of the design file") from None
        except DesignError as exc:
            raise DesignError(sec.file, sec.key("axes"), dict(overrides),
                              f"gives a design the {d.kind} reader refuses ({exc})",
                              "use values the design file allows") from None
    for p in d.priors:
        if not isinstance(get_key(design_data(d.text, ()), p.key), int | float):
            raise sec.error(f"priors.{p.key}", p.key, "is not a number of the design file",
                            "give a prior to a numeric key the design file sets")


def loads_grid(text: str, path: str = "<string>") -> GridSpec:
    """Parse and validate a grid from TOML ``text`` (design paths relative to ``path``)."""
    root = parse_toml(text, path)
    name = identifier(root, "name")
    folder = os.path.dirname(os.path.abspath(path))
    designs = tuple(_read_design(s, folder) for s in root.sections("designs", required=True))
    if not designs:
        raise root.error("designs", [], "is empty", "add at least one [[designs]] block")
    labels = [d.label for d in designs]
    if len(set(labels)) != len(labels):
        raise root.error("designs", labels, "has two designs with one label",
                         "give each [[designs]] block its own label")
    from trialkit.constants import MAX_REPS

    grid = GridSpec(path=path, name=name, title=root.string("title", name),
                    seed=root.integer("seed", minimum=0), reps=root.integer("reps", minimum=1,
                                                                            maximum=MAX_REPS),
                    batch=root.integer("batch", None, minimum=1), designs=designs,
                    sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    root.done()
    return grid


def load_grid(path: str | os.PathLike[str]) -> GridSpec:
    """Load and validate the grid file at ``path``."""
    path = os.fspath(path)
    return loads_grid(read_text(path, "grid file"), path)
