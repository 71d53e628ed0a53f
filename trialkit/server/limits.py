"""A request-size limit for the server (pure ASGI middleware, before any parsing).

The body is read here, up to the limit, before the application sees the request: a declared
``Content-Length`` over the limit is refused without reading, and a streamed body is refused as
soon as it passes the limit. Bodies are small (one enrolment, or a batch of decisions), so
buffering them costs nothing.
"""

from __future__ import annotations

import json
from typing import Any


class BodyLimit:
    """Refuse request bodies larger than ``limit`` bytes with a one-line 400 error."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": f"the request body is larger than {self.limit} bytes — send "
                                    "less, or split a batch", "kind": "InvalidInput",
                           "param": None}).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
