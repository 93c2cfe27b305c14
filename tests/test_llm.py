"""tandem.llm against a real HTTP server on a real port that speaks the OpenAI chat-completions wire format (the
fake stands in for llama.cpp server, Ollama, vLLM or a hosted API)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tandem import workspace_trust
from tandem.config import load_settings
from tandem.core import ConfigError
from tandem.core.llm_settings import LlmSettings
from tandem.llm import ChatClient, ChatMessage, LlmError

pytestmark = pytest.mark.anyio


def completion(text: str, model: str = "served-model") -> dict[str, Any]:
    """A chat completion as the OpenAI API and its compatible servers send it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ChatServer:
    """POST /v1/chat/completions on 127.0.0.1: records each request and answers with ``status`` and ``reply``
    (a dict sent as JSON, or raw bytes), after ``delay`` seconds."""

    status: int = 200
    reply: dict[str, Any] | bytes = field(default_factory=lambda: completion("an answer"))
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def serve(self) -> Iterator[ChatServer]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(owner.delay)
                data = owner.reply if isinstance(owner.reply, bytes) else json.dumps(owner.reply).encode()
                try:
                    self.send_response(owner.status if self.path == "/v1/chat/completions" else 404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    yield from ChatServer().serve()


def closed_port_url() -> str:
    """The URL of a port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


MESSAGES = [ChatMessage("system", "You are terse."), ChatMessage("user", "Say hi.")]


async def test_a_completion_sends_the_openai_request_and_returns_the_text(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_API_KEY", "sk-test-123")
    settings = LlmSettings(
        base_url=chat_server.url + "/", model="qwen2.5-coder", api_key_env="TEST_LLM_API_KEY", max_tokens=300
    )
    answer = await ChatClient(settings).complete(MESSAGES)
    assert answer.text == "an answer"
    assert answer.model == "served-model"
    assert answer.usage == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    (request,) = chat_server.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    assert request.body == {
        "model": "qwen2.5-coder",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi."}],
        "max_tokens": 300,
        "stream": False,
        "temperature": 0.2,
    }


async def test_no_key_variable_sends_no_authorization(chat_server: ChatServer) -> None:
    await ChatClient(LlmSettings(base_url=chat_server.url, model="m", temperature=None)).complete(MESSAGES)
    (request,) = chat_server.received
    assert "authorization" not in request.headers
    assert "temperature" not in request.body


async def test_an_unset_key_variable_is_named(chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_LLM_MISSING_API_KEY", raising=False)
    settings = LlmSettings(base_url=chat_server.url, model="m", api_key_env="TEST_LLM_MISSING_API_KEY")
    with pytest.raises(LlmError, match="TEST_LLM_MISSING_API_KEY, but that environment variable is not set"):
        await ChatClient(settings).complete(MESSAGES)
    assert chat_server.received == []


async def test_an_http_error_quotes_the_endpoints_message(chat_server: ChatServer) -> None:
    chat_server.status = 400
    chat_server.reply = {"error": {"message": "model 'nope' not found", "type": "invalid_request_error"}}
    with pytest.raises(LlmError, match=r"answered HTTP 400: model 'nope' not found"):
        await ChatClient(LlmSettings(base_url=chat_server.url, model="nope")).complete(MESSAGES)


async def test_a_refused_key_says_where_the_key_comes_from(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_API_KEY", "wrong")
    chat_server.status = 401
    chat_server.reply = {"error": {"message": "Incorrect API key provided"}}
    settings = LlmSettings(base_url=chat_server.url, model="m", api_key_env="TEST_LLM_API_KEY")
    with pytest.raises(LlmError, match=r"HTTP 401: Incorrect API key provided; check the key"):
        await ChatClient(settings).complete(MESSAGES)


async def test_a_wrong_base_url_is_pointed_out(chat_server: ChatServer) -> None:
    settings = LlmSettings(base_url=chat_server.url.removesuffix("/v1"), model="m")
    with pytest.raises(LlmError, match=r"HTTP 404.*check llm.base_url \(it usually ends in /v1\)"):
        await ChatClient(settings).complete(MESSAGES)


async def test_a_slow_endpoint_times_out_with_the_setting_named(chat_server: ChatServer) -> None:
    chat_server.delay = 2.0
    settings = LlmSettings(base_url=chat_server.url, model="m", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(LlmError, match=r"did not answer within 0.3s \(llm.timeout\)"):
        await ChatClient(settings).complete(MESSAGES)
    assert time.monotonic() - started < 1.5


async def test_an_endpoint_that_is_down_is_reported() -> None:
    url = closed_port_url()
    with pytest.raises(LlmError, match=r"cannot reach the LLM endpoint .*is the server .* running"):
        await ChatClient(LlmSettings(base_url=url, model="m")).complete(MESSAGES)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"<html>502 Bad Gateway</html>", "the body is not JSON"),
        ({"object": "chat.completion", "choices": []}, "no 'choices'"),
        (
            {"choices": [{"message": {"role": "assistant", "content": None}}]},
            r"choices\[0\].message.content is not text",
        ),
    ],
)
async def test_a_malformed_reply_is_an_error(chat_server: ChatServer, reply: Any, expected: str) -> None:
    chat_server.reply = reply
    with pytest.raises(LlmError, match=f"malformed chat completion: {expected}"):
        await ChatClient(LlmSettings(base_url=chat_server.url, model="m")).complete(MESSAGES)


async def test_an_empty_answer_cut_by_the_token_limit_says_so(chat_server: ChatServer) -> None:
    chat_server.reply = {"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "length"}]}
    with pytest.raises(LlmError, match=r"empty text.*raise llm\.max_tokens"):
        await ChatClient(LlmSettings(base_url=chat_server.url, model="m")).complete(MESSAGES)


def test_llm_settings_come_from_tandem_toml(tmp_path: Path) -> None:
    (tmp_path / "tandem.toml").write_text(
        '[llm]\nbase_url = "http://127.0.0.1:11434/v1"\nmodel = "llama3.2"\napi_key_env = "OLLAMA_API_KEY"\n'
        "timeout = 30\nmax_tokens = 512\ntemperature = 0.7\n"
    )
    with pytest.raises(ConfigError, match=r"sets llm: .*'tandem trust'"):
        load_settings(tmp_path)  # the endpoint and its key are read only from a file the user trusts
    workspace_trust.trust(tmp_path.resolve(), (tmp_path / "tandem.toml").read_bytes())
    llm = load_settings(tmp_path).llm
    assert (llm.base_url, llm.model, llm.api_key_env, llm.timeout, llm.max_tokens, llm.temperature) == (
        "http://127.0.0.1:11434/v1",
        "llama3.2",
        "OLLAMA_API_KEY",
        30.0,
        512,
        0.7,
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"base_url": "http://127.0.0.1:8080/v1"}, "llm.model must name the model"),
        ({"base_url": "ftp://host/v1", "model": "m"}, "must be an http:// or https:// URL"),
        ({"base_url": "http://h/v1", "model": "m", "api_key_env": "sk-live-abc123"}, "not the key itself"),
    ],
)
def test_bad_llm_settings_are_refused_at_startup(tmp_path: Path, table: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(tmp_path, llm=table)


async def test_without_an_endpoint_there_is_no_client() -> None:
    with pytest.raises(LlmError, match=r"set llm\.base_url and llm\.model"):
        ChatClient(LlmSettings())


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "DATABASE_PASSWORD", "OPENAI_KEY"])
def test_a_cloned_tandem_toml_cannot_send_another_secret_as_the_key(tmp_path: Path, name: str) -> None:
    (tmp_path / "tandem.toml").write_text(
        f'[llm]\nbase_url = "http://203.0.113.9:8080/v1"\nmodel = "m"\napi_key_env = "{name}"\n'
    )
    with pytest.raises(ConfigError, match=r"'tandem trust'"):
        load_settings(tmp_path)
    # Even once the file is trusted (a user who did not read it closely), no other secret is sent as the key.
    workspace_trust.trust(tmp_path.resolve(), (tmp_path / "tandem.toml").read_bytes())
    with pytest.raises(ConfigError, match=r"llm.api_key_env: .*must name a variable ending in API_KEY"):
        load_settings(tmp_path)


def test_conventional_api_key_variables_are_accepted(tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "TANDEM_LLM_API_KEY", "groq_api_key"):
        assert LlmSettings(base_url="http://127.0.0.1:1/v1", model="m", api_key_env=name).api_key_env == name


async def test_credentials_in_base_url_never_show_in_an_error(chat_server: ChatServer) -> None:
    chat_server.status = 401
    chat_server.reply = {"error": {"message": "Incorrect API key provided"}}
    with_user = chat_server.url.replace("http://", "http://alice:s3cretpw@")
    with pytest.raises(LlmError) as refused:
        await ChatClient(LlmSettings(base_url=with_user, model="m")).complete(MESSAGES)
    assert f"the LLM endpoint {chat_server.url}/chat/completions answered HTTP 401" in str(refused.value)
    down = closed_port_url()
    with pytest.raises(LlmError) as unreachable:
        await ChatClient(
            LlmSettings(base_url=down.replace("//", "//alice:s3cretpw@") + "?k=q-secret", model="m")
        ).complete(MESSAGES)
    for message in (str(refused.value), str(unreachable.value)):
        assert "s3cretpw" not in message and "alice" not in message and "q-secret" not in message
    assert str(unreachable.value).startswith(f"cannot reach the LLM endpoint {down} (")


@contextlib.contextmanager
def dripping_server(body: bytes, every: float) -> Iterator[str]:
    """A chat endpoint that sends its headers at once, then its body 8 bytes at a time, ``every`` seconds apart:
    each read is quick, the whole answer is slow."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            conn.sendall(head.encode())
            for start in range(0, len(body), 8):
                if stop.wait(every):
                    return
                try:
                    conn.sendall(body[start : start + 8])
                except OSError:  # the client gave up
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


async def test_the_timeout_bounds_the_whole_answer_of_a_dripping_endpoint() -> None:
    body = json.dumps(completion("ok")).encode()
    with dripping_server(body, every=0.2) as url:  # about 7 s for the whole body, each read well under a second
        started = time.monotonic()
        with pytest.raises(LlmError, match=r"did not answer within 1s \(llm.timeout\)"):
            await ChatClient(LlmSettings(base_url=url, model="m", timeout=1)).complete(MESSAGES)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5


async def test_an_oversized_answer_is_refused(chat_server: ChatServer) -> None:
    chat_server.reply = b'{"choices": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    with pytest.raises(LlmError, match=r"sent more than 4,194,304 bytes; a chat completion is far smaller"):
        await ChatClient(LlmSettings(base_url=chat_server.url, model="m")).complete(MESSAGES)
