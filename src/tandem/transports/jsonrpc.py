"""The plain JSON-RPC 2.0 API on ``POST /``: the tools that name an ``rpc`` method, called by that name with their
arguments as ``params``, answered with their structured result.

Calls go through ``TandemServer.call_tool_directly``, so the interceptor chain (logging, timing, policy) sees them
as it sees every MCP call. Bad params are answered with -32602 and a ``validation_errors`` list; a failure inside
a tool with a generic message (the details go to the server log).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tandem.server import TandemServer
from tandem.transports.fast_path import DEFAULT_VERSION, _Exchange

logger = logging.getLogger("tandem.transports.jsonrpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TOOL_ERROR = -32000
"""A tool refused or failed in a way it explains (no such agent, ...): the message is the tool's own."""
MAX_BATCH = 100


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


class JsonRpcApi:
    def __init__(self, tandem: TandemServer) -> None:
        self.tandem = tandem

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return JSONResponse(_error(None, PARSE_ERROR, "Parse error"))
        if isinstance(message, list):
            if not message or len(message) > MAX_BATCH:
                return JSONResponse(_error(None, INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} requests"))
            answers = [a for m in message if (a := await self.answer(m, request)) is not None]
            return JSONResponse(answers) if answers else Response(status_code=204)
        answer = await self.answer(message, request)
        return JSONResponse(answer) if answer is not None else Response(status_code=204)

    async def call(self, method: str, params: dict[str, Any], request: Request) -> dict[str, Any]:
        """One method's answer (a full JSON-RPC response object, id null)."""
        answer = await self.answer({"jsonrpc": "2.0", "method": method, "params": params, "id": None}, request)
        assert answer is not None
        return answer

    async def answer(self, message: Any, request: Request) -> dict[str, Any] | None:
        """The response to one request object; ``None`` for a notification (no ``id``)."""
        shaped = isinstance(message, dict) and message.get("jsonrpc") == "2.0"
        if not shaped or not isinstance(message.get("method"), str):
            return _error(None, INVALID_REQUEST, "Invalid Request: expected {jsonrpc: '2.0', method, params?, id?}")
        notification = "id" not in message
        request_id = message.get("id")
        if isinstance(request_id, bool) or not (request_id is None or isinstance(request_id, str | int)):
            return _error(None, INVALID_REQUEST, "Invalid Request: id must be a string, a number or null")
        response = await self._dispatch(message["method"], message.get("params"), request_id, request)
        return None if notification else response

    async def _dispatch(self, method: str, params: Any, request_id: Any, request: Request) -> dict[str, Any]:
        tool = self.tandem.registry.rpc_methods.get(method)
        if tool is None:
            known = ", ".join(sorted(self.tandem.registry.rpc_methods))
            return _error(request_id, METHOD_NOT_FOUND, "Method not found", {"method": method, "known": known})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            problems = ["params: expected an object of named parameters"]
            return _error(request_id, INVALID_PARAMS, "Invalid params", {"validation_errors": problems})
        try:
            tool.signature.arguments.model_validate(params)
        except ValidationError as exc:
            problems = [_problem(e) for e in exc.errors(include_url=False, include_input=False)]
            logger.info("%s: invalid params: %s", method, problems)
            return _error(request_id, INVALID_PARAMS, "Invalid params", {"validation_errors": problems})
        exchange = _Exchange(
            transport=TransportContext(kind="jsonrpc", can_send_request=False, headers=request.headers),
            request_id=request_id if request_id is not None else 0,
            message_metadata=ServerMessageMetadata(request_context=request, can_send_request=False),
        )
        try:
            result = await self.tandem.call_tool_directly(
                exchange,
                Connection.from_envelope(DEFAULT_VERSION, None, None),
                {"name": tool.name, "arguments": params},
                request,
            )
        except MCPError as exc:
            return _error(request_id, exc.error.code, exc.error.message)
        except Exception:
            logger.exception("JSON-RPC %s failed", method)
            return _error(request_id, INTERNAL_ERROR, "Internal error")
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")
            return _error(request_id, TOOL_ERROR, text or "the call failed")
        structured = result.get("structuredContent")
        if structured is None:
            texts = [c.get("text", "") for c in result.get("content", []) if c.get("type") == "text"]
            structured = {"text": "\n".join(texts)}
        return {"jsonrpc": "2.0", "result": structured, "id": request_id}


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "params"
    return f"{where}: {error.get('msg', 'invalid')}"
