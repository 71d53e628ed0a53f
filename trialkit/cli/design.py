"""``trialkit design``: check and describe design files."""

from __future__ import annotations

import click

from trialkit.cli._common import LazyGroup, emit, format_option


@click.group(cls=LazyGroup)
def design() -> None:
    """Check and describe design files.

    \b
    Example:
      trialkit design validate designs/*.toml
      trialkit design show designs/app-components-fraction.toml --format json
    """


@design.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Validate design files: exit 0 when all are valid, else exit 2 with one line per problem.

    \b
    Example:
      trialkit design validate designs/*.toml
    """
    from trialkit.design import load_design
    from trialkit.errors import TrialkitError

    problems = 0
    for path in files:
        try:
            found = load_design(path)
        except TrialkitError as exc:
            problems += 1
            click.echo(f"Error: {exc}", err=True)
        else:
            click.echo(f"{path}: valid {found.kind} design '{found.name}'")
    if problems:
        raise click.exceptions.Exit(2)


@design.command()
@click.argument("file", type=click.Path(dir_okay=False))
@format_option
def show(file: str, fmt: str) -> None:
    """Show a design: kind, factors or arms, coded conditions, sizes and assumed effects.

    In CSV the factorial's conditions (one row each, with their ±1 coding) are written.

    \b
    Example:
      trialkit design show designs/app-components-factorial.toml
      trialkit design show designs/app-components-fraction.toml --format json
    """
    from trialkit.design import load_design

    emit(load_design(file).summary(), fmt, primary="conditions")
