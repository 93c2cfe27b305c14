"""The specialists toolset through a real MCP client: personas as prompts (shipped and the project's), the choice of
persona by relevance, and the three ways a consultation is answered (the client's sampling, an OpenAI-compatible
endpoint on a real port, or the assembled prompt handed back)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tandem.config import Settings, load_settings
from tandem.core import ConfigError, Registry
from tandem.server import TandemServer
from tests.test_llm import ChatServer, closed_port_url, completion
from tests.toolsets.calls import call, refused, serving

pytestmark = pytest.mark.anyio

SHIPPED = {"architect", "devops", "platform_expert", "qa", "security", "sre"}


@contextlib.asynccontextmanager
async def serving_with(workspace: Path, client: dict[str, Any], **settings: Any) -> AsyncIterator[Client]:
    """Like ``serving``, with options for the client (a sampling callback)."""
    loaded = load_settings(workspace, toolsets=["specialists"], **settings)
    tandem = TandemServer(Registry.from_entry_points(loaded.toolsets), loaded)
    async with Client(tandem.server, mode="legacy", **client) as connected:
        yield connected


class Sampler:
    """A client's sampling: records each request and answers (or refuses, when ``refuse`` is set)."""

    def __init__(
        self, answer: str = "Rotate the certificate with cert-manager.", refuse: str | None = None, delay: float = 0
    ) -> None:
        self.answer = answer
        self.refuse = refuse
        self.delay = delay
        self.requests: list[types.CreateMessageRequestParams] = []

    async def __call__(
        self, context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        self.requests.append(params)
        await anyio.sleep(self.delay)
        if self.refuse is not None:
            return types.ErrorData(code=-1, message=self.refuse)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(text=self.answer), model="client-model"
        )


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    yield from ChatServer(reply=completion("Add a 99.9% availability SLO.")).serve()


def persona_file(workspace: Path, name: str, text: str) -> Path:
    folder = workspace / ".tandem" / "specialists"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(text)
    return path


def shipped_instructions(name: str) -> str:
    from tandem.toolsets.specialists.personas import shipped

    return shipped().by_name[name].instructions


async def test_the_client_model_answers_through_sampling(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("ssl_protocols TLSv1 TLSv1.1;\n")
    sampler = Sampler()
    async with serving_with(tmp_path, {"sampling_callback": sampler}) as client:
        result = await call(
            client,
            "consult_specialist",
            question="Our TLS certificates expire next week and a CVE affects our OpenSSL; what do we do?",
            context_paths=["nginx.conf"],
        )
    assert result["path"] == "sampling"
    assert result["persona"] == "security"
    assert result["answer"] == "Rotate the certificate with cert-manager."
    assert result["context_files"] == [{"path": "nginx.conf", "chars": 29, "truncated": False}]
    (request,) = sampler.requests
    assert request.system_prompt == shipped_instructions("security")
    sent = request.messages[0].content.text
    assert "Our TLS certificates expire next week" in sent
    assert "### nginx.conf" in sent and "ssl_protocols TLSv1 TLSv1.1;" in sent
    assert request.max_tokens == 1024


async def test_a_client_that_refuses_sampling_falls_through_to_the_endpoint(
    tmp_path: Path, chat_server: ChatServer
) -> None:
    sampler = Sampler(refuse="the user declined the sampling request")
    llm = {"base_url": chat_server.url, "model": "local-model"}
    async with serving_with(tmp_path, {"sampling_callback": sampler}, llm=llm) as client:
        result = await call(client, "consult_specialist", question="Which SLOs and alerts for checkout?")
    assert len(sampler.requests) == 1
    assert result["path"] == "llm"
    assert result["persona"] == "sre"
    assert result["answer"] == "Add a 99.9% availability SLO."
    assert any("declined" in note for note in result["notes"])


async def test_the_configured_endpoint_answers_when_the_client_cannot_sample(
    tmp_path: Path, chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_TEST_LLM_API_KEY", "sk-local-1")
    llm = {
        "base_url": chat_server.url,
        "model": "qwen2.5-coder",
        "api_key_env": "TANDEM_TEST_LLM_API_KEY",
        "max_tokens": 400,
    }
    async with serving(tmp_path, toolsets=["specialists"], llm=llm) as client:
        result = await call(client, "consult_specialist", question="What should our alerts page on?", persona="sre")
    assert result["path"] == "llm"
    assert result["model"] == "served-model"
    assert result["chosen_by"] == "argument"
    assert result["answer"] == "Add a 99.9% availability SLO."
    assert "the client did not declare the sampling capability" in result["notes"][0]
    (request,) = chat_server.received
    assert request.headers["authorization"] == "Bearer sk-local-1"
    assert request.body["model"] == "qwen2.5-coder"
    assert request.body["max_tokens"] == 400
    system, user = request.body["messages"]
    assert system == {"role": "system", "content": shipped_instructions("sre")}
    assert user["role"] == "user" and "What should our alerts page on?" in user["content"]


async def test_an_endpoint_that_is_down_leaves_the_prompt_with_the_reason(tmp_path: Path) -> None:
    llm = {"base_url": closed_port_url(), "model": "m"}
    async with serving(tmp_path, toolsets=["specialists"], llm=llm) as client:
        result = await client.call_tool("consult_specialist", {"question": "How do we stop flaky tests?"})
    data = result.structured_content
    assert data["path"] == "prompt"
    assert data["persona"] == "qa"
    assert data["answer"] is None
    assert data["system_prompt"] == shipped_instructions("qa")
    assert "How do we stop flaky tests?" in data["prompt"]
    assert any(note.startswith("llm: cannot reach the LLM endpoint") for note in data["notes"])
    text = result.content[0].text
    assert "Answer the question yourself" in text and "cannot reach the LLM endpoint" in text


async def test_with_no_model_at_all_the_assembled_prompt_comes_back(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event):\n    return event\n")
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        result = await call(
            client,
            "consult_specialist",
            question="Is this module boundary right?",
            persona="architect",
            context_paths=["src/app.py"],
            context="We plan to add a queue consumer.",
        )
    assert result["path"] == "prompt"
    assert result["notes"] == [
        "sampling: the client did not declare the sampling capability",
        "llm: no endpoint configured (llm.base_url)",
    ]
    assert result["system_prompt"].startswith("You are a pragmatic software architect")
    prompt = result["prompt"]
    assert prompt.index("## Question") < prompt.index("## Notes from the asker") < prompt.index("## Context files")
    assert "We plan to add a queue consumer." in prompt
    assert "### src/app.py\n\n```\ndef handler(event):" in prompt


@pytest.mark.parametrize(
    ("question", "persona"),
    [
        ("Our TLS certificates and the CVEs in our dependencies: are we exposed?", "security"),
        ("Flaky test retries keep hiding failures and coverage is low", "qa"),
        ("Which SLOs and alerts should the payments API have?", "sre"),
        ("The GitHub Actions pipeline rebuilds the Docker image for every environment", "devops"),
        ("Does asyncio cancellation interrupt a thread started with to_thread?", "platform_expert"),
        ("Should billing be its own module with an interface, or stay coupled to orders?", "architect"),
    ],
)
async def test_the_persona_is_chosen_by_relevance(tmp_path: Path, question: str, persona: str) -> None:
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        result = await call(client, "consult_specialist", question=question)
    assert result["persona"] == persona
    assert result["chosen_by"] == "relevance"
    assert result["candidates"][0]["name"] == persona
    assert result["candidates"][0]["matched"]
    assert "best match" in result["why"]


async def test_a_question_matching_no_persona_goes_to_the_architect(tmp_path: Path) -> None:
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        result = await call(client, "consult_specialist", question="Hmm?")
    assert (result["persona"], result["chosen_by"]) == ("architect", "default")


async def test_every_shipped_persona_is_a_prompt(tmp_path: Path) -> None:
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        prompt = await client.get_prompt("specialist_security", {"question": "Is our JWT check sound?"})
    assert {f"specialist_{name}" for name in SHIPPED} <= listed.keys()
    security = listed["specialist_security"]
    assert security.title == "Security Engineer"
    assert {(a.name, a.required) for a in security.arguments or []} == {
        ("question", True),
        ("context", False),
        ("paths", False),
    }
    text = prompt.messages[0].content.text
    assert text.startswith(shipped_instructions("security"))
    assert text.rstrip().endswith("Is our JWT check sound?")


async def test_a_project_persona_overrides_a_shipped_one_and_adds_a_new_one(tmp_path: Path) -> None:
    persona_file(
        tmp_path,
        "security",
        "---\ntitle: AppSec at Acme\ndescription: Acme's own security review.\nkeywords: [tls, cve]\n---\n"
        "You review against Acme's security standard ACME-SEC-7.\n",
    )
    persona_file(
        tmp_path,
        "dba",
        "---\ntitle: Database Administrator\ndescription: PostgreSQL schemas, indexes and query plans.\n"
        "keywords: [postgres, index, query plan, vacuum, migration]\n---\nYou are Acme's DBA.\n",
    )
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        (tmp_path / "schema.sql").write_text("CREATE TABLE orders (id int, customer int);\n")
        dba = await client.get_prompt("specialist_dba", {"question": "Why is this query slow?", "paths": "schema.sql"})
        security = await client.get_prompt("specialist_security", {"question": "TLS?"})
        roster = await call(client, "list_specialists")
        chosen = await call(client, "consult_specialist", question="Which index for this postgres query plan?")
    assert listed["specialist_security"].title == "AppSec at Acme"
    assert listed["specialist_dba"].title == "Database Administrator"
    assert dba.messages[0].content.text.startswith("You are Acme's DBA.")
    assert "### schema.sql\n\n```\nCREATE TABLE orders" in dba.messages[0].content.text
    assert security.messages[0].content.text.startswith("You review against Acme's security standard ACME-SEC-7.")
    by_name = {s["name"]: s for s in roster["specialists"]}
    assert by_name["security"]["source"] == "project" and by_name["security"]["overrides"] is True
    assert by_name["security"]["file"] == ".tandem/specialists/security.md"
    assert by_name["dba"]["overrides"] is False
    assert by_name["qa"]["source"] == "shipped"
    assert chosen["persona"] == "dba"
    assert chosen["system_prompt"] == "You are Acme's DBA."


async def test_a_persona_added_while_serving_is_listed_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        before = {p.name for p in (await client.list_prompts()).prompts}
        persona_file(tmp_path, "ml", "---\ntitle: ML Engineer\ndescription: Models.\n---\nYou train models.\n")
        after = {p.name for p in (await client.list_prompts()).prompts}
    assert after - before == {"specialist_ml"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("You are a persona without frontmatter.\n", "no YAML frontmatter"),
        ("---\ntitle: Broken\ndescription: [unclosed\n---\nBody.\n", "line 3: invalid YAML frontmatter"),
        ("---\ntitle: T\n---\nBody.\n", "description: Field required"),
        ("---\ntitle: T\ndescription: D\nkeyword: [typo]\n---\nBody.\n", "keyword: Extra inputs are not permitted"),
        ("---\ntitle: T\ndescription: D\n---\n\n", "the body (the persona's instructions"),
        ("---\ntitle: T\ndescription: D\n", "never closed"),
    ],
)
async def test_a_bad_persona_file_is_reported_and_the_others_still_served(
    tmp_path: Path, text: str, problem: str
) -> None:
    persona_file(tmp_path, "broken", text)
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        roster = await call(client, "list_specialists")
        listed = {p.name for p in (await client.list_prompts()).prompts}
        message = await refused(client, "consult_specialist", question="anything", persona="broken")
    (reported,) = roster["problems"]
    assert reported["file"] == ".tandem/specialists/broken.md"
    assert problem in reported["problem"]
    assert {s["name"] for s in roster["specialists"]} == SHIPPED
    assert "specialist_broken" not in listed and "specialist_qa" in listed
    assert "no specialist named 'broken'" in message and problem in message


async def test_a_broken_override_leaves_the_shipped_persona(tmp_path: Path) -> None:
    persona_file(tmp_path, "qa", "---\ntitle: QA\n---\nBody.\n")
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        roster = await call(client, "list_specialists")
    qa = next(s for s in roster["specialists"] if s["name"] == "qa")
    assert qa["source"] == "shipped"
    assert roster["problems"][0]["file"] == ".tandem/specialists/qa.md"


async def test_an_unknown_persona_is_refused_with_the_names_available(tmp_path: Path) -> None:
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        message = await refused(client, "consult_specialist", question="hi", persona="wizard")
    assert "no specialist named 'wizard'" in message
    assert "architect, devops, platform_expert, qa, security, sre" in message


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "link/secret.txt"])
async def test_context_paths_outside_the_workspace_are_refused(tmp_path: Path, path: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (tmp_path / "outside.txt").write_text("private\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("private\n")
    (workspace / "link").symlink_to(tmp_path / "elsewhere")
    async with serving(workspace, toolsets=["specialists"]) as client:
        message = await refused(client, "consult_specialist", question="review", context_paths=[path])
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("specialist_qa", {"question": "review", "paths": path})
    assert "private" not in message and "outside" in message.lower()
    assert "private" not in str(raised.value)


async def test_a_context_file_holding_a_secret_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text('AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n')
    (tmp_path / "app.py").write_text("print('hello')\n")
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        result = await call(
            client, "consult_specialist", question="review", persona="security", context_paths=["settings.py", "app.py"]
        )
    assert [f["path"] for f in result["context_files"]] == ["app.py"]
    assert result["left_out"] == [{"path": "settings.py", "reason": "holds a secret (line 1); left out of the brief"}]
    assert "AKIAIOSFODNN7EXAMPLE" not in result["prompt"]
    assert "Left out of the context: settings.py" in result["prompt"]


async def test_a_context_file_edited_after_it_was_read_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brief holds the bytes it read; the scan must be of those, not of the file as it is by then: a secret
    read into the brief and removed from the file before the scan is never sent."""
    briefing = importlib.import_module("tandem.toolsets.specialists.briefing")
    settings = tmp_path / "settings.py"
    settings.write_text(f'REGION = "{tmp_path.name}"\nAWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n')
    read = briefing.read_text

    def read_then_edited(*args: object, **kwargs: object) -> object:
        found = read(*args, **kwargs)
        settings.write_text(f'REGION = "{tmp_path.name}"\n')  # saved clean between the read and the scan
        return found

    monkeypatch.setattr(briefing, "read_text", read_then_edited)
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        result = await call(
            client, "consult_specialist", question="review", persona="qa", context_paths=["settings.py"]
        )
    assert "AKIAIOSFODNN7EXAMPLE" not in result["prompt"] and result["context_files"] == []
    assert result["left_out"] == [
        {"path": "settings.py", "reason": "not scanned for secrets (changed after it was read); left out of the brief"}
    ]


async def test_a_large_context_file_is_cut_with_a_notice(tmp_path: Path) -> None:
    (tmp_path / "big.log").write_text("x" * 50_000)
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        result = await call(client, "consult_specialist", question="why?", persona="sre", context_paths=["big.log"])
    assert result["context_files"] == [{"path": "big.log", "chars": 40_000, "truncated": True}]
    assert "[truncated: 40,000 of 50,000 characters shown]" in result["prompt"]


async def test_prompt_sources_serve_runtime_prompts_beside_fixed_ones(tmp_path: Path) -> None:
    """The core's prompt-source hook: fixed prompts win a name clash, and a failing source hides only its own."""
    from tandem.core import CallContext, Toolset
    from tandem.core.registry import Prompt
    from tandem.core.schema import signature_of

    ts = Toolset("runtime")

    @ts.prompt(description="Fixed.")
    def fixed() -> str:
        return "the fixed one"

    def shadow() -> str:
        return "the runtime one"

    def made(name: str) -> Prompt:
        return Prompt(name=name, description="Runtime.", fn=shadow, signature=signature_of(shadow), toolset="runtime")

    @ts.prompt_source
    async def good(ctx: CallContext) -> list[Prompt]:
        return [made("fixed"), made("dynamic")]

    @ts.prompt_source
    def bad(ctx: CallContext) -> list[Prompt]:
        raise RuntimeError("cannot list")

    settings = load_settings(tmp_path, toolsets=[])
    async with Client(TandemServer(Registry([ts]), settings).server, mode="legacy") as client:
        names = [p.name for p in (await client.list_prompts()).prompts]
        fixed_text = (await client.get_prompt("fixed", {})).messages[0].content.text
        dynamic_text = (await client.get_prompt("dynamic", {})).messages[0].content.text
        with pytest.raises(MCPError, match="Unknown prompt: 'nope'"):
            await client.get_prompt("nope", {})
    assert names == ["fixed", "dynamic"]
    assert (fixed_text, dynamic_text) == ("the fixed one", "the runtime one")


async def test_sampling_can_be_turned_off_for_the_endpoint(tmp_path: Path, chat_server: ChatServer) -> None:
    sampler = Sampler()
    llm = {"base_url": chat_server.url, "model": "m", "sampling": False}
    async with serving_with(tmp_path, {"sampling_callback": sampler}, llm=llm) as client:
        result = await call(client, "consult_specialist", question="alerts?", persona="sre")
    assert sampler.requests == []
    assert result["path"] == "llm"
    assert result["notes"] == ["sampling: turned off (llm.sampling = false)"]


async def test_a_client_that_never_answers_sampling_is_given_up_on(tmp_path: Path) -> None:
    sampler = Sampler(delay=30)
    async with serving_with(tmp_path, {"sampling_callback": sampler}, llm={"sampling_timeout": 0.3}) as client:
        with anyio.fail_after(10):
            result = await call(client, "consult_specialist", question="How do we test this?")
    assert result["path"] == "prompt"
    assert result["notes"][0] == "sampling: the client did not answer within 0.3s"


async def test_a_project_persona_symlinked_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    outside = tmp_path / "outside.md"
    outside.write_text("---\ntitle: Leak\ndescription: D\nkeywords: [leak]\n---\nOUTSIDE-THE-WORKSPACE body\n")
    persona_file(workspace, "dba", "---\ntitle: DBA\ndescription: Databases.\n---\nYou are Acme's DBA.\n")
    (workspace / ".tandem" / "specialists" / "leak.md").symlink_to(outside)
    (workspace / "docs").mkdir()
    (workspace / "docs" / "team.md").write_text("---\ntitle: Team\ndescription: Ours.\n---\nYou know the team.\n")
    (workspace / ".tandem" / "specialists" / "team.md").symlink_to("../../docs/team.md")
    async with serving(workspace, toolsets=["specialists"]) as client:
        roster = await call(client, "list_specialists")
        listed = {p.name for p in (await client.list_prompts()).prompts}
        message = await refused(client, "consult_specialist", question="leak?", persona="leak")
        chosen = await call(client, "consult_specialist", question="leak?")
    (problem,) = roster["problems"]
    assert problem["file"] == ".tandem/specialists/leak.md"
    assert "outside the workspace" in problem["problem"] and str(tmp_path) not in problem["problem"]
    assert {s["name"] for s in roster["specialists"]} == SHIPPED | {"dba", "team"}
    assert "specialist_leak" not in listed and {"specialist_dba", "specialist_team"} <= listed
    assert "no specialist named 'leak'" in message and "OUTSIDE" not in message and str(tmp_path) not in message
    assert "OUTSIDE" not in chosen["system_prompt"] and "OUTSIDE" not in chosen["prompt"]


async def test_a_data_dir_symlinked_out_of_the_workspace_serves_no_project_persona(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    persona_file(tmp_path / "elsewhere", "leak", "---\ntitle: Leak\ndescription: D\n---\nOUTSIDE body\n")
    (workspace / ".tandem").symlink_to(tmp_path / "elsewhere" / ".tandem")
    # Such a data directory stops startup now (tests/test_workspace_trust.py); were it used all the same, the
    # toolset itself still reads no persona through it.
    with pytest.raises(ConfigError, match="leads outside it"):
        load_settings(workspace)
    settings = Settings(workspace=workspace.resolve(), toolsets=["specialists"])  # load_settings would refuse it
    tandem = TandemServer(Registry.from_entry_points(settings.toolsets), settings)
    async with Client(tandem.server, mode="legacy") as client:
        roster = await call(client, "list_specialists")
    assert {s["name"] for s in roster["specialists"]} == SHIPPED
    (problem,) = roster["problems"]
    assert problem["file"] == ".tandem/specialists"
    assert "outside the workspace" in problem["problem"] and str(tmp_path) not in problem["problem"]


AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


async def test_secrets_in_the_question_and_context_never_reach_the_endpoint(
    tmp_path: Path, chat_server: ChatServer
) -> None:
    context = (
        "diff --git a/deploy.env b/deploy.env\n"
        f"+AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
        f"+AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
        "+REGION=eu-west-1\n"
    )
    llm = {"base_url": chat_server.url, "model": "m"}
    async with serving(tmp_path, toolsets=["specialists"], llm=llm) as client:
        result = await call(
            client,
            "consult_specialist",
            question=f"Why does the deploy fail with key {AWS_KEY_ID}?\nIt worked yesterday.",
            persona="devops",
            context=context,
        )
    assert result["path"] == "llm"
    (request,) = chat_server.received
    sent = json.dumps(request.body)
    assert AWS_KEY_ID not in sent and AWS_SECRET not in sent and "wJalrXUtn" not in sent
    user = request.body["messages"][1]["content"]
    assert "+REGION=eu-west-1" in user and "It worked yesterday." in user
    assert "[line redacted: it held a secret (AWS Access Key)]" in user
    assert [(r["where"], r["line"]) for r in result["redacted"]] == [("question", 1), ("context", 2), ("context", 3)]


async def test_a_secret_in_a_project_persona_is_redacted_before_it_is_sent(
    tmp_path: Path, chat_server: ChatServer
) -> None:
    persona_file(
        tmp_path,
        "ops",
        f"---\ntitle: Ops\ndescription: Our ops.\n---\nYou run Acme's ops.\nOur key: {AWS_KEY_ID}\n",
    )
    llm = {"base_url": chat_server.url, "model": "m"}
    async with serving(tmp_path, toolsets=["specialists"], llm=llm) as client:
        result = await call(client, "consult_specialist", question="How do we deploy?", persona="ops")
    (request,) = chat_server.received
    system = request.body["messages"][0]["content"]
    assert AWS_KEY_ID not in json.dumps(request.body)
    assert system.startswith("You run Acme's ops.\n[line redacted")
    assert result["redacted"] == [{"where": "persona", "line": 2, "kinds": ["AWS Access Key"]}]


async def test_the_result_names_the_host_an_api_key_goes_to(
    tmp_path: Path, chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_TEST_LLM_API_KEY", "sk-local-1")
    remote = {"base_url": "http://192.0.2.1:9/v1", "model": "m", "timeout": 0.5}  # TEST-NET-1: goes nowhere
    local = {"base_url": chat_server.url, "model": "m"}
    results = []
    for llm in (remote, local):
        async with serving(
            tmp_path, toolsets=["specialists"], llm={**llm, "api_key_env": "TANDEM_TEST_LLM_API_KEY"}
        ) as client:
            results.append(await call(client, "consult_specialist", question="alerts?", persona="sre"))
    far, near = results
    assert far["path"] == "prompt"
    assert (
        "llm: the API key in TANDEM_TEST_LLM_API_KEY goes to 192.0.2.1, not this machine (llm.base_url)" in far["notes"]
    )
    assert near["path"] == "llm" and not any("API key" in note for note in near["notes"])


async def test_a_fifo_or_folder_named_like_a_persona_is_reported_not_waited_on(tmp_path: Path) -> None:
    folder = tmp_path / ".tandem" / "specialists"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.md")
    (folder / "folder.md").mkdir()
    async with serving(tmp_path, toolsets=["specialists"]) as client:
        with anyio.fail_after(10):
            roster = await call(client, "list_specialists")
    assert {(p["file"], p["problem"]) for p in roster["problems"]} == {
        (".tandem/specialists/pipe.md", "not a regular file"),
        (".tandem/specialists/folder.md", "not a regular file"),
    }
    assert {s["name"] for s in roster["specialists"]} == SHIPPED
