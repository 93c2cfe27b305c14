"""A client for the OpenAI chat-completions API as llama.cpp server, Ollama, vLLM and hosted services speak it:
``POST {base_url}/chat/completions``, one non-streamed answer, within ``llm.timeout`` in all and at most
``MAX_RESPONSE_BYTES`` of body. Messages name the endpoint as scheme://host:port/path only: ``base_url`` may carry
credentials (``user:password@``, ``?key=``) that must not reach the client."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx2 as httpx

from tandem.core.errors import TandemError
from tandem.core.llm_settings import LlmSettings

ERROR_BODY_CHARS = 300
"""How much of an endpoint's error body an error message quotes."""
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""The most body an answer may have: a chat completion of max_tokens tokens is far smaller; more is a wrong URL or
a misbehaving server, and is not held in memory."""


class LlmError(TandemError):
    """The endpoint gave no usable answer; the message says what went wrong and what to check."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    """The model the endpoint says answered (it may differ from the one asked for)."""
    finish_reason: str | None
    usage: dict[str, Any] | None


class ChatClient:
    """Chat completions from the ``[llm]`` endpoint; the API key is read from its environment variable per call, so
    it is never held in the settings."""

    def __init__(self, settings: LlmSettings) -> None:
        if settings.base_url is None or not settings.model:
            raise LlmError("no LLM endpoint is configured: set llm.base_url and llm.model in tandem.toml")
        self.settings = settings
        self.url = f"{settings.base_url}/chat/completions"
        self.shown = shown_url(self.url)
        try:
            self.host = httpx.URL(self.url).host
        except httpx.InvalidURL as exc:
            raise LlmError(f"llm.base_url {self.shown} is not a valid URL ({exc}); fix it in tandem.toml") from None
        self.key_sent_to: str | None = None
        """The host the API key is sent to, when that is not this machine (set by ``complete``)."""

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        name = self.settings.api_key_env
        if name is not None:
            key = os.environ.get(name, "").strip()
            if not key:
                raise LlmError(f"llm.api_key_env names {name}, but that environment variable is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request_body(self, messages: list[ChatMessage], max_tokens: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens or self.settings.max_tokens,
            "stream": False,
        }
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        return body

    async def complete(self, messages: list[ChatMessage], *, max_tokens: int | None = None) -> Completion:
        """The endpoint's answer to ``messages``; ``LlmError`` when it is unreachable, slower than ``llm.timeout``
        (the whole answer, however slowly it trickles in), refuses, or answers something that is not a chat
        completion or is over ``MAX_RESPONSE_BYTES``."""
        body = self.request_body(messages, max_tokens)
        headers = self._headers()
        timeout = self.settings.timeout
        if "Authorization" in headers and not _is_loopback(self.host):
            self.key_sent_to = self.host
        too_slow = f"the LLM endpoint {self.shown} did not answer within {timeout:g}s (llm.timeout)"
        try:
            with anyio.fail_after(timeout):
                async with (
                    httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http,
                    http.stream("POST", self.url, json=body, headers=headers) as response,
                ):
                    data = await self._body(response)
        except (TimeoutError, httpx.TimeoutException):
            raise LlmError(too_slow) from None
        except httpx.HTTPError as exc:
            detail = (str(exc) or type(exc).__name__).replace(self.url, self.shown)
            raise LlmError(
                f"cannot reach the LLM endpoint {self.shown} ({detail}); is the server (llama.cpp, Ollama, vLLM) "
                "running, and is llm.base_url right?"
            ) from None
        if response.status_code != 200:
            raise LlmError(self._refusal(response.status_code, data))
        return self._completion(data)

    async def _body(self, response: httpx.Response) -> bytes:
        """The response body, refused once it passes ``MAX_RESPONSE_BYTES`` (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise LlmError(
                    f"the LLM endpoint {self.shown} sent more than {MAX_RESPONSE_BYTES:,} bytes; a chat completion "
                    "is far smaller: check llm.base_url"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _refusal(self, status: int, data: bytes) -> str:
        message = _error_message(data)
        text = f"the LLM endpoint {self.shown} answered HTTP {status}" + (f": {message}" if message else "")
        if status in (401, 403):
            text += "; check the key in the variable llm.api_key_env names"
        elif status == 404:
            text += f"; check llm.base_url (it usually ends in /v1) and that model {self.settings.model!r} exists"
        return text

    def _completion(self, body: bytes) -> Completion:
        malformed = f"the LLM endpoint {self.shown} sent a malformed chat completion"
        try:
            data = json.loads(body)
        except ValueError:
            raise LlmError(f"{malformed}: the body is not JSON ({_quoted(body)})") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise LlmError(f"{malformed}: no 'choices' ({_quoted(body)})")
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        finish = choices[0].get("finish_reason")
        if not isinstance(content, str):
            raise LlmError(f"{malformed}: choices[0].message.content is not text ({_quoted(body)})")
        if not content.strip():
            hint = "; raise llm.max_tokens" if finish == "length" else ""
            raise LlmError(f"the LLM endpoint {self.shown} answered with empty text (finish_reason {finish!r}){hint}")
        usage = data.get("usage")
        return Completion(
            text=content.strip(),
            model=str(data.get("model") or self.settings.model),
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage if isinstance(usage, dict) else None,
        )


def shown_url(url: str) -> str:
    """``url`` as messages may show it: scheme://host:port/path, without user, password, query or fragment."""
    try:
        parsed = httpx.URL(url)
        return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"
    except (httpx.InvalidURL, UnicodeDecodeError):
        return re.sub(r"^(\w+://)[^/@]*@", r"\1", url).split("?", 1)[0].split("#", 1)[0]


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_message(body: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return _quoted(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:ERROR_BODY_CHARS]
    if isinstance(error, str):
        return error[:ERROR_BODY_CHARS]
    return _quoted(body)


def _quoted(body: bytes) -> str:
    text = " ".join(body[: ERROR_BODY_CHARS * 4].decode("utf-8", "replace").split())
    return text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + " [...]"
