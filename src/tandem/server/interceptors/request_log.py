"""Structured request logging: one JSON line per exchange, tied together by a correlation id."""

from __future__ import annotations

import json
import logging
import time

from tandem.server.interceptors.chain import CallNext, Message

logger = logging.getLogger("tandem.requests")


class RequestLogInterceptor:
    """Logs each inbound request with its outcome and duration, and each notification either way."""

    name = "request-log"

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log

    async def __call__(self, message: Message, call_next: CallNext) -> Message | None:
        if not self._log.isEnabledFor(logging.INFO):
            return await call_next(message)
        started = time.perf_counter()
        record = {
            "correlation_id": message.correlation_id,
            "direction": message.direction,
            "kind": message.kind,
            "method": message.method,
            "transport": message.transport,
            "session": message.session_id,
        }
        if message.kind == "request":
            record["id"] = message.id
            if message.method == "tools/call" and message.params:
                record["tool"] = message.params.get("name")
        try:
            response = await call_next(message)
        except BaseException as exc:
            record.update(outcome="raised", error=type(exc).__name__, ms=_ms(started))
            self._log.info(json.dumps(record, default=str))
            raise
        if response is not None and response.kind == "response":
            if response.error is not None:
                record.update(outcome="error", code=response.error.get("code"))
            elif response.result is not None and response.result.get("isError"):
                record.update(outcome="tool-error")
            else:
                record.update(outcome="ok")
        record["ms"] = _ms(started)
        self._log.info(json.dumps(record, default=str))
        return response


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
