"""``trialkit trial``: the live randomisation service from the command line.

Library code is imported inside each command so that ``trialkit trial enrol`` starts quickly
(no numpy, pandas, scipy or Bayesian imports on the enrolment path).
"""

from __future__ import annotations

import sys

import click

from trialkit.cli._common import TrialkitGroup, emit, format_option

db_option = click.option("--db", "db", envvar="TRIALKIT_DB", metavar="URL",
                         help="Store: sqlite:///PATH or postgresql://… (default: $TRIALKIT_DB).")
user_option = click.option("--user", "user", default=None,
                           help="Who acts (recorded in the audit trail; default: the OS user).")


def _key_option(required: bool = False, help_text: str | None = None):
    return click.option("--key-file", "key_file", required=required, metavar="PATH",
                        type=click.Path(dir_okay=False),
                        help=help_text or "The trial's key file (default: the path stored at "
                                          "creation).")


def _open(db, name, key_file=None, user=None):
    from trialkit.service.trial import Trial

    return Trial.open(db, name, key_file=key_file, user=user)


@click.group(cls=TrialkitGroup)
def trial() -> None:
    """Live randomisation: create a trial from a design, enrol, decide, audit, export.

    \b
    Example:
      trialkit trial create designs/three-arm-adaptive.toml --db sqlite:///trial.db \\
        --key-file trial.key
      trialkit trial enrol three_arm_adaptive P001 --db sqlite:///trial.db --format json
    """


@trial.command()
@click.argument("design", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Trial name (default: the design's name).")
@db_option
@_key_option(required=True, help_text="Where to write the new secret key (mode 0600; must not "
                                      "exist; keep it outside the database).")
@user_option
@format_option
def create(design, name, db, key_file, user, fmt) -> None:
    """Create a trial from a design file and write its secret key file.

    The design file's text and SHA-256 are stored with the trial.

    \b
    Example:
      trialkit trial create designs/app-components-factorial.toml --db sqlite:///trial.db \\
        --key-file ~/secure/trial.key
    """
    from trialkit.service.trial import Trial

    with Trial.create(design, db, key_file=key_file, name=name, user=user) as t:
        emit({"trial": t.name, "kind": t.kind, "method": t.config.get("method", "bernoulli"),
              "design_sha256": t.design_sha256, "key_file": key_file, "db": t.store.url}, fmt)


def _parse_strata(values: tuple[str, ...]) -> dict[str, str]:
    from trialkit.errors import ServiceError

    out: dict[str, str] = {}
    for item in values:
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise ServiceError(f"--stratum {item!r} is not KEY=VALUE — write e.g. "
                               "--stratum site=london")
        if k in out:
            raise ServiceError(f"--stratum {k} is given twice — give each stratum once")
        out[k] = v
    return out


@trial.command()
@click.argument("name")
@click.argument("participant")
@click.option("--stratum", "strata", multiple=True, metavar="KEY=VALUE",
              help="Stratum value (repeat for each stratification factor).")
@db_option
@_key_option()
@user_option
@format_option
def enrol(name, participant, strata, db, key_file, user, fmt) -> None:
    """Randomise one participant (again: returns the original allocation, "new": false).

    JSON keys: participant, allocation, sequence, new (plus stratum and, for factorial
    designs, condition).

    \b
    Example:
      trialkit trial enrol app_components_factorial P001 --stratum site=london \\
        --db sqlite:///trial.db --format json
    """
    strata_map = _parse_strata(strata)
    with _open(db, name, key_file, user) as t:
        emit(t.enrol(participant, strata_map), fmt)


@trial.command()
@click.argument("name")
@click.argument("participant", required=False)
@click.option("--decision-point", "decision_point", type=int, default=None,
              help="Decision point number (1-based).")
@click.option("--available/--unavailable", default=None,
              help="Whether the participant is available for treatment.")
@click.option("--reason", default=None, help="Why the participant is unavailable.")
@click.option("--bulk", is_flag=True,
              help="Read decisions as CSV from stdin: participant,decision_point,available"
                   "[,reason] (available: 1/0, true/false).")
@db_option
@_key_option()
@user_option
@format_option
def decide(name, participant, decision_point, available, reason, bulk, db, key_file, user,
           fmt) -> None:
    """Decide an MRT decision point: action 0/1 drawn with the design's probability.

    JSON keys: action, probability, decision_point (plus participant, available, new).
    Repeating a decision point returns the logged decision. With --bulk, all rows are
    decided in one transaction, and any bad row leaves the store unchanged.

    \b
    Example:
      trialkit trial decide checkin_prompts_mrt U07 --decision-point 3 --available \\
        --db sqlite:///mrt.db --format json
      printf 'participant,decision_point,available,reason\\nU07,4,0,driving\\n' | \\
        trialkit trial decide checkin_prompts_mrt --bulk --db sqlite:///mrt.db
    """
    from trialkit.errors import ServiceError

    if bulk:
        if participant or decision_point is not None or available is not None:
            raise ServiceError("--bulk reads everything from stdin — drop PARTICIPANT, "
                               "--decision-point and --available/--unavailable")
        rows = _read_bulk(sys.stdin.read())
        with _open(db, name, key_file, user) as t:
            emit({"decisions": t.decide_many(rows)}, fmt, primary="decisions")
        return
    if not participant or decision_point is None or available is None:
        raise ServiceError("give PARTICIPANT, --decision-point N and --available or "
                           "--unavailable --reason R (or --bulk with CSV on stdin)")
    with _open(db, name, key_file, user) as t:
        emit(t.decide(participant, decision_point, available, reason), fmt)


def _read_bulk(text: str) -> list[tuple]:
    import csv
    import io

    from trialkit.errors import ServiceError

    reader = csv.DictReader(io.StringIO(text))
    need = {"participant", "decision_point", "available"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise ServiceError("bulk CSV needs the columns participant,decision_point,available "
                           "(and reason for unavailable rows) — fix the header line")
    truth = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    rows = []
    for i, rec in enumerate(reader, start=2):
        flag = (rec.get("available") or "").strip().lower()
        if flag not in truth:
            raise ServiceError(f"bulk CSV line {i}: available = {rec.get('available')!r} — use "
                               "1/0 or true/false")
        rows.append((rec["participant"], rec["decision_point"], truth[flag],
                     (rec.get("reason") or "").strip() or None))
    if not rows:
        raise ServiceError("bulk CSV has no rows — give one decision per line after the header")
    return rows


@trial.command()
@click.argument("name")
@db_option
@format_option
def status(name, db, fmt) -> None:
    """Counts per arm/condition and stratum, imbalance and CONSORT-style counts.

    \b
    Example:
      trialkit trial status app_components_factorial --db sqlite:///trial.db
    """
    with _open(db, name) as t:
        emit(t.status(), fmt)


@trial.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default="csv",
              show_default=True, help="Output format.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (required for parquet; default: stdout).")
@click.option("--allocation-table", "allocation_table", is_flag=True,
              help="Write a REDCap-compatible allocation table instead (needs --key-file).")
@click.option("--rows", "n_rows", type=int, default=100, show_default=True,
              help="Allocation table rows per stratum.")
@db_option
@_key_option(help_text="The key file (for --allocation-table, or to add arms of a blinded "
                       "trial).")
@user_option
def export(name, fmt, output, allocation_table, n_rows, db, key_file, user) -> None:
    """Analysis-ready export of allocations (or MRT decisions).

    Factorial: condition number and one ±1 effect-coded column per factor. MRT: exactly
    id, decision_point, availability, treatment, probability.

    \b
    Example:
      trialkit trial export app_components_factorial --format csv --db sqlite:///trial.db
      trialkit trial export app_components_factorial --allocation-table --rows 64 \\
        --key-file trial.key --db sqlite:///trial.db -o redcap.csv
    """
    from trialkit.errors import ServiceError

    if fmt == "parquet" and not output:
        raise ServiceError("parquet is binary — give --output FILE.parquet")
    if output:
        import os

        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise ServiceError(f"cannot write {output}: folder {folder} does not exist — "
                               "check --output")
    if allocation_table and not key_file:
        raise ServiceError("an allocation table needs the key — give --key-file")
    from trialkit.service.report import export_columns

    with _open(db, name, user=user) as t:
        rows = (t.allocation_table(n_rows, key_file) if allocation_table
                else t.export(key_file))
        columns = () if allocation_table else export_columns(t, key_file)
    from trialkit.service.export import write_rows

    write_rows(rows, fmt, output, columns)


@trial.command()
@click.argument("name")
@click.argument("participant")
@click.option("--reason", required=True, help="Why the participant must be unblinded.")
@_key_option(required=True, help_text="The trial's key file.")
@db_option
@user_option
@format_option
def unblind(name, participant, reason, key_file, db, user, fmt) -> None:
    """Reveal one participant's allocation (logged with the reason, not the arm).

    \b
    Example:
      trialkit trial unblind app_components_factorial P001 --reason "serious adverse event" \\
        --key-file trial.key --db sqlite:///trial.db
    """
    with _open(db, name, user=user) as t:
        emit(t.unblind(participant, reason, key_file), fmt)


@trial.command("mark-error")
@click.argument("name")
@click.argument("participant")
@click.option("--reason", required=True, help="What was wrong with the enrolment.")
@db_option
@user_option
@format_option
def mark_error(name, participant, reason, db, user, fmt) -> None:
    """Flag an enrolment as made in error; nothing is ever deleted.

    \b
    Example:
      trialkit trial mark-error app_components_factorial P009 --reason "enrolled twice as P010" \\
        --db sqlite:///trial.db
    """
    with _open(db, name, user=user) as t:
        emit(t.mark_error(participant, reason), fmt)


@trial.command()
@click.argument("name")
@_key_option(help_text="With the key, replay every allocation and compare it with the log.")
@db_option
@format_option
def verify(name, key_file, db, fmt) -> None:
    """Check the audit chain and, with --key-file, replay every allocation.

    Exit 0 only if every check passes; otherwise exit 1 naming the first bad audit row.

    \b
    Example:
      trialkit trial verify app_components_factorial --key-file trial.key --db sqlite:///trial.db
    """
    with _open(db, name) as t:
        result = t.verify(key_file)
    emit(result, fmt)
    if not result["ok"]:
        click.echo(f"Error: verification failed: {result['problem']}", err=True)
        raise click.exceptions.Exit(1)
