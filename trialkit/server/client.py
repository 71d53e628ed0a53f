"""The HTTP client of the randomisation server.

It has the methods of :class:`Trial` the command line uses, so
``trialkit trial … --server URL --token T`` behaves as the embedded commands do.

Only the standard library is used (``http.client``), so the client starts as fast as the embedded
commands. An error response becomes the same :class:`~trialkit.errors.ServiceError` subclass, with
the same one-line message and parameter, that the embedded service raises; a server that cannot
be reached is :class:`~trialkit.errors.Unavailable`.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from trialkit import errors
from trialkit.errors import InvalidInput, ServiceError, Unavailable

_KINDS = {name: getattr(errors, name) for name in (
    "InvalidInput", "NotFound", "Conflict", "Forbidden", "AccessDenied", "Unauthenticated",
    "Unavailable", "Tampered", "ServiceError")}


class Connection:
    """A keep-alive connection to a trialkit server, authenticated with a bearer token.

    ``retries`` repeats a request that could not be sent or answered (connection refused or
    reset, timeout), waiting ``retry_wait`` seconds between tries: safe for every request of
    the API, which is idempotent.
    """

    def __init__(self, server: str, token: str | None, timeout: float = 30.0,
                 retries: int = 0, retry_wait: float = 0.5):
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"server address {server[:60]!r} is not an http(s) URL — write "
                               "e.g. http://127.0.0.1:8000", param="server")
        self.server = server.rstrip("/")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._base = parts.path.rstrip("/")
        self._token = token
        self._timeout, self._retries, self._retry_wait = timeout, retries, retry_wait
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: Any = None,
                query: Mapping[str, Any] | None = None) -> tuple[int, bytes]:
        """Send one request; return the status and the body."""
        url = self._base + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        for attempt in range(self._retries + 1):
            try:
                conn = self._connection()
                conn.request(method, url, body=data, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == self._retries:
                    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror
                              else type(exc).__name__ if not str(exc) else str(exc))
                    raise Unavailable(f"cannot reach the trialkit server at {self.server} "
                                      f"({reason}) — check the address and that the server is "
                                      "running", param="server") from None
                time.sleep(self._retry_wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, body: Any = None,
             query: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its JSON answer, or raise the error it reports."""
        status, data = self.request(method, path, body, query)
        if status >= 400:
            raise _error(status, data, self.server)
        return json.loads(data)


def _error(status: int, data: bytes, server: str) -> ServiceError:
    try:
        body = json.loads(data)
        cls = _KINDS.get(body.get("kind"), ServiceError)
        return cls(body["error"], param=body.get("param"))
    except (ValueError, KeyError, AttributeError, TypeError):
        return Unavailable(f"the trialkit server at {server} answered {status} without an error "
                           "message — check the address points at a trialkit server")


class RemoteTrial:
    """A trial on a trialkit server.

    It has the methods of :class:`~trialkit.service.trial.Trial` that a principal may call, over
    HTTP.
    """

    def __init__(self, connection: Connection, name: str):
        self.connection = connection
        self.name = name
        self._path = f"/v1/trials/{quote(name, safe='')}"

    def __enter__(self) -> RemoteTrial:
        """Use the trial in a ``with`` block (the connection closes at its end)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connection."""
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def _call(self, method: str, path: str = "", body: Any = None,
              query: Mapping[str, Any] | None = None) -> Any:
        return self.connection.json(method, self._path + path, body, query)

    def enrol(self, participant: Any, strata: Mapping[str, Any] | None = None,
              user: str | None = None) -> dict[str, Any]:
        """Enrol one participant."""
        return self._call("POST", "/participants", {"participant": str(participant),
                                                    "stratum": dict(strata or {})})

    def participant(self, participant: Any) -> dict[str, Any]:
        """One enrolment."""
        return self._call("GET", f"/participants/{quote(str(participant), safe='')}")

    def decide(self, participant: Any, decision_point: Any, available: bool = True,
               reason: str | None = None, user: str | None = None,
               context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Decide one decision point."""
        return self.decide_many([(participant, decision_point, available, reason, context)])[0]

    def decide_many(self, rows: Iterable[Sequence[Any]],
                    user: str | None = None) -> list[dict[str, Any]]:
        """Decide many decision points in one transaction."""
        body = []
        for row in rows:
            p, dp, a, r = row[:4]
            item = {"participant": str(p), "decision_point": _number(dp), "available": bool(a),
                    "reason": r}
            if len(row) > 4 and row[4]:
                item["context"] = dict(row[4])
            body.append(item)
        return self._call("POST", "/decisions", body)

    def record_outcome(self, participant: Any, value: Any, observed_at: Any = None,
                       reason: str | None = None, user: str | None = None,
                       decision_point: Any = None) -> dict[str, Any]:
        """Record one outcome."""
        return self.record_outcomes([{"participant": participant, "value": value,
                                      "observed_at": observed_at, "reason": reason,
                                      "decision_point": decision_point}])[0]

    def record_outcomes(self, items: Iterable[Mapping[str, Any]],
                        user: str | None = None) -> list[dict[str, Any]]:
        """Record many outcomes in one transaction (all or none)."""
        body = []
        for i in items:
            item = {"participant": str(i.get("participant")), "value": _value(i.get("value")),
                    "observed_at": i.get("observed_at"), "reason": i.get("reason")}
            if i.get("decision_point") is not None:
                item["decision_point"] = _number(i["decision_point"])
            body.append(item)
        return self._call("POST", "/outcomes", body)

    def policy_update(self, user: str | None = None) -> dict[str, Any]:
        """Refit an adaptive MRT's policy."""
        return self._call("POST", "/policy-update")

    def policy(self) -> dict[str, Any]:
        """Return an adaptive MRT's policy in force."""
        return self._call("GET", "/policy")

    def schedule(self, participant: Any, decision_points: Any,
                 context: Mapping[str, Any] | None = None,
                 user: str | None = None) -> dict[str, Any]:
        """Decide decision points ahead for an offline participant."""
        return self._call("POST", "/schedule", {"participant": str(participant),
                                                "decision_points": str(decision_points),
                                                "context": dict(context or {})})

    def interim(self, user: str | None = None) -> dict[str, Any]:
        """Run the next interim analysis."""
        return self._call("POST", "/interim")

    def looks(self, key_file: str | None = None) -> list[dict[str, Any]]:
        """Return every interim analysis so far."""
        return self._call("GET", "/looks")

    def mark_error(self, participant: Any, reason: str, user: str | None = None) -> dict:
        """Flag an enrolment as made in error."""
        return self._call("POST", "/mark-error", {"participant": str(participant),
                                                  "reason": reason})

    def unblind(self, participant: Any, reason: str, key_file: str | None = None,
                user: str | None = None) -> dict:
        """Reveal one participant's allocation."""
        return self._call("POST", "/unblind", {"participant": str(participant), "reason": reason})

    def status(self) -> dict[str, Any]:
        """Return the trial's status."""
        return self._call("GET", "/status")

    def export_bytes(self, fmt: str) -> bytes:
        """Return the export, rendered by the server in ``fmt``."""
        status, data = self.connection.request("GET", self._path + "/export", query={"format": fmt})
        if status >= 400:
            raise _error(status, data, self.connection.server)
        return data

    def verify(self, key_file: str | None = None, receipts: Sequence[str] = ()
               ) -> dict[str, Any]:
        """Verify with the server's key (and receipts)."""
        return self._call("POST", "/verify", {"receipts": list(receipts)})

    def checkpoint(self) -> dict[str, Any]:
        """Return a receipt for the current chain head."""
        return self._call("GET", "/checkpoint")

    def upgrade(self, key_file: str | None = None, user: str | None = None) -> dict[str, Any]:
        """Convert a trial created by trialkit 0.1."""
        return self._call("POST", "/upgrade")

    def create_token(self, role: str, sites: Mapping[str, Any] | None = None,
                     expires_days: float | None = None, user: str | None = None
                     ) -> dict[str, Any]:
        """Make an access token for this trial."""
        return self._call("POST", "/tokens", {"role": role, "sites": dict(sites or {}),
                                              "expires_days": expires_days})

    def tokens(self) -> list[dict[str, Any]]:
        """List the trial's tokens."""
        return self._call("GET", "/tokens")

    def revoke_token(self, token_id: str, user: str | None = None) -> dict[str, Any]:
        """Revoke one of this trial's tokens."""
        return self._call("DELETE", f"/tokens/{quote(str(token_id), safe='')}")


def create_remote(connection: Connection, design_path: str, name: str | None) -> dict[str, Any]:
    """Create a trial on the server from a design file (server-wide admin token)."""
    try:
        with open(design_path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"{design_path}: cannot be read ({reason}) — check the path",
                           param="design") from None
    return connection.json("POST", "/v1/trials", {"design": text, "name": name})


def _number(value: Any) -> Any:
    """Return a decision point as sent: an int when it is one, else the text.

    The server checks it.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() else text


__all__ = ["Connection", "RemoteTrial", "create_remote"]


def _value(value: Any) -> Any:
    """Return an outcome value as sent: a number when it is one, else its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None if value is None else str(value)
