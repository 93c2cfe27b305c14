"""The /mcp endpoint: chooses, per POST, between the in-line fast path and the SDK's Streamable HTTP transport."""

from __future__ import annotations

import asyncio
import functools

from mcp.server.transport_security import TransportSecurityMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.server import TandemServer
from tandem.server.sessions import Exchange, current_exchange
from tandem.transports import fast_path

_OWS = (b" ", b"\t")
_TRUSTED_MAX = 256
"""How many accepted (Host, Origin) pairs the endpoint remembers."""


class McpEndpoint:
    """Reads each POST body once, then hands it on.

    - A plain request that wants JSON (any 2026-07-28 request; on a stateless server, any request) takes the fast
      path.
    - On a stateless server, a POST whose body asks for progress goes to ``stream_app`` (a JSON answer has no room
      for notifications).
    - Everything else goes to ``app``, the SDK's transport, with the body replayed.

    A stateless call (and every 2026-07-28 call) has no session to name it in a cancellation, so a client that hangs
    up cancels its call. Header values lose surrounding whitespace first (RFC 9110 5.5): uvicorn's httptools parser
    keeps it, and the SDK compares ``Mcp-Name`` and friends byte for byte.
    """

    def __init__(
        self,
        tandem: TandemServer,
        guard: TransportSecurityMiddleware,
        app: ASGIApp,
        *,
        stream_app: ASGIApp | None,
        max_body: int,
    ) -> None:
        self.tandem = tandem
        self.fast_path = fast_path.FastPath(tandem)
        self.guard = guard
        self._trusted: set[tuple[bytes | None, bytes | None]] = set()
        self.app = app
        self.stream_app = stream_app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope["headers"]
        if any(v[:1] in _OWS or v[-1:] in _OWS for _, v in headers):
            scope = {**scope, "headers": [(k, v.strip(b" \t")) for k, v in headers]}
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_body:
                break  # the SDK's own body limit answers 413 from what it is replayed
        body = b"".join(chunks)
        stateless = self.stream_app is not None
        plan = None if more else self.fast_path.plan(scope, body, stateless=stateless)
        if plan is not None:
            refusal = await self._check_origin(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            app: ASGIApp = functools.partial(fast_path.answer, self.tandem, plan)
        elif self.stream_app is not None and b'"progressToken"' in body:
            app = self.stream_app
        else:
            app = self.app
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]
        if more or (plan is None and not stateless):
            # A session's request: the SDK's transport owns the connection, and a hang-up is no cancellation.

            async def replay_then_receive() -> Message:
                return pending.pop() if pending else await receive()

            await app(scope, replay_then_receive, send)
            return
        disconnected = asyncio.Event()  # asyncio's own, like the watcher task: cheaper than anyio's per request

        async def replay() -> Message:
            if pending:
                return pending.pop()
            await disconnected.wait()  # the watcher below owns the real receive channel
            return {"type": "http.disconnect"}

        exchange = Exchange()
        current_exchange.set(exchange)

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            exchange.cancel()  # cancels the handlers serving this request, wherever they run

        # A bare asyncio task: an anyio task group per request costs more than the rest of a small call.
        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await app(scope, replay, send)
        finally:
            watcher.cancel()

    async def _check_origin(self, scope: Scope) -> Response | None:
        """The SDK's Host / Origin / Content-Type check, remembered for the (Host, Origin) pairs it accepted.

        The fast path has already required a JSON content type, so the check depends on those two headers only.
        """
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host" and host is None:  # the first of each, as the SDK's check reads them
                host = value
            elif name == b"origin" and origin is None:
                origin = value
        if (host, origin) in self._trusted:
            return None
        refusal = await self.guard.validate_request(Request(scope), is_post=True)
        if refusal is None and len(self._trusted) < _TRUSTED_MAX:
            self._trusted.add((host, origin))
        return refusal
