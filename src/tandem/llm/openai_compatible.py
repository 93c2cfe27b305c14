"""A client for the OpenAI chat-completions API as llama.cpp server, Ollama, vLLM and hosted services speak it:
``POST {base_url}/chat/completions``, one non-streamed answer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import httpx2 as httpx

from tandem.core.errors import TandemError
from tandem.core.llm_settings import LlmSettings

ERROR_BODY_CHARS = 300
"""How much of an endpoint's error body an error message quotes."""


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
        """The endpoint's answer to ``messages``; ``LlmError`` when it is unreachable, slow, refuses or answers
        something that is not a chat completion."""
        body = self.request_body(messages, max_tokens)
        headers = self._headers()
        timeout = self.settings.timeout
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
                response = await http.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise LlmError(f"the LLM endpoint {self.url} did not answer within {timeout:g}s (llm.timeout)") from None
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            raise LlmError(
                f"cannot reach the LLM endpoint {self.url} ({detail}); is the server (llama.cpp, Ollama, vLLM) "
                "running, and is llm.base_url right?"
            ) from None
        if response.status_code != 200:
            raise LlmError(self._refusal(response))
        return self._completion(response)

    def _refusal(self, response: httpx.Response) -> str:
        status = response.status_code
        message = _error_message(response)
        text = f"the LLM endpoint {self.url} answered HTTP {status}" + (f": {message}" if message else "")
        if status in (401, 403):
            text += "; check the key in the variable llm.api_key_env names"
        elif status == 404:
            text += f"; check llm.base_url (it usually ends in /v1) and that model {self.settings.model!r} exists"
        return text

    def _completion(self, response: httpx.Response) -> Completion:
        malformed = f"the LLM endpoint {self.url} sent a malformed chat completion"
        try:
            data = response.json()
        except ValueError:
            raise LlmError(f"{malformed}: the body is not JSON ({_quoted(response.text)})") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise LlmError(f"{malformed}: no 'choices' ({_quoted(response.text)})")
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        finish = choices[0].get("finish_reason")
        if not isinstance(content, str):
            raise LlmError(f"{malformed}: choices[0].message.content is not text ({_quoted(response.text)})")
        if not content.strip():
            hint = "; raise llm.max_tokens" if finish == "length" else ""
            raise LlmError(f"the LLM endpoint {self.url} answered with empty text (finish_reason {finish!r}){hint}")
        usage = data.get("usage")
        return Completion(
            text=content.strip(),
            model=str(data.get("model") or self.settings.model),
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage if isinstance(usage, dict) else None,
        )


def _error_message(response: httpx.Response) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return _quoted(response.text)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:ERROR_BODY_CHARS]
    if isinstance(error, str):
        return error[:ERROR_BODY_CHARS]
    return _quoted(response.text)


def _quoted(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + " [...]"
