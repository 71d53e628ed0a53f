"""The randomisation server's HTTP API: an ASGI application built with FastAPI.

FastAPI is used because it derives the OpenAPI schema (``/openapi.json``) and the request
validation (types, unknown fields, non-finite numbers) from the typed request models below, so the
documented contract and the checked one cannot drift apart; it runs on Starlette under uvicorn.

Every handler authenticates the bearer token, checks that its role (and, for a coordinator, its
sites) allows the request, and calls one method of :class:`~trialkit.service.trial.Trial`, so the
server adds no trial logic. Service errors become JSON bodies ``{"error", "kind", "param"}`` with
the one-line message the command line prints: 400 invalid input, 401 no valid token, 403 role or
site not allowed, 404 not found, 409 conflict or tampered store, 503 unavailable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from fastapi import Body, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from trialkit import __version__
from trialkit.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    NotFound,
    ServiceError,
    Tampered,
    Unauthenticated,
)
from trialkit.server.limits import BodyLimit
from trialkit.server.registry import Registry
from trialkit.service import tokens
from trialkit.service.export import FORMATS, MEDIA_TYPES, render_rows

MAX_BODY = 1 << 20
STATUS: list[tuple[type[ServiceError], int]] = [
    (InvalidInput, 400), (Unauthenticated, 401), (AccessDenied, 403), (NotFound, 404),
    (Conflict, 409), (Tampered, 409), (ServiceError, 503)]


class Strict(BaseModel):
    """A request body: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Enrolment(Strict):
    """Enrol one participant."""

    participant: str
    stratum: dict[str, str] = {}


class Decision(Strict):
    """Decide one MRT decision point."""

    participant: str
    #: The decision point number (its decimal text is accepted too, and checked the same way).
    decision_point: int | str
    available: bool
    reason: str | None = None
    #: An adaptive MRT's context at the decision point: variable → number.
    context: dict[str, float | int | str] | None = None


class Outcome(Strict):
    """Record one participant's outcome (a correction needs a reason)."""

    participant: str
    #: 0/1 for a binary outcome, a finite number otherwise (its decimal text is accepted too).
    value: float | str
    observed_at: str | None = None
    reason: str | None = None
    #: The decision point of an adaptive MRT's proximal outcome.
    decision_point: int | str | None = None


class Schedule(Strict):
    """Decide decision points ahead for an offline participant (adaptive MRT)."""

    participant: str
    #: ``"A..B"`` (or one decision point).
    decision_points: str | int
    context: dict[str, float | int | str] = {}


class Reasoned(Strict):
    """An action on one participant that needs a reason (unblind, mark in error)."""

    participant: str
    reason: str


class Receipts(Strict):
    """Receipts the store must still contain."""

    receipts: list[str] = []


class NewTrial(Strict):
    """A trial to create from a design file's text."""

    design: str
    name: str | None = None


class NewToken(Strict):
    """An access token to make."""

    role: str
    sites: dict[str, list[str]] = {}
    expires_days: float | None = None


def error_body(exc: ServiceError) -> JSONResponse:
    """Return the response for a service error."""
    status = next(code for cls, code in STATUS if isinstance(exc, cls))
    return JSONResponse({"error": str(exc), "kind": type(exc).__name__, "param": exc.param},
                        status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON — send a JSON object"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    return f"{where}: {first.get('msg', 'is invalid')} — fix the request"


def create_app(db: str | None = None, key_dir: str | None = None,
               lock_timeout: float | None = None, max_body: int = MAX_BODY) -> FastAPI:
    """Build the server application for the store at ``db`` (default ``$TRIALKIT_DB``).

    ``key_dir`` (default ``$TRIALKIT_KEY_DIR``) is the server's key folder: where it writes the
    keys of trials it creates, and its server key (for server-wide admin tokens).
    """
    from trialkit.service.store import default_lock_timeout, resolve_url

    db = resolve_url(db)
    key_dir = key_dir or os.environ.get("TRIALKIT_KEY_DIR") or None
    registry = Registry(db, key_dir, lock_timeout or default_lock_timeout())
    app = FastAPI(title="trialkit randomisation server", version=__version__,
                  docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, limit=max_body)
    app.state.registry = registry
    _handlers(app)
    _routes(app, registry)
    _quiet_garbage_collector()
    return app


def _quiet_garbage_collector() -> None:
    """Keep garbage-collection pauses out of request latency.

    Everything loaded at start-up is moved out of the collector's sight (``gc.freeze``), and full
    collections run ten times less often: a request makes few long-lived objects, so this costs
    little memory, while each full collection would otherwise stall every waiting request.
    """
    import gc

    gc.collect()
    gc.freeze()
    first, second, third = gc.get_threshold()
    gc.set_threshold(first * 10, second, third * 10)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_body(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_body(InvalidInput(_validation_message(exc)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{exc.detail} — see /openapi.json for the API",
                             "kind": "HTTPError", "param": None}, status_code=exc.status_code)


def _one_or_all(results: list[Any], single: bool) -> Any:
    return results[0] if single else results


def _guarded(registry: Registry, name: str, call: Callable[[Any], Any]) -> Any:
    """Run ``call(trial)`` on this thread's trial ``name``; drop the connection if it broke."""
    trial = registry.trial(name)
    try:
        return call(trial)
    except ServiceError:
        raise
    except Exception:
        registry.forget(name)
        raise


class _Api:
    """Give every route token checks, reads on this thread's trial and group-committed writes."""

    auth = Header(default=None, alias="Authorization", include_in_schema=False)

    def __init__(self, registry: Registry):
        self.registry = registry

    def allowed(self, header: str | None, action: str, trial: str | None) -> tokens.Token:
        """Return the caller's token if it may take ``action`` on ``trial``."""
        token = self.registry.principal(header)
        tokens.allow(token, action, trial)
        return token

    async def allowed_async(self, header: str | None, action: str, trial: str) -> tokens.Token:
        """Return the caller's token if it may take ``action`` (a look-up off the event loop)."""
        token = self.registry.cached_principal(header)
        if token is None:  # a database look-up: off the event loop
            token = await run_in_threadpool(self.registry.principal, header)
        tokens.allow(token, action, trial)
        return token

    async def write(self, trial: str, call: Callable[[Any], Any],
                    status: int = 200) -> JSONResponse:
        """Run ``call(trial)`` in the trial's next group commit; return its JSON."""
        writer = await run_in_threadpool(self.registry.writer, trial)
        return JSONResponse(await asyncio.wrap_future(writer.submit(call)), status_code=status)

    def read(self, trial: str, call: Callable[[Any], Any]) -> JSONResponse:
        """Run ``call(trial)`` on this thread's trial; return its JSON."""
        return JSONResponse(_guarded(self.registry, trial, call))


def _routes(app: FastAPI, registry: Registry) -> None:
    api = _Api(registry)
    _write_routes(app, api)
    _adaptive_routes(app, api)
    _read_routes(app, api)
    _token_routes(app, api)


def _write_routes(app: FastAPI, api: _Api) -> None:
    auth = api.auth

    @app.post("/v1/trials", status_code=201)
    def create(body: NewTrial, authorization: str | None = auth) -> JSONResponse:
        """Create a trial from a design file's text (server-wide admin token)."""
        from trialkit.server.actions import create_trial

        token = api.allowed(authorization, "create", None)
        return JSONResponse(create_trial(api.registry, body.design, body.name, token.principal()),
                            status_code=201)

    @app.post("/v1/trials/{trial}/participants")
    async def enrol(trial: str, body: Enrolment,
                    authorization: str | None = auth) -> JSONResponse:
        """Enrol one participant (coordinator); repeating returns the original allocation."""
        token = await api.allowed_async(authorization, "enrol", trial)
        tokens.allow_strata(token, body.stratum)
        return await api.write(trial, lambda t: t.enrol(body.participant, body.stratum,
                                                    token.principal()))

    @app.get("/v1/trials/{trial}/participants/{participant}")
    def participant(trial: str, participant: str,
                    authorization: str | None = auth) -> JSONResponse:
        """One of the coordinator's participants, as enrolment returned it."""
        token = api.allowed(authorization, "participant", trial)
        result = _guarded(api.registry, trial, lambda t: t.participant(participant))
        tokens.allow_strata(token, result["stratum"])
        return JSONResponse(result)

    @app.post("/v1/trials/{trial}/decisions")
    async def decide(trial: str, body: Decision | list[Decision] = Body(...),
                     authorization: str | None = auth) -> JSONResponse:
        """Decide one decision point, or a list of them in one transaction (app)."""
        token = await api.allowed_async(authorization, "decide", trial)
        rows = body if isinstance(body, list) else [body]
        single = not isinstance(body, list)
        return await api.write(trial, lambda t: _one_or_all(t.decide_many(
            [(d.participant, d.decision_point, d.available, d.reason, d.context) for d in rows],
            token.principal()), single))

    @app.post("/v1/trials/{trial}/mark-error")
    async def mark_error(trial: str, body: Reasoned,
                         authorization: str | None = auth) -> JSONResponse:
        """Flag one of the coordinator's enrolments as made in error."""
        token = await api.allowed_async(authorization, "mark_error", trial)

        def call(t: Any) -> dict[str, Any]:
            tokens.allow_strata(token, t.participant(body.participant)["stratum"])
            return t.mark_error(body.participant, body.reason, token.principal())

        return await api.write(trial, call)

    @app.post("/v1/trials/{trial}/unblind")
    async def unblind(trial: str, body: Reasoned,
                      authorization: str | None = auth) -> JSONResponse:
        """Reveal one participant's allocation, with a reason (unblinder)."""
        token = await api.allowed_async(authorization, "unblind", trial)
        return await api.write(trial, lambda t: t.unblind(body.participant, body.reason,
                                                      user=token.principal()))


def _adaptive_routes(app: FastAPI, api: _Api) -> None:
    auth = api.auth

    @app.post("/v1/trials/{trial}/outcomes")
    async def outcomes(trial: str, body: Outcome | list[Outcome] = Body(...),
                       authorization: str | None = auth) -> JSONResponse:
        """Record outcomes (app, or a coordinator for its own participants), all or none."""
        token = await api.allowed_async(authorization, "outcome", trial)
        items = body if isinstance(body, list) else [body]
        single = not isinstance(body, list)

        def call(t: Any) -> Any:
            if token.site_limits:
                for item in items:
                    tokens.allow_strata(token, t.participant(item.participant)["stratum"])
            return _one_or_all(t.record_outcomes([i.model_dump(exclude_none=True)
                                                  for i in items],
                                                 token.principal()), single)

        return await api.write(trial, call)

    @app.post("/v1/trials/{trial}/interim")
    async def interim(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Run the next interim analysis when it is due, and apply it (statistician)."""
        token = await api.allowed_async(authorization, "interim", trial)
        return await api.write(trial, lambda t: t.interim(token.principal()))

    @app.post("/v1/trials/{trial}/policy-update")
    async def policy_update(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Refit an adaptive MRT's policy on the outcomes so far and log it (statistician)."""
        token = await api.allowed_async(authorization, "policy_update", trial)
        return await api.write(trial, lambda t: t.policy_update(token.principal()))

    @app.get("/v1/trials/{trial}/policy")
    def policy(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Return an adaptive MRT's policy in force and its updates (statistician, auditor)."""
        api.allowed(authorization, "policy", trial)
        return api.read(trial, lambda t: t.policy())

    @app.post("/v1/trials/{trial}/schedule")
    async def schedule(trial: str, body: Schedule,
                       authorization: str | None = auth) -> JSONResponse:
        """Decide decision points ahead for an offline participant (app, coordinator)."""
        token = await api.allowed_async(authorization, "schedule", trial)
        return await api.write(trial, lambda t: t.schedule(
            body.participant, body.decision_points, body.context, token.principal()))

    @app.get("/v1/trials/{trial}/looks")
    def looks(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Return every interim analysis so far (statistician, auditor)."""
        api.allowed(authorization, "looks", trial)
        return api.read(trial, lambda t: t.looks())


def _read_routes(app: FastAPI, api: _Api) -> None:
    auth = api.auth

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness: the server answers and its store is reachable."""
        api.registry.store().trial_names()
        return JSONResponse({"ok": True, "version": __version__})

    @app.get("/v1/trials/{trial}/status")
    def status(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Return counts, CONSORT counts and predictability (statistician)."""
        api.allowed(authorization, "status", trial)
        return api.read(trial, lambda t: t.status())

    @app.get("/v1/trials/{trial}/export")
    def export(trial: str, format: str = Query("csv"),
               authorization: str | None = auth) -> Response:
        """Analysis-ready rows as csv, json or parquet (statistician; a blinded trial's codes)."""
        api.allowed(authorization, "export", trial)
        if format not in FORMATS:
            raise InvalidInput(f"format {format[:40]!r} is unknown — use one of: "
                               f"{', '.join(FORMATS)}", param="format")
        data = _guarded(api.registry, trial, lambda t: render_rows(t.export(), format,
                                                               t.export_columns()))
        return Response(data, media_type=MEDIA_TYPES[format])

    @app.get("/v1/trials/{trial}/verify")
    def verify(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Verify everything with the key (auditor)."""
        api.allowed(authorization, "verify", trial)
        return api.read(trial, lambda t: t.verify())

    @app.post("/v1/trials/{trial}/verify")
    def verify_receipts(trial: str, body: Receipts,
                        authorization: str | None = auth) -> JSONResponse:
        """Verify everything with the key, and that the store still holds these receipts."""
        api.allowed(authorization, "verify", trial)
        return api.read(trial, lambda t: t.verify(receipts=body.receipts))

    @app.get("/v1/trials/{trial}/checkpoint")
    def checkpoint(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Return a receipt for the current chain head (auditor)."""
        api.allowed(authorization, "checkpoint", trial)
        return api.read(trial, lambda t: t.checkpoint())

    @app.get("/v1/trials/{trial}/audit")
    def audit(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Return the audit log (auditor)."""
        api.allowed(authorization, "audit", trial)
        return api.read(trial, lambda t: t.audit_log())

    @app.post("/v1/trials/{trial}/upgrade")
    def upgrade(trial: str, authorization: str | None = auth) -> JSONResponse:
        """Convert a trial created by trialkit 0.1 to the keyed audit chain (admin)."""
        token = api.allowed(authorization, "upgrade", trial)
        return api.read(trial, lambda t: t.upgrade(user=token.principal()))


def _token_routes(app: FastAPI, api: _Api) -> None:
    auth = api.auth

    @app.post("/v1/trials/{trial}/tokens", status_code=201)
    async def create_token(trial: str, body: NewToken,
                           authorization: str | None = auth) -> JSONResponse:
        """Make an access token for the trial; its string is shown once (admin)."""
        token = await api.allowed_async(authorization, "tokens", trial)
        return await api.write(trial, lambda t: t.create_token(
            body.role, body.sites, body.expires_days, token.principal()), status=201)

    @app.get("/v1/trials/{trial}/tokens")
    def list_tokens(trial: str, authorization: str | None = auth) -> JSONResponse:
        """List the trial's tokens, without secrets (admin)."""
        api.allowed(authorization, "tokens", trial)
        return api.read(trial, lambda t: t.tokens())

    @app.delete("/v1/trials/{trial}/tokens/{token_id}")
    async def revoke_token(trial: str, token_id: str,
                           authorization: str | None = auth) -> JSONResponse:
        """Revoke one of the trial's tokens (admin)."""
        token = await api.allowed_async(authorization, "tokens", trial)
        return await api.write(trial, lambda t: t.revoke_token(token_id, token.principal()))
