"""What every trialkit command shares: lazy command groups, ``--format`` output and error handling.

Command modules import library code inside their functions, so ``trialkit --help`` and the
randomisation commands start without numpy-heavy or Bayesian imports.
"""

from __future__ import annotations

import copy
import csv
import functools
import importlib
import io
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from trialkit.constants import FORMATS, MAX_REPS
from trialkit.errors import TrialkitError, shown
from trialkit.results import plain

# -- errors ---------------------------------------------------------------------------------------
#: A quoted value in a message: a quote not preceded by a letter (so not "design's"), its text.
_QUOTED = re.compile(r"""(?<![\w])(['"])([^'"\n]+?)\1(?![\w])""")


def _one_line(text: str) -> str:
    """Fold ``text`` to one line and cut every quoted value to 40 characters."""
    line = " ".join(str(text).split())
    return _QUOTED.sub(lambda m: m.group(1) + shown(m.group(2)) + m.group(1), line)


class TrialkitGroup(click.Group):
    """A click group whose errors are one line on stderr with exit code 2, never a traceback.

    Library errors (:class:`~trialkit.errors.TrialkitError`) and usage errors (bad options) are
    both reported as ``Error: what is wrong — what to do``.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the command line; see :meth:`click.BaseCommand.main`."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except Exception as exc:
            if os.environ.get("TRIALKIT_DEBUG"):
                raise
            what = f"{type(exc).__name__}: {_one_line(str(exc))[:200]}"
            click.echo(f"Error: internal error ({what}) — this is a bug in trialkit; please "
                       "report it with the command you ran (set TRIALKIT_DEBUG=1 to see the "
                       "traceback)", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the chosen command, turning library errors into exit code 2.

        A library error that names the parameter at fault (``exc.param``) gets the command's
        flag for it appended: ``Error: reps = 0 is invalid — … (option --reps)``.
        """
        try:
            return super().invoke(ctx)
        except TrialkitError as exc:
            raise UserError(_one_line(str(exc)) + flag_hint(ctx.meta.get(_LEAF), exc.param)
                            ) from None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Resolve the subcommand and remember it, so errors can name its flags."""
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta[_LEAF] = cmd
        return name, cmd, rest


_LEAF = "trialkit.leaf_command"


def param_flag(cmd: click.Command | None, name: str) -> str | None:
    """Return the spelling of library parameter ``name`` on command ``cmd`` (``--reps``, ``FILE``).

    A click parameter matches when its Python name is ``name`` or one of its option strings is
    ``--`` + ``name`` with dashes (``n_total`` → ``--n-total``); ``None`` when none does.
    """
    if cmd is None:
        return None
    dashed = "--" + name.replace("_", "-")
    for p in cmd.params:
        if p.name == name or dashed in p.opts:
            if isinstance(p, click.Argument):
                return p.human_readable_name
            longs = [o for o in p.opts if o.startswith("--")]
            return dashed if dashed in longs else (longs or p.opts)[0]
    return None


def flag_hint(cmd: click.Command | None, params: Sequence[str]) -> str:
    """`` (option --reps)`` for the parameters that ``cmd`` has a flag for, else ``""``."""
    flags = [f for f in (param_flag(cmd, n) for n in params) if f is not None]
    if not flags:
        return ""
    options = [f for f in flags if f.startswith("-")]
    arguments = [f for f in flags if not f.startswith("-")]
    parts = []
    if options:
        parts.append(("options " if len(options) > 1 else "option ") + ", ".join(options))
    if arguments:
        parts.append(("arguments " if len(arguments) > 1 else "argument ")
                     + ", ".join(arguments))
    return f" ({'; '.join(parts)})"


class UserError(click.ClickException):
    """A one-line error with exit code 2."""

    exit_code = 2


def _load(spec: str) -> click.Command:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(TrialkitGroup):
    """A group whose subcommands are imported only when used (or listed by ``--help``).

    Parameters
    ----------
    lazy : dict
        Subcommand name → ``"module:attribute"``.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return eager and lazy subcommand names, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the subcommand, importing it on first use."""
        if cmd_name in self.lazy:
            return _load(self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)


def peek_kind(path: str) -> str:
    """Return the ``kind`` of a design file without validating the rest of it."""
    try:
        with open(path, "rb") as fh:
            kind = tomllib.load(fh).get("kind")
    except OSError as exc:
        raise TrialkitError(f"{path}: cannot be read ({exc.strerror}) — check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise TrialkitError(f"{path}: is not valid TOML ({exc}) — fix the syntax") from None
    return str(kind)


#: How a design of each kind is called in messages.
KIND_NAMES = {"factorial": "a factorial", "mrt": "an MRT", "adaptive": "an adaptive"}
#: What plans a design of each kind: the default suggestion of a wrong-kind error.
PLAN_COMMANDS = {
    "factorial": "`trialkit power FILE`",
    "mrt": "`trialkit power FILE`",
    "adaptive": "`trialkit simulate FILE`",
}


def wrong_kind(path: str, kind: str, command: str, kinds: Sequence[str],
               instead: Mapping[str, str] | None = None) -> UserError:
    """Return the error for a design of ``kind`` given to ``command``, naming what to use.

    ``kinds`` are the kinds ``command`` takes; ``instead`` maps a kind to the command(s) to
    suggest (default :data:`PLAN_COMMANDS`).
    """
    if kind not in KIND_NAMES:
        return UserError(f"{path} has the unknown kind {shown(repr(kind))} — set kind to one of: "
                         + ", ".join(KIND_NAMES))
    hint = (instead or {}).get(kind) or PLAN_COMMANDS[kind]
    needed = " or ".join(KIND_NAMES[k] for k in kinds)
    return UserError(f"{path} is {KIND_NAMES[kind]} design, but '{command}' needs {needed} "
                     f"design — use {hint}")


def require_kind(path: str, kinds: Sequence[str], command: str,
                 instead: Mapping[str, str] | None = None) -> None:
    """Refuse a design file whose kind is not one of ``kinds``, naming the command to use."""
    kind = peek_kind(path)
    if kind not in kinds:
        raise wrong_kind(path, kind, command, kinds, instead)


class DesignDispatchGroup(LazyGroup):
    """A group taking either a subcommand or a design file as its first argument.

    ``trialkit power FILE ...`` runs the command registered for the file's kind (its first
    argument is the file); ``trialkit power factorial ...`` runs the ``factorial`` subcommand.

    Parameters
    ----------
    by_kind : dict
        Design kind → ``"module:attribute"`` of the command run for a file of that kind.
    instead : dict, optional
        Design kind → the command(s) to suggest for a file of a kind the group does not handle.
    """

    def __init__(self, *args: Any, by_kind: Mapping[str, str] | None = None,
                 instead: Mapping[str, str] | None = None, **kwargs: Any):
        kwargs.setdefault("subcommand_metavar", "FILE [OPTIONS] | COMMAND [ARGS]...")
        super().__init__(*args, **kwargs)
        self.by_kind = dict(by_kind or {})
        self.instead = dict(instead or {})

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """Resolve a subcommand name, or a design file by its kind."""
        name = args[0]
        if name in self.list_commands(ctx) or name.startswith("-"):
            return super().resolve_command(ctx, args)
        if not os.path.exists(name):
            choices = ", ".join(self.list_commands(ctx))
            raise click.UsageError(
                f"'{shown(name)}' is neither a design file nor a subcommand — give an existing "
                f"design file or one of: {choices}", ctx)
        kind = peek_kind(name)
        if kind not in self.by_kind:
            raise wrong_kind(name, kind, ctx.command_path, sorted(self.by_kind), self.instead)
        resolved = _file_command(_load(self.by_kind[kind]), args)
        ctx.meta[_LEAF] = resolved[1]
        return resolved


def _file_command(cmd: click.Command, args: list[str]):
    """Present a command whose first argument is the design file as ``GROUP FILE [OPTIONS]``.

    The file argument's metavar becomes the command's name in usage lines and error hints, so they
    read ``trialkit power FILE [OPTIONS]`` rather than repeating a command name.
    """
    first = next((p for p in cmd.params if isinstance(p, click.Argument)), None)
    if first is None:
        return cmd.name, cmd, args
    shown = first.human_readable_name
    clone = copy.copy(cmd)

    def usage_pieces(ctx: click.Context) -> list[str]:
        pieces = cmd.collect_usage_pieces(ctx)
        return pieces[:pieces.index(shown)] + pieces[pieces.index(shown) + 1:] \
            if shown in pieces else pieces

    clone.collect_usage_pieces = usage_pieces  # type: ignore[method-assign]
    return shown, clone, args


# -- shared options: one spelling, one type and one default each ------------------------------
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

#: The default seed of every stochastic command.
DEFAULT_SEED = 0
#: The default number of simulated replicates (trials) of every simulation command.
DEFAULT_REPS = 1000


def format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared ``--format table|json|csv`` option (as ``fmt``)."""
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output format: an aligned table, JSON (the documented contract) or CSV.",
    )(func)


def seed_option(help: str = "Seed; replicate i uses the stream (seed, i).") -> Decorator:
    """Return the shared ``--seed`` option: a whole number ≥ 0, default 0."""
    return click.option("--seed", type=click.IntRange(min=0), default=DEFAULT_SEED,
                        show_default=True, help=help)


def reps_option(help: str = "Simulated replicates.") -> Decorator:
    """Return the shared ``--reps`` option: a whole number in 1..MAX_REPS, default 1000."""
    return click.option("--reps", type=click.IntRange(min=1, max=MAX_REPS),
                        default=DEFAULT_REPS, show_default=True,
                        help=f"{help} At most {MAX_REPS:,}.")


def quiet_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared ``--quiet`` flag: no progress bar on stderr.

    Without it the command's long runs draw a progress bar on stderr when stderr is a terminal
    (:mod:`trialkit.engine.progress`); the command reads the setting with
    ``trialkit.engine.progress.progress_enabled()``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, **kwargs: Any) -> Any:
        from trialkit.engine.progress import show_progress

        with show_progress(not quiet):
            return func(*args, **kwargs)

    return click.option("--quiet", is_flag=True,
                        help="No progress bar on stderr (drawn only on a terminal, for runs "
                             "longer than a second).")(wrapper)


def refuse_unused(needed: str, *names: str) -> None:
    """Refuse options among ``names`` given on the command line without the flag ``needed``.

    A set option that would be ignored is an error, never silently dropped.
    """
    extra = given(*names)
    if extra:
        verb = "applies" if len(extra) == 1 else "apply"
        raise UserError(f"{', '.join(extra)} {verb} only with {needed}, which is not given — "
                        f"add {needed} or drop {', '.join(extra)}")


def given(*names: str) -> list[str]:
    """Return the options among ``names`` (parameter names) set on the command line."""
    ctx = click.get_current_context()
    found = []
    for name in names:
        source = ctx.get_parameter_source(name)
        if source in (click.core.ParameterSource.COMMANDLINE,
                      click.core.ParameterSource.ENVIRONMENT):
            found.append("--" + name.replace("_", "-"))
    return found


def scenario_option(help: str, default: str | None = None) -> Decorator:
    """Return the shared ``--scenario NAME`` option: a scenario of the design file."""
    return click.option("--scenario", default=default, show_default=default is not None,
                        metavar="NAME", help=help)


def jobs_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared ``--jobs`` option: worker processes, a whole number ≥ 1, default 1.

    The commands that take it simulate, so their process keeps freed memory for reuse
    (:func:`trialkit.engine.memory.keep_freed_memory`).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from trialkit.engine.memory import keep_freed_memory

        keep_freed_memory()
        return func(*args, **kwargs)

    return click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                        help="Worker processes (results do not depend on it).")(wrapper)


def out_option(help: str, multiple: bool = False) -> Decorator:
    """Return the shared ``--out FILE`` option: the extension chooses what is written."""
    return click.option("--out", "out", type=click.Path(dir_okay=False), multiple=multiple,
                        default=() if multiple else None, metavar="FILE", help=help)


def deprecated_alias(old: str, new: str, dest: str, **option: Any) -> Decorator:
    """Keep the old spelling ``old`` of option ``new`` working, hidden, with a note on stderr.

    The value given to ``old`` goes to the command's parameter ``dest`` (added to it when that
    parameter is repeatable).
    """
    hidden_name = "deprecated_" + old.lstrip("-").replace("-", "_")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(hidden_name)
            if value not in (None, ()):
                click.echo(f"Note: {old} is deprecated and will be removed — use {new}",
                           err=True)
                current = kwargs[dest]
                extra = value if isinstance(value, tuple) else (value,)
                kwargs[dest] = ((*current, *extra) if isinstance(current, tuple)
                                else current if current is not None else value)
            return func(*args, **kwargs)

        return click.option(old, hidden_name, hidden=True, **option)(wrapper)

    return decorate


def write_figure(figure: Any, path: str) -> str:
    """Save a matplotlib figure to ``path`` (format by extension) and return the path."""
    from trialkit.plotting import save_figure

    return save_figure(figure, path, param="out")


def check_figure_path(path: str) -> None:
    """Refuse an ``--out`` path that is not a figure (.png, .pdf, .svg) or cannot be written."""
    from trialkit.plotting import FIGURE_FORMATS, is_figure_path

    if not is_figure_path(path):
        raise UserError(f"{path} is not a figure file — give --out a path ending in "
                        + ", ".join(FIGURE_FORMATS))
    check_output(path, FIGURE_FORMATS)


def _writable_folder(folder: str) -> str | None:
    """Why files cannot be created in ``folder`` (``None`` when they can)."""
    if not os.path.exists(folder):
        return f"folder {folder} does not exist"
    if not os.path.isdir(folder):
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable"
    return None


def check_output(path: str, extensions: Sequence[str], param: str = "out") -> None:
    """Refuse an output file before any work: an unknown extension or a folder it cannot go in.

    Raises :class:`~trialkit.errors.TrialkitError` naming ``param`` (the CLI appends its flag).
    """
    if not path.lower().endswith(tuple(extensions)):
        raise TrialkitError(f"{path} has an extension trialkit does not write — give a "
                            "path ending in " + ", ".join(extensions), param=param)
    if os.path.isdir(path):
        raise TrialkitError(f"{path} is a folder — give a file name", param=param)
    folder = os.path.dirname(os.path.abspath(path))
    problem = _writable_folder(folder)
    if problem is not None:
        raise TrialkitError(f"cannot write {path}: {problem} — create it or choose "
                            "another path", param=param)


def check_output_dir(path: str, param: str = "out_dir") -> None:
    """Refuse an output folder before any work: a file, or a place no folder can be made."""
    if os.path.exists(path):
        problem = _writable_folder(path)
    else:
        parent = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        problem = _writable_folder(parent)
    if problem is not None:
        raise TrialkitError(f"cannot write into {path}: {problem} — choose another "
                            "folder", param=param)


def jsonable(value: Any) -> Any:
    """Convert a result (object or dict) to plain JSON values (:func:`trialkit.results.plain`)."""
    return plain(value)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) if value else "-"
    if isinstance(value, Mapping):
        return json.dumps(value)
    if value is None:
        return "-"
    return str(value)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> tuple[list[tuple[str, Any]], list]:
    scalars: list[tuple[str, Any]] = []
    tables: list[tuple[str, list]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if _is_records(value):
            tables.append((name, value))
        elif isinstance(value, Mapping) and value:
            sub_scalars, sub_tables = _flatten(value, f"{name}.")
            scalars += sub_scalars
            tables += sub_tables
        else:
            scalars.append((name, value))
    return scalars, tables


def _columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for rec in records:
        cols += [c for c in rec if c not in cols]
    return cols


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def render(data: Mapping[str, Any], fmt: str, primary: str | None = None) -> str:
    """Render a command's result dictionary.

    Parameters
    ----------
    data : dict
        The result; its JSON form is the command's documented contract.
    fmt : {"table", "json", "csv"}
        ``json`` dumps ``data``; ``table`` prints scalar fields as ``key  value`` lines followed by
        every list of records as an aligned table; ``csv`` writes the list of records named
        ``primary`` (or the only one) as CSV, or the scalar fields as ``key,value`` rows.
    primary : str, optional
        Key of the list of records that is the CSV output.
    """
    data = jsonable(data)
    if fmt == "json":
        return json.dumps(data, indent=2)
    scalars, tables = _flatten(data)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        chosen = [t for t in tables if t[0] == primary] or (tables if len(tables) == 1 else [])
        if chosen:
            records = chosen[0][1]
            cols = _columns(records)
            writer.writerow(cols)
            for rec in records:
                writer.writerow([json.dumps(v) if isinstance(v, list | dict) else
                                 ("" if v is None else v) for v in (rec.get(c) for c in cols)])
        else:
            writer.writerow(["key", "value"])
            for key, value in scalars:
                writer.writerow([key, _cell(value)])
        return buf.getvalue().rstrip("\n")
    parts = []
    if scalars:
        width = max(len(k) for k, _ in scalars)
        parts.append("\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in scalars))
    for name, records in tables:
        cols = _columns(records)
        rows = [[_cell(rec.get(c)) for c in cols] for rec in records]
        parts.append(f"{name}:\n{_aligned(cols, rows)}")
    return "\n\n".join(parts)


def emit(data: Mapping[str, Any], fmt: str, primary: str | None = None) -> None:
    """Print :func:`render` of ``data`` (a result or a dict) to stdout.

    A result object's own main table (its ``primary``) is the CSV output unless ``primary`` is
    given.
    """
    click.echo(render(data, fmt, primary or getattr(data, "primary", None)))

