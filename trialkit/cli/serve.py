"""``trialkit serve``: the randomisation server, and ``trialkit token``: its access tokens."""

from __future__ import annotations

import click

from trialkit.cli._common import TrialkitGroup, emit, format_option
from trialkit.cli.trial import _parse_strata, db_option, lock_option, server_option, token_option


@click.command()
@db_option
@click.option("--key-dir", "key_dir", envvar="TRIALKIT_KEY_DIR", metavar="DIR", default=None,
              help="The server's key folder (mode 700): keys of trials it creates and the "
                   "server key of admin tokens (default: $TRIALKIT_KEY_DIR).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; put TLS in front for others).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (they share the store).")
@click.option("--ssl-keyfile", default=None, type=click.Path(dir_okay=False),
              help="TLS private key (uvicorn's option; or terminate TLS in a reverse proxy).")
@click.option("--ssl-certfile", default=None, type=click.Path(dir_okay=False),
              help="TLS certificate chain.")
@lock_option
def serve(db, key_dir, host, port, workers, ssl_keyfile, ssl_certfile, lock_timeout) -> None:
    """Serve every trial in the store over HTTP; only this process reads the trial keys.

    Sites and apps get tokens ('trialkit token create') with one role each: coordinator,
    app, statistician, unblinder, auditor or admin. The API is documented at /openapi.json.

    \b
    Example:
      trialkit serve --db sqlite:///trials.db --key-dir /srv/trialkit/keys --port 8000
    """
    import os

    from trialkit.server.registry import Registry
    from trialkit.service.store import check_lock_timeout, resolve_url

    db = resolve_url(db)
    timeout = check_lock_timeout(lock_timeout) if lock_timeout is not None else None
    Registry(db, key_dir, timeout).close()  # a bad store or key folder fails here, in one line
    os.environ["TRIALKIT_DB"] = db
    if key_dir:
        os.environ["TRIALKIT_KEY_DIR"] = key_dir
    if timeout is not None:
        os.environ["TRIALKIT_LOCK_TIMEOUT"] = str(timeout)
    import uvicorn

    scheme = "https" if ssl_certfile else "http"
    click.echo(f"trialkit server on {scheme}://{host}:{port} ({workers} worker"
               f"{'s' if workers > 1 else ''}); API at /openapi.json", err=True)
    uvicorn.run("trialkit.server.app:create_app", factory=True, host=host, port=port,
                workers=workers, ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
                log_level="warning", access_log=False)


@click.group(cls=TrialkitGroup)
def token() -> None:
    """Access tokens of the randomisation server: create, list, revoke.

    \b
    Example:
      trialkit token create app_components_factorial --role coordinator --site site=london \\
        --expires 365 --db sqlite:///trials.db
    """


def _trial_or_server(db, name, key_file, key_dir, server, token_text, lock_timeout):
    from trialkit.errors import InvalidInput

    if server:
        from trialkit.server.client import Connection, RemoteTrial

        if not name:
            raise InvalidInput("server-wide tokens are made on the server — give a trial")
        return RemoteTrial(Connection(server, token_text), name)
    from trialkit.service.trial import Trial

    return Trial.open(db, name, key_file=key_file, lock_timeout=lock_timeout)


def _key_options(server_wide: str):
    """Add ``--key-file`` (a trial's key) and ``--key-dir`` (the server's, for ``server_wide``)."""
    def add(func):
        func = click.option("--key-dir", "key_dir", envvar="TRIALKIT_KEY_DIR", metavar="DIR",
                            default=None, help=f"The server's key folder (for {server_wide}: "
                                               "no TRIAL).")(func)
        return click.option("--key-file", "key_file", metavar="PATH", default=None,
                            help="The trial's key file (default: the path stored with the "
                                 "trial).")(func)
    return add


@token.command("create")
@click.argument("trial", required=False)
@click.option("--role", required=True,
              type=click.Choice(["coordinator", "app", "statistician", "unblinder", "auditor",
                                 "admin"]),
              help="What the token may do.")
@click.option("--site", "sites", multiple=True, metavar="KEY=VALUE",
              help="Limit a coordinator to a stratum value (repeat for more values).")
@click.option("--expires", "expires", type=float, default=None, metavar="DAYS",
              help="Days until the token expires (default: never).")
@db_option
@_key_options("a server-wide admin token")
@server_option
@token_option
@lock_option
@click.option("--user", "user", default=None, help="Who makes the token (audit trail).")
@format_option
def create_token(trial, role, sites, expires, db, key_file, key_dir, server, token, lock_timeout,
                 user, fmt) -> None:
    """Make a token (printed once: the store keeps only a keyed hash of it).

    Without TRIAL, a server-wide admin token (may create trials) from --key-dir.

    \b
    Example:
      trialkit token create app_components_factorial --role coordinator --site site=london \\
        --db sqlite:///trials.db
      trialkit token create --role admin --key-dir /srv/trialkit/keys --db sqlite:///trials.db
    """
    limits = _parse_strata_multi(sites)
    if not trial:
        emit(_server_admin_token(db, key_dir, role, limits, expires, user, lock_timeout), fmt)
        return
    with _trial_or_server(db, trial, key_file, key_dir, server, token, lock_timeout) as t:
        emit(t.create_token(role, limits, expires, user), fmt)


def _parse_strata_multi(items: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        for k, v in _parse_strata((item,)).items():
            out.setdefault(k, []).append(v)
    return out


def _server_admin_token(db, key_dir, role, limits, expires, user, lock_timeout) -> dict:
    from trialkit.errors import InvalidInput
    from trialkit.service import identity
    from trialkit.service.custody import KeyDirectory, create_admin_token
    from trialkit.service.store import connect

    if role != "admin" or limits:
        raise InvalidInput("a token without a trial is a server-wide admin token — give a trial "
                           "for other roles or site limits")
    if not key_dir:
        raise InvalidInput("a server-wide admin token needs the server's key folder — give "
                           "--key-dir")
    keys = KeyDirectory(key_dir, create=True)
    store = connect(db, create=True, lock_timeout=lock_timeout)
    try:
        return create_admin_token(store, keys, identity.user_name(user or identity.default_user()),
                                  expires)
    finally:
        store.close()


@token.command("list")
@click.argument("trial", required=False)
@db_option
@server_option
@token_option
@lock_option
@format_option
def list_tokens(trial, db, server, token, lock_timeout, fmt) -> None:
    """List tokens (ids, roles, sites, expiry, revocation; never secrets).

    \b
    Example:
      trialkit token list app_components_factorial --db sqlite:///trials.db
    """
    if not trial:
        from trialkit.service.store import connect

        store = connect(db, lock_timeout=lock_timeout)
        try:
            store.require_schema()
            emit({"tokens": [t.public() for t in store.tokens(None)]}, fmt, primary="tokens")
        finally:
            store.close()
        return
    with _trial_or_server(db, trial, None, None, server, token, lock_timeout) as t:
        emit({"tokens": t.tokens()}, fmt, primary="tokens")


@token.command("revoke")
@click.argument("token_id")
@click.argument("trial", required=False)
@db_option
@_key_options("a server-wide token")
@server_option
@token_option
@lock_option
@click.option("--user", "user", default=None, help="Who revokes (audit trail).")
@format_option
def revoke_token(token_id, trial, db, key_file, key_dir, server, token, lock_timeout, user,
                 fmt) -> None:
    """Revoke a token (of TRIAL, or server-wide); it stops working within 2 seconds.

    \b
    Example:
      trialkit token revoke k3x7qa2m4b app_components_factorial --db sqlite:///trials.db
    """
    if not trial:
        from trialkit.errors import InvalidInput
        from trialkit.service import identity
        from trialkit.service.custody import KeyDirectory, revoke_admin_token
        from trialkit.service.store import connect

        if not key_dir:
            raise InvalidInput("revoking a server-wide token needs the server's key folder — give "
                               "--key-dir, or give the trial of the token")
        store = connect(db, lock_timeout=lock_timeout)
        try:
            emit(revoke_admin_token(store, KeyDirectory(key_dir), token_id,
                                    identity.user_name(user or identity.default_user())), fmt)
        finally:
            store.close()
        return
    with _trial_or_server(db, trial, key_file, key_dir, server, token, lock_timeout) as t:
        emit(t.revoke_token(token_id, user), fmt)
