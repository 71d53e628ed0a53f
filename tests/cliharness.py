"""Run the ``trialkit trial`` command-line tests in embedded mode and through a server.

In server mode a test's commands go to a real server (one per store, started when the first
trial of that store is created) with the token of the role the command needs, instead of
``--db``: the test's assertions then hold for the command line as an HTTP client. ``trial create``
still runs on the store (the test's key file is the key the server then reads).
"""

from __future__ import annotations

from click.testing import CliRunner
from serverkit import Server

from trialkit.service.trial import Trial

ROLE = {"enrol": "coordinator", "mark-error": "coordinator", "decide": "app",
        "status": "statistician", "export": "statistician", "unblind": "unblinder",
        "verify": "auditor", "checkpoint": "auditor", "upgrade": "admin", "outcome": "app",
        "interim": "statistician", "policy-update": "statistician", "policy": "statistician",
        "schedule": "app"}
LOCAL_ONLY = {"--db", "--lock-timeout"}


class TrialCli:
    """The ``run`` fixture's invoke, in ``embedded`` or ``server`` mode."""

    def __init__(self, mode: str):
        self.mode = mode
        self.runner = CliRunner()
        self.servers: dict[str, Server] = {}
        self.tokens: dict[tuple[str, str, str], str] = {}

    def _cli(self, args: list[str], input: str | None):
        from trialkit.cli import cli

        return self.runner.invoke(cli, args, input=input, prog_name="trialkit")

    def invoke(self, *args, input: str | None = None):
        """Run ``trialkit ARGS`` (as a test's ``run`` does)."""
        args = [str(a) for a in args]
        if self.mode == "embedded" or args[:1] != ["trial"] or len(args) < 3:
            return self._cli(args, input)
        command, name = args[1], args[2]
        db = _value(args, "--db")
        if db is None:  # the store comes from the environment: nothing to redirect
            return self._cli(args, input)
        if command == "create":
            result = self._cli(args, input)
            if result.exit_code == 0:
                self._serve(db, _value(args, "--name") or _design_name(args[2]))
            return result
        if db not in self.servers and not self._serve_existing(db):
            return self._cli(args, input)
        token = self._token(db, name, ROLE.get(command, "auditor"))
        remote = _without(args, LOCAL_ONLY) + ["--server", self.servers[db].url, "--token", token]
        return self._cli(remote, input)

    def _serve(self, db: str, trial: str) -> None:
        if db not in self.servers:
            self.servers[db] = Server(db).start()
        with Trial.open(db, trial) as t:
            for role in set(ROLE.values()):
                self.tokens[(db, trial, role)] = t.create_token(role)["token"]

    def _serve_existing(self, db: str) -> bool:
        try:
            self.servers[db] = Server(db).start()
            return True
        except RuntimeError:
            return False

    def _token(self, db: str, trial: str, role: str) -> str:
        if (db, trial, role) in self.tokens:
            return self.tokens[(db, trial, role)]
        same_role = [t for (d, _, r), t in self.tokens.items() if d == db and r == role]
        return same_role[0] if same_role else "tk_unknown_token"

    def close(self) -> None:
        """Stop every server this harness started."""
        for server in self.servers.values():
            server.stop()


def _value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def _without(args: list[str], flags: set[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        else:
            out.append(a)
    return out


def _design_name(path: str) -> str:
    import tomllib

    with open(path, "rb") as fh:
        return tomllib.load(fh)["name"]
