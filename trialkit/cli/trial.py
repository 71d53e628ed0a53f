"""``trialkit trial``: the live randomisation service from the command line.

Library code is imported inside each command so that ``trialkit trial enrol`` starts quickly
(no numpy, pandas, scipy or Bayesian imports on the enrolment path). Every command parses its
options, calls one method of :class:`trialkit.service.Trial` and renders the result.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from trialkit.cli._common import TrialkitGroup, emit, format_option

db_option = click.option("--db", "db", envvar="TRIALKIT_DB", metavar="URL",
                         help="Store: sqlite:///PATH or postgresql://… (default: $TRIALKIT_DB).")
user_option = click.option("--user", "user", default=None,
                           help="Who acts (recorded in the audit trail; default: the OS user).")
lock_option = click.option("--lock-timeout", "lock_timeout", envvar="TRIALKIT_LOCK_TIMEOUT",
                           type=float, default=None, metavar="SECONDS",
                           help="Longest wait for a lock before giving up with exit 2 (default: "
                                "$TRIALKIT_LOCK_TIMEOUT or 10).")


def _key_option(required: bool = False, help_text: str | None = None) -> Callable:
    return click.option("--key-file", "key_file", required=required, metavar="PATH",
                        type=click.Path(dir_okay=False),
                        help=help_text or "The trial's key file (default: the path stored at "
                                          "creation).")


server_option = click.option("--server", "server", envvar="TRIALKIT_SERVER", metavar="URL",
                             help="Talk to this trialkit server instead of a local store "
                                  "(default: $TRIALKIT_SERVER).")
token_option = click.option("--token", "token", envvar="TRIALKIT_TOKEN", metavar="TOKEN",
                            help="Access token for --server (default: $TRIALKIT_TOKEN).")


def store_options(func: Callable) -> Callable:
    """Where the trial is: ``--db`` (and ``--lock-timeout``), or ``--server`` with ``--token``."""
    return db_option(lock_option(server_option(token_option(func))))


def _open(db, name, key_file=None, user=None, lock_timeout=None, server=None, token=None):
    """Open the trial ``name``: in the local store, or on the server (through its API)."""
    if server:
        from trialkit.server.client import Connection, RemoteTrial

        _refuse_with_server(key_file=key_file, user=user)
        return RemoteTrial(Connection(server, token), name)
    from trialkit.service.trial import Trial

    return Trial.open(db, name, key_file=key_file, user=user, lock_timeout=lock_timeout)


def _refuse_with_server(**given: object) -> None:
    from trialkit.errors import InvalidInput

    why = {"key_file": "the server holds the key", "user": "the audit trail records the token",
           "allocation_table": "allocation tables are made where the key is",
           "reason": "an export through the server stays blinded"}
    for name, value in given.items():
        if value:
            flag = "--" + name.replace("_", "-")
            raise InvalidInput(f"{why[name]} — drop {flag} with --server")


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
@store_options
@_key_option(help_text="Where to write the new secret key (mode 0600; must not exist; keep it "
                       "outside the database). Not with --server: the server keeps the key.")
@user_option
@format_option
def create(design, name, db, lock_timeout, server, token, key_file, user, fmt) -> None:
    """Create a trial from a design file and write its secret key file.

    The design file's text and SHA-256 are stored with the trial. The output states how
    predictable the allocations are to a coordinator who sees every allocation
    (predictability.rate: the expected proportion of correct guesses).

    \b
    Example:
      trialkit trial create designs/app-components-factorial.toml --db sqlite:///trial.db \\
        --key-file ~/secure/trial.key
    """
    if server:
        from trialkit.server.client import Connection, create_remote

        _refuse_with_server(key_file=key_file, user=user)
        _emit_created(create_remote(Connection(server, token), design, name), fmt)
        return
    from trialkit.service.lifecycle import creation_report
    from trialkit.service.trial import Trial

    with Trial.create(design, db, key_file=key_file, name=name, user=user,
                      lock_timeout=lock_timeout) as t:
        _emit_created(creation_report(t, key_file, t.store.url), fmt)


def _emit_created(report: dict, fmt: str) -> None:
    for note in report.get("notes", ()):
        click.echo(f"Note: {note}", err=True)
    emit(report, fmt)


def _parse_strata(values: tuple[str, ...], what: str = "stratum", param: str = "strata",
                  example: str = "site=london") -> dict[str, str]:
    from trialkit.errors import InvalidInput

    out: dict[str, str] = {}
    for item in values:
        k, sep, v = item.partition("=")
        if param == "context":
            k, v = k.strip(), v.strip()
        if not sep or not k or not v:
            raise InvalidInput(f"{what} {item[:40]!r} is not KEY=VALUE — write e.g. {example}",
                               param=param)
        if k in out:
            raise InvalidInput(f"{what} {k[:40]!r} is given twice — give each {what} once",
                               param=param)
        out[k] = v
    return out


def _parse_context(values: tuple[str, ...]) -> dict[str, str]:
    return _parse_strata(values, "context", "context", "stress=0.4")


context_option = click.option(
    "--context", "context", multiple=True, metavar="NAME=VALUE",
    help="A context variable of an adaptive MRT's policy at the decision point (repeat for "
         "each).")


@trial.command()
@click.argument("name")
@click.argument("participant")
@click.option("--stratum", "strata", multiple=True, metavar="KEY=VALUE",
              help="Stratum value (repeat for each stratification factor).")
@store_options
@_key_option()
@user_option
@format_option
def enrol(name, participant, strata, db, lock_timeout, server, token, key_file, user,
          fmt) -> None:
    """Randomise one participant (again: returns the original allocation, "new": false).

    JSON keys: participant, allocation, sequence, new, stratum, receipt (plus condition for
    factorial designs). Keep receipts: 'trial verify --receipts' detects a rolled-back store.

    \b
    Example:
      trialkit trial enrol app_components_factorial P001 --stratum site=london \\
        --db sqlite:///trial.db --format json
    """
    strata_map = _parse_strata(strata)
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.enrol(participant, strata_map), fmt)


@trial.command()
@click.argument("name")
@click.argument("participant", required=False)
@click.option("--decision-point", "decision_point", default=None,
              help="Decision point number (1-based).")
@click.option("--available/--unavailable", default=None,
              help="Whether the participant is available for treatment.")
@click.option("--reason", default=None, help="Why the participant is unavailable.")
@context_option
@click.option("--bulk", is_flag=True,
              help="Read decisions as CSV from stdin: participant,decision_point,available"
                   "[,reason] (available: 1/0, true/false), and one column per context "
                   "variable of an adaptive MRT.")
@store_options
@_key_option()
@user_option
@format_option
def decide(name, participant, decision_point, available, reason, context, bulk, db,
           lock_timeout, server, token, key_file, user, fmt) -> None:
    """Decide an MRT decision point: action 0/1 drawn with the design's probability.

    JSON keys: action, probability, decision_point, receipt (plus participant, available,
    new). Repeating a decision point returns the logged decision. With --bulk, all rows are
    decided in one transaction, and any bad row leaves the store unchanged.

    An adaptive MRT (a design with a [policy]) needs --context NAME=VALUE for every context
    variable of the policy at an available decision point: the probability is the policy's in
    force for that context; the JSON adds policy_version and context. An update due by the
    design's schedule runs first, in the same transaction.

    \b
    Example:
      trialkit trial decide checkin_prompts_mrt U07 --decision-point 3 --available \\
        --db sqlite:///mrt.db --format json
      printf 'participant,decision_point,available,reason\\nU07,4,0,driving\\n' | \\
        trialkit trial decide checkin_prompts_mrt --bulk --db sqlite:///mrt.db
    """
    from trialkit.errors import InvalidInput

    if bulk:
        if participant or decision_point is not None or available is not None or context:
            raise InvalidInput("--bulk reads everything from stdin — drop PARTICIPANT, "
                               "--decision-point, --available/--unavailable and --context")
        rows = read_bulk(sys.stdin.read())
        with _open(db, name, key_file, user, lock_timeout, server, token) as t:
            emit({"decisions": t.decide_many(rows)}, fmt, primary="decisions")
        return
    if not participant or decision_point is None or available is None:
        raise InvalidInput("give PARTICIPANT, --decision-point N and --available or "
                           "--unavailable --reason R (or --bulk with CSV on stdin)")
    ctx = _parse_context(context) or None
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.decide(participant, decision_point, available, reason, context=ctx), fmt)


_BULK_FIELDS = ("participant", "decision_point", "available", "reason")


def read_bulk(text: str) -> list[tuple]:
    """Decision requests from bulk CSV text (``participant,decision_point,available[,reason]``).

    Any other column is a context variable (an empty cell: not given).
    """
    import csv
    import io

    from trialkit.errors import InvalidInput

    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = {"participant", "decision_point", "available"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise InvalidInput("bulk CSV needs the columns participant,decision_point,available "
                           "(and reason for unavailable rows) — fix the header line")
    truth = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    rows = []
    for i, rec in enumerate(reader, start=2):
        flag = (rec.get("available") or "").strip().lower()
        if flag not in truth:
            raise InvalidInput(f"bulk CSV line {i}: available = {str(rec.get('available'))[:40]!r}"
                               " — use 1/0 or true/false")
        if None in rec:
            raise InvalidInput(f"bulk CSV line {i} has more fields than the header — quote "
                               "fields that hold commas")
        ctx = {k: v.strip() for k, v in rec.items()
               if k not in _BULK_FIELDS and v is not None and v.strip()}
        rows.append((rec["participant"], rec["decision_point"], truth[flag],
                     (rec.get("reason") or "").strip() or None, ctx or None))
    if not rows:
        raise InvalidInput("bulk CSV has no rows — give one decision per line after the header")
    return rows


@trial.command()
@click.argument("name")
@click.argument("participant", required=False)
@click.option("--value", default=None, metavar="V",
              help="The outcome: 0 or 1 for a binary outcome, a finite number otherwise.")
@click.option("--decision-point", "decision_point", default=None, metavar="N",
              help="The decision point of an adaptive MRT's proximal outcome.")
@click.option("--observed-at", "observed_at", default=None, metavar="TIME",
              help="When it was observed (ISO 8601 date or time; default: not recorded).")
@click.option("--reason", default=None,
              help="Why an outcome already recorded is corrected (needed for a correction).")
@click.option("--bulk", is_flag=True,
              help="Read outcomes as CSV from stdin: participant[,decision_point],value"
                   "[,observed_at][,reason]; all are recorded, or none if one is refused.")
@store_options
@_key_option()
@user_option
@format_option
def outcome(name, participant, value, decision_point, observed_at, reason, bulk, db,
            lock_timeout, server, token, key_file, user, fmt) -> None:
    """Record a participant's outcome in an adaptive trial (once; corrections need --reason).

    Outcomes feed the interim analyses. Unknown participants, participants marked in error and
    values of the wrong type are refused with nothing written. JSON keys: participant, value,
    observed_at, recorded_at, corrected, receipt.

    In an adaptive MRT the outcome is the proximal outcome of a decided, available decision
    point (--decision-point N; a decision_point column with --bulk); it feeds the policy
    updates.

    \b
    Example:
      trialkit trial outcome three_arm_adaptive P001 --value 1 --observed-at 2026-03-01 \
        --db sqlite:///trial.db
      printf 'participant,value\nP002,0\nP003,1\n' | \
        trialkit trial outcome three_arm_adaptive --bulk --db sqlite:///trial.db
    """
    from trialkit.errors import InvalidInput

    if bulk:
        if participant or value is not None or observed_at or reason or decision_point:
            raise InvalidInput("--bulk reads everything from stdin — drop PARTICIPANT, --value, "
                               "--decision-point, --observed-at and --reason")
        items = read_outcomes(sys.stdin.read())
        with _open(db, name, key_file, user, lock_timeout, server, token) as t:
            emit({"outcomes": t.record_outcomes(items)}, fmt, primary="outcomes")
        return
    if not participant or value is None:
        raise InvalidInput("give PARTICIPANT and --value V (or --bulk with CSV on stdin)")
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.record_outcome(participant, value, observed_at, reason,
                              decision_point=decision_point), fmt)


def read_outcomes(text: str) -> list[dict]:
    """Outcomes from bulk CSV text (``participant,value[,observed_at][,reason]`` with a header)."""
    import csv
    import io

    from trialkit.errors import InvalidInput

    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    allowed = ("participant", "decision_point", "value", "observed_at", "reason")
    if "participant" not in columns or "value" not in columns or \
            any(c not in allowed for c in columns):
        raise InvalidInput("bulk outcomes need a header with participant and value (and "
                           "optionally decision_point, observed_at, reason) — got: "
                           f"{', '.join(columns)[:80] or 'nothing'}")
    items = [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]
    if not items:
        raise InvalidInput("no outcome rows on stdin — give one row per outcome after the header")
    return items


@trial.command()
@click.argument("name")
@store_options
@_key_option()
@user_option
@format_option
def interim(name, db, lock_timeout, server, token, key_file, user, fmt) -> None:
    """Run the next interim analysis of an adaptive trial (when it is due) and apply it.

    The analysis is the simulator's own look on every outcome recorded so far: per-arm data,
    P(best), P(better than the control), arms dropped, whether and why the trial stops, and
    the new allocation probabilities. It is logged in the audit trail; a look not yet due is
    refused with the number of outcomes it needs.

    \b
    Example:
      trialkit trial interim three_arm_adaptive --db sqlite:///trial.db --format json
    """
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.interim(), fmt, primary="arms")


@trial.command("policy-update")
@click.argument("name")
@store_options
@_key_option()
@user_option
@format_option
def policy_update(name, db, lock_timeout, server, token, key_file, user, fmt) -> None:
    """Refit an adaptive MRT's policy now on every proximal outcome recorded so far.

    The posterior of the policy's reward model, from every available decision with its outcome,
    is logged in the audit trail as the next policy version and used by the decisions that
    follow (updates also run by the design's schedule, before the first decision of a new
    stage). JSON keys: version, stage, trigger, rows (decisions used), missing (available
    decisions without an outcome yet), mean, covariance, receipt.

    \b
    Example:
      trialkit trial policy-update adaptive_prompts_mrt --db sqlite:///mrt.db --format json
    """
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.policy_update(), fmt)


@trial.command()
@click.argument("name")
@store_options
@_key_option()
@format_option
def policy(name, db, lock_timeout, server, token, key_file, fmt) -> None:
    """Show an adaptive MRT's policy in force: version, posterior, next update, updates so far.

    \b
    Example:
      trialkit trial policy adaptive_prompts_mrt --db sqlite:///mrt.db --format json
    """
    with _open(db, name, key_file, None, lock_timeout, server, token) as t:
        emit(t.policy(), fmt, primary="updates")


@trial.command()
@click.argument("name")
@click.argument("participant")
@click.option("--decision-points", "decision_points", required=True, metavar="A..B",
              help="The decision points to decide ahead (A..B, or one number).")
@context_option
@store_options
@_key_option()
@user_option
@format_option
def schedule(name, participant, decision_points, context, db, lock_timeout, server, token,
             key_file, user, fmt) -> None:
    """Decide decision points A..B ahead for a participant who will be offline (adaptive MRT).

    Every point is decided as available with the policy in force and the design's default
    context ([context.NAME] default; --context replaces a default), and logged. The phone
    then prompts by the returned actions. JSON keys: participant, first, last, policy_version,
    context, decisions (each as trial decide returns it).

    \b
    Example:
      trialkit trial schedule adaptive_prompts_mrt U07 --decision-points 15..28 \
        --context engaged=1 --db sqlite:///mrt.db
    """
    ctx = _parse_context(context)
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.schedule(participant, decision_points, ctx), fmt, primary="decisions")


@trial.command()
@click.argument("name")
@click.option("--out", "plot", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Adaptive trials: draw the allocation probabilities and P(best) over the "
                   "interim analyses to FILE (.png, .pdf or .svg; a blinded trial needs "
                   "--key-file).")
@store_options
@_key_option(help_text="The key file (only to plot the sealed interims of a blinded trial).")
@format_option
def status(name, plot, db, lock_timeout, server, token, key_file, fmt) -> None:
    """Return counts per arm/condition and stratum, imbalance, CONSORT counts and predictability.

    Blinded trials show no counts per arm. predictability.rate is the expected proportion of
    allocations a coordinator who sees every allocation guesses correctly. An adaptive trial's
    status adds "adaptive": looks done, the probabilities in force, active and dropped arms, the
    stopping state and what the next look needs.

    \b
    Example:
      trialkit trial status app_components_factorial --db sqlite:///trial.db
      trialkit trial status three_arm_adaptive --out looks.png --db sqlite:///trial.db
    """
    if plot:
        from trialkit.cli._common import check_figure_path

        check_figure_path(plot)
    with _open(db, name, key_file if not server else None, lock_timeout=lock_timeout,
               server=server, token=token) as t:
        out = t.status()
        if plot:
            out["plot"] = _plot_looks(t, plot)
        emit(out, fmt)


def _plot_looks(t, path: str) -> str:
    from trialkit.adaptive.plots import looks_figure
    from trialkit.cli._common import write_figure
    from trialkit.errors import InvalidInput

    info = t.status().get("adaptive")
    if info is None:
        raise InvalidInput(f"trial {t.name!r} has no interim analyses to plot — the figure is "
                           "for adaptive trials", param="out")
    start = info["start_probabilities"]
    return write_figure(looks_figure(t.looks(), list(start), list(start.values())), path)


EXPORT_FORMATS = ("csv", "parquet", "json")


def _export_format(fmt: str | None, out: str | None) -> str:
    import os

    from trialkit.errors import InvalidInput

    if fmt is None and out:
        ext = os.path.splitext(out)[1].lower().lstrip(".")
        if ext not in EXPORT_FORMATS:
            raise InvalidInput(f"cannot tell the format of {out[:60]} from its extension — use "
                               ".csv, .json or .parquet, or give --format")
        fmt = ext
    fmt = fmt or "csv"
    if fmt == "parquet" and not out:
        raise InvalidInput("parquet is binary — give --out FILE.parquet")
    if out:
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise InvalidInput(f"cannot write {out}: folder {folder} does not exist — check --out")
    return fmt


def _deprecated_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        click.echo("Note: --output/-o is deprecated — use --out", err=True)
    return value


@trial.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default=None,
              help="Output format (default: from the --out extension, else csv).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (.csv, .json or .parquet; default: stdout).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              hidden=True, callback=_deprecated_output, expose_value=True)
@click.option("--allocation-table", "allocation_table", is_flag=True,
              help="Write a REDCap-compatible allocation table instead (needs the key).")
@click.option("--rows", "rows", type=int, default=100, show_default=True,
              help="Allocation table rows per stratum.")
@click.option("--reason", default=None,
              help="Why a blinded trial's arms are exported (needed with --key-file; logged).")
@store_options
@_key_option(help_text="The key file (for --allocation-table, or to add the arms of a blinded "
                       "trial, which is logged as unblinding).")
@user_option
def export(name, fmt, out, output, allocation_table, rows, reason, db, lock_timeout, server,
           token, key_file, user) -> None:
    """Analysis-ready export of allocations (or MRT decisions).

    Factorial: condition number and one ±1 effect-coded column per factor. MRT: exactly
    id, decision_point, availability, treatment, probability. A blinded trial exports codes;
    its arms only with --key-file and --reason, and that export is logged as unblinding.

    \b
    Example:
      trialkit trial export app_components_factorial --out allocations.csv --db sqlite:///trial.db
      trialkit trial export app_components_factorial --allocation-table --rows 64 \\
        --key-file trial.key --db sqlite:///trial.db --out redcap.csv
    """
    from trialkit.errors import InvalidInput
    from trialkit.service.export import write_bytes, write_rows

    out = out or output
    fmt = _export_format(fmt, out)
    if server:
        _refuse_with_server(allocation_table=allocation_table, key_file=key_file, reason=reason,
                            user=user)
        with _open(db, name, server=server, token=token) as t:
            write_bytes(t.export_bytes(fmt), out)
        return
    if allocation_table and not key_file:
        raise InvalidInput("an allocation table needs the key — give --key-file")
    with _open(db, name, user=user, lock_timeout=lock_timeout) as t:
        if allocation_table:
            data, columns = t.allocation_table(rows, key_file), []
        else:
            data, columns = t.export(key_file, reason), t.export_columns(key_file)
    write_rows(data, fmt, out, columns)


@trial.command()
@click.argument("name")
@click.argument("participant")
@click.option("--reason", required=True, help="Why the participant must be unblinded.")
@_key_option(help_text="The trial's key file (required without --server).")
@store_options
@user_option
@format_option
def unblind(name, participant, reason, key_file, db, lock_timeout, server, token, user,
            fmt) -> None:
    """Reveal one participant's allocation (logged with who, when and why).

    Refused for an open-label trial. The status counts unblinded participants, not requests.

    \b
    Example:
      trialkit trial unblind app_components_factorial P001 --reason "serious adverse event" \\
        --key-file trial.key --db sqlite:///trial.db
    """
    if not server and not key_file:
        from trialkit.errors import InvalidInput

        raise InvalidInput("unblinding needs the trial's key — give --key-file")
    with _open(db, name, user=user, lock_timeout=lock_timeout, server=server, token=token) as t:
        emit(t.unblind(participant, reason, key_file), fmt)


@trial.command("mark-error")
@click.argument("name")
@click.argument("participant")
@click.option("--reason", required=True, help="What was wrong with the enrolment.")
@store_options
@_key_option()
@user_option
@format_option
def mark_error(name, participant, reason, db, lock_timeout, server, token, key_file, user,
               fmt) -> None:
    """Flag an enrolment as made in error; nothing is ever deleted.

    \b
    Example:
      trialkit trial mark-error app_components_factorial P009 --reason "enrolled twice as P010" \\
        --db sqlite:///trial.db
    """
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.mark_error(participant, reason), fmt)


@trial.command()
@click.argument("name")
@store_options
@_key_option()
@format_option
def checkpoint(name, db, lock_timeout, server, token, key_file, fmt) -> None:
    """Print a receipt for the audit chain's current head, to keep outside the database.

    Mail it to the sponsor (daily, say): 'trial verify --receipts' with any later receipt
    detects a restored older copy of the database or a cut audit trail.

    \b
    Example:
      trialkit trial checkpoint app_components_factorial --db sqlite:///trial.db >> receipts.txt
    """
    with _open(db, name, key_file, lock_timeout=lock_timeout, server=server, token=token) as t:
        result = t.checkpoint()
    if fmt == "table":
        click.echo(result["receipt"])
    else:
        emit(result, fmt)


@trial.command()
@click.argument("name")
@_key_option(help_text="With the key: check every MAC, replay every allocation, check the "
                       "sealed state and any receipts.")
@click.option("--receipts", "receipts", type=click.File("r"), default=None, metavar="FILE",
              help="Receipts (one a line; '-' for stdin) that the store must still contain.")
@store_options
@format_option
def verify(name, key_file, receipts, db, lock_timeout, server, token, fmt) -> None:
    """Check the audit chain and tables; with --key-file, every MAC, allocation and receipt.

    Exit 0 only if every check passes; otherwise exit 1 naming the first bad audit row or
    receipt. Without the key only the chain's structure and the tables' agreement with it are
    checked (the output says so).

    \b
    Example:
      trialkit trial verify app_components_factorial --key-file trial.key \\
        --receipts receipts.txt --db sqlite:///trial.db
    """
    from trialkit.service.verify import read_receipts

    texts = read_receipts(receipts.read()) if receipts is not None else []
    if server:
        _refuse_with_server(key_file=key_file)
    with _open(db, name, lock_timeout=lock_timeout, server=server, token=token) as t:
        result = t.verify(key_file, texts)
    emit(result, fmt)
    if not result["ok"]:
        click.echo(f"Error: verification failed: {result['problem']}", err=True)
        raise click.exceptions.Exit(1)


@trial.command()
@click.argument("name")
@_key_option()
@store_options
@user_option
@format_option
def upgrade(name, key_file, db, lock_timeout, server, token, user, fmt) -> None:
    """Convert a trial created by trialkit 0.1 to the keyed audit chain (once, with its key).

    The old chain and every allocation are checked first; the clear-text draws of 0.1 are
    removed, every audit row is authenticated with the key, and an 'upgrade' row records the
    old chain head.

    \b
    Example:
      trialkit trial upgrade app_components_factorial --key-file trial.key --db sqlite:///trial.db
    """
    with _open(db, name, key_file, user, lock_timeout, server, token) as t:
        emit(t.upgrade(), fmt)
