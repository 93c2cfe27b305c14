"""pack_codebase on a real git repository with a .gitignore, dependencies, a lock file and a binary, through a
real MCP client; every count checked against the tokenizer on the text the client received."""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tandem.toolsets.context.pack import directory_tree
from tests.exact_tokens import tiktoken_count
from tests.toolsets.calls import call, git, refused, serving

pytestmark = pytest.mark.anyio

APP = 'import os\n\n\ndef main() -> None:\n    """Entry point."""\n    print(os.getcwd())\n'


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    files = {
        "src/app.py": APP,
        "src/util/strings.py": "def shout(s: str) -> str:\n    return s.upper() + '!' * 40\n" * 20,
        "README.md": "# Demo\n\nRun it:\n\n```sh\npython -m app\n```\n",
        ".github/workflows/ci.yml": "on: push\njobs: {}\n",
        ".gitignore": "secret.txt\nlogs/\n",
        "secret.txt": "ignored by .gitignore\n",
        "logs/run.log": "ignored directory\n",
        "node_modules/left-pad/index.js": "module.exports = () => {}\n",
        "package-lock.json": '{"lockfileVersion": 3}\n',
        "pylock.toml": 'lock-version = "1.0"\n',
        "tools/pylock.dev.toml": 'lock-version = "1.0"\n',
        "app/pubspec.lock": "packages: {}\n",
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    git(root.parent, "init", "-q", str(root))
    return root


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["context"]) as connected:
        yield connected


async def pack(client: Client, **arguments: object) -> tuple[dict, str, str]:
    result = await client.call_tool("pack_codebase", arguments)
    assert not result.is_error, result.content[0].text
    summary, output = (block.text for block in result.content)
    return result.structured_content, summary, output


PACKED = [".github/workflows/ci.yml", ".gitignore", "README.md", "src/app.py", "src/util/strings.py"]


async def test_xml_pack_honours_ignores_and_counts_exactly(client: Client) -> None:
    stats, summary, output = await pack(client)
    files = [line.split('"')[1] for line in output.splitlines() if line.startswith("<file path=")]
    assert files == PACKED  # not secret.txt, logs/, node_modules/, lock files (npm, pylock, pubspec), logo.png
    assert stats["skipped"] == [{"path": "logo.png", "reason": "binary"}]
    assert stats["file_count"] == 5 and stats["root"] == "."
    # The counts are of exactly the text the client received.
    assert stats["total_tokens"] == tiktoken_count(output) and stats["total_chars"] == len(output)
    assert stats["file_tokens"] < stats["total_tokens"]
    assert stats["top_files"][0]["path"] == "src/util/strings.py"
    assert [f["tokens"] for f in stats["top_files"]] == sorted((f["tokens"] for f in stats["top_files"]), reverse=True)
    assert f"Packed 5 files from . as pack {stats['pack_id']}: {stats['total_tokens']:,} tokens (o200k_base)" in summary
    tree = ".github/\n  workflows/\n    ci.yml\nsrc/\n  util/\n    strings.py\n  app.py\n.gitignore\nREADME.md\n"
    assert f"<directory_structure>\n{tree}</directory_structure>" in output
    assert f'<file path="src/app.py">\n{APP.rstrip()}\n</file>' in output


async def test_json_and_markdown_carry_every_byte(client: Client, workspace: Path) -> None:
    stats, _, output = await pack(client, style="json")
    data = json.loads(output)
    assert sorted(data["files"]) == PACKED
    assert all(data["files"][name] == (workspace / name).read_text() for name in PACKED)
    assert stats["total_tokens"] == tiktoken_count(output)
    _, _, markdown = await pack(client, style="markdown", include=["*.md", "*.py"])
    # README.md holds a ``` fence: its own fence is longer, so the file cannot end the block early.
    assert "## File: README.md\n````markdown\n# Demo" in markdown and "```\n````\n" in markdown
    assert "## File: src/app.py\n```python\n" in markdown and ".github" not in markdown
    _, _, plain = await pack(client, style="plain", path="src")
    assert "File: src/app.py" in plain and "README.md" not in plain


async def test_filters_encodings_and_bad_input(client: Client) -> None:
    stats, _, output = await pack(client, ignore=["*.yml", "util"])
    assert "ci.yml" not in output and "strings.py" not in output and stats["file_count"] == 3
    o200k, _, _ = await pack(client, include=["*.py"])
    cl100k, _, cl_output = await pack(client, include=["*.py"], encoding="cl100k_base")
    assert cl100k["total_tokens"] == tiktoken_count(cl_output, "cl100k_base") != o200k["total_tokens"]
    assert "outside the workspace" in await refused(client, "pack_codebase", path="../")
    assert "without '!'" in await refused(client, "pack_codebase", ignore=["!*.py"])
    # Arguments outside the schema are the protocol's invalid-params error, naming the argument.
    with pytest.raises(MCPError, match="encoding: Input should be 'o200k_base' or 'cl100k_base'"):
        await client.call_tool("pack_codebase", {"encoding": "p50k_base"})
    with pytest.raises(MCPError, match="style"):
        await client.call_tool("pack_codebase", {"style": "html"})


def test_directory_tree_puts_directories_first() -> None:
    assert directory_tree(["b.txt", "a/z.py", "a/b/c.py", "c/d.md"]) == "a/\n  b/\n    c.py\n  z.py\nc/\n  d.md\nb.txt"


async def test_line_numbers(client: Client) -> None:
    _, _, output = await pack(client, include=["app.py"], line_numbers=True)
    assert '<file path="src/app.py">\n1: import os\n2: \n3: \n4: def main() -> None:\n' in output


async def test_a_token_budget_splits_into_parts_that_fit(client: Client, workspace: Path) -> None:
    # One file far over the budget (split by lines) among small ones.
    (workspace / "src" / "big.py").write_text("".join(f"value_{n} = {n} * {n}  # line {n}\n" for n in range(1500)))
    whole, _, _ = await pack(client)
    stats, summary, first = await pack(client, token_budget=2000)
    parts = stats["parts"]
    assert len(parts) >= whole["total_tokens"] // 2000 and "part 1 follows" in summary
    texts = []
    for part in parts:
        answer = await client.call_tool("read_packed", {"pack_id": stats["pack_id"], "part": part["part"]})
        texts.append(answer.content[1].text)
        # Every part fits, counted on the text the client got back.
        assert tiktoken_count(texts[-1]) == part["tokens"] <= 2000
    assert texts[0] == first and "<directory_structure>" in first
    assert all("<directory_structure>" not in t and t.startswith(f"Part {n}") for n, t in enumerate(texts[1:], 2))
    # Nothing is lost or repeated: the pieces of big.py, in order, are the file.
    pieces = [f for part in parts for f in part["files"] if f.startswith("src/big.py")]
    assert len(pieces) > 1 and pieces[0] == "src/big.py (lines 1-" + pieces[0].split("-")[1]
    joined = "".join(t for t in texts)
    for n in (0, 777, 1499):
        assert joined.count(f"value_{n} = {n} * {n}  # line {n}\n") == 1
    past = await refused(client, "read_packed", pack_id=stats["pack_id"], part=len(parts) + 1)
    assert f"has {len(parts)} parts" in past


async def test_read_and_grep_a_stored_pack(client: Client, workspace: Path) -> None:
    stats, _, output = await pack(client)
    lines = output.splitlines()
    page = await client.call_tool("read_packed", {"pack_id": stats["pack_id"], "start_line": 3, "end_line": 6})
    assert page.content[1].text == "\n".join(lines[2:6]) + "\n"
    assert page.structured_content["total_lines"] == len(lines)
    found = await call(client, "grep_packed", pack_id=stats["pack_id"], pattern=r"def \w+\(", context=1)
    assert [(m["file"], m["text"]) for m in found["matches"]][:2] == [
        ("src/app.py", "def main() -> None:"),
        ("src/util/strings.py", "def shout(s: str) -> str:"),
    ]
    assert all(lines[m["line"] - 1] == m["text"] for m in found["matches"]) and found["context"]
    capped = await call(
        client, "grep_packed", pack_id=stats["pack_id"], pattern="SHOUT", ignore_case=True, max_matches=3
    )
    assert len(capped["matches"]) == 3 and capped["truncated"]
    # Packs outlive the server that made them.
    async with serving(workspace, toolsets=["context"]) as again:
        reread = await again.call_tool("read_packed", {"pack_id": stats["pack_id"], "end_line": 2})
        assert reread.content[1].text == "\n".join(lines[:2]) + "\n"
    assert "not a pack id" in await refused(client, "read_packed", pack_id="../../etc/passwd")
    assert "no pack" in await refused(client, "read_packed", pack_id="0123456789ab")
    assert "past its end" in await refused(client, "read_packed", pack_id=stats["pack_id"], start_line=10_000)
    assert "refused" in await refused(client, "grep_packed", pack_id=stats["pack_id"], pattern="(unclosed")


BREAKS = {
    "src/crlf.py": "def windows():\r\n    return 1\r\n",
    "src/feed.py": "def before():\n    pass\n\x0c\ndef after_feed():\n    pass\n",
    "notes.txt": "one\u2028two\rthree\x1cfour\x85five\nlast_note\n",
}


async def test_files_keep_their_line_breaks_and_lines_are_numbered_at_newlines(client: Client, workspace: Path) -> None:
    """CRLF, a form feed, a line or record separator inside a file stay as they are: the pack sent, the pack
    stored and its lines (read_packed, grep_packed, parts) are the same text, counted exactly."""
    for name, text in BREAKS.items():
        (workspace / name).write_bytes(text.encode())
    stats, _, output = await pack(client)
    for text in BREAKS.values():
        assert text in output
    assert stats["total_tokens"] == tiktoken_count(output)
    lines = output.removesuffix("\n").split("\n")
    pages = []
    for start in range(1, len(lines) + 1, 40):
        page = await client.call_tool(
            "read_packed", {"pack_id": stats["pack_id"], "start_line": start, "end_line": start + 39}
        )
        pages.append(page.content[1].text)
    assert "".join(pages) == output and page.structured_content["total_lines"] == len(lines)
    for word, owner in (("after_feed", "src/feed.py"), ("last_note", "notes.txt"), ("windows", "src/crlf.py")):
        found = await call(client, "grep_packed", pack_id=stats["pack_id"], pattern=word)
        (match,) = found["matches"]
        assert match["file"] == owner and match["text"] == lines[match["line"] - 1] and word in match["text"]
    _, _, numbered = await pack(client, include=["src/feed.py", "src/crlf.py"], line_numbers=True)
    assert "\n3: \x0c\n4: def after_feed():\n" in numbered and "1: def windows():\r\n2:     return 1\r\n" in numbered
    split, _, _ = await pack(client, token_budget=500)
    texts = []
    for part in split["parts"]:
        answer = await client.call_tool("read_packed", {"pack_id": split["pack_id"], "part": part["part"]})
        texts.append(answer.content[1].text)
        assert tiktoken_count(texts[-1]) == part["tokens"]
    assert all(text in "".join(texts) for text in BREAKS.values())


def test_the_oldest_packs_are_removed(tmp_path: Path) -> None:
    from tandem.toolsets.context.store import PackStore

    store = PackStore(tmp_path / "packs", keep=3)
    ids = [store.save(f"pack {n}\n", {"style": "xml"}) for n in range(5)]
    assert sorted(p.stem for p in (tmp_path / "packs").glob("*.txt")) == sorted(ids[2:])
    assert store.get(ids[-1]).lines() == ["pack 4"]


async def test_the_git_diff_and_log_follow_the_files(client: Client, workspace: Path) -> None:
    before = await client.call_tool("pack_codebase", {"include_diff": True, "include_log": True})
    assert "(no commits yet)" in before.content[1].text  # a repository without commits is no error
    git(workspace, "add", "-A")
    git(workspace, "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-qm", "first commit")
    (workspace / "src" / "app.py").write_text(APP.replace("os.getcwd()", "'changed'"))
    stats, _, output = await pack(client, include_diff=True, include_log=True, log_count=5)
    diff = output.split("<git_diff>\n", 1)[1].split("\n</git_diff>", 1)[0]
    assert "-    print(os.getcwd())\n+    print('changed')" in diff and diff.startswith("diff --git a/src/app.py")
    assert "<git_log>\n" in output and "Ada\n    first commit\n</git_log>" in output
    assert output.index("</files>") < output.index("<git_diff>") < output.index("<git_log>")
    assert stats["file_count"] == 5 and stats["total_tokens"] == tiktoken_count(output)
    _, _, markdown = await pack(client, style="markdown", include_diff=True)
    assert "# Git diff (working tree against HEAD)\n```diff\ndiff --git" in markdown
    data = json.loads((await pack(client, style="json", include_log=True))[2])
    assert "first commit" in data["gitLog"] and "git log" not in data["files"]


AWS_KEY = "AKIAIOSFODNN7" + "REALKEY"  # split so this file holds no key itself


async def test_files_and_diffs_holding_secrets_are_left_out_and_listed(client: Client, workspace: Path) -> None:
    (workspace / "src" / "settings.py").write_text(f'REGION = "eu"\nAWS_ACCESS_KEY_ID = "{AWS_KEY}"\n')
    (workspace / "src" / "allowed.py").write_text(
        f'EXAMPLE = "{AWS_KEY.replace("REAL", "DOCS")}"  # pragma: allowlist secret\n'
    )
    git(workspace, "add", "-A")
    git(workspace, "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-qm", "first")
    new_key = AWS_KEY.replace("REAL", "NEWK")
    (workspace / "src" / "app.py").write_text(APP + f'TOKEN = "{new_key}"\n')
    (workspace / "README.md").write_text("# Demo, changed\n")
    stats, _, output = await pack(client, include_diff=True)
    assert AWS_KEY not in output and new_key not in output
    reasons = {entry["path"]: entry["reason"] for entry in stats["skipped"]}
    assert reasons["src/settings.py"] == "holds a secret: AWS Access Key on line 2"
    assert reasons["src/app.py"].startswith("holds a secret: AWS Access Key")
    assert reasons["git diff of src/app.py"] == "holds a secret"
    assert '<file path="src/allowed.py">\nEXAMPLE = "AKIA' in output  # the allowlist pragma is honoured
    assert "diff --git a/README.md b/README.md" in output and "diff --git a/src/app.py" not in output
    kept, _, everything = await pack(client, leave_out_secrets=False)
    assert AWS_KEY in everything and not any("secret" in e["reason"] for e in kept["skipped"])


async def test_files_detect_secrets_passes_over_by_name_are_scanned_for_a_pack(client: Client, workspace: Path) -> None:
    """detect-secrets skips .css, .svg, lock and swagger files by their names; a pack sends their text to a model,
    so it scans them too."""
    (workspace / "site.css").write_text(f"/* deploy key {AWS_KEY} */\nbody {{ color: red; }}\n")
    (workspace / "logo.svg").write_text(f'<svg><!-- aws_key = "{AWS_KEY}" --></svg>\n')
    (workspace / "plain.css").write_text("body { color: blue; }\n")
    stats, _, output = await pack(client)
    assert AWS_KEY not in output and '<file path="plain.css">' in output
    reasons = {entry["path"]: entry["reason"] for entry in stats["skipped"]}
    assert reasons["site.css"].startswith("holds a secret: AWS Access Key")
    assert reasons["logo.svg"].startswith("holds a secret: AWS Access Key")


async def test_no_line_of_the_diff_shows_a_secret(client: Client, workspace: Path) -> None:
    """The diff covers the whole repository: a secret on a context line of a file outside the packed path, and
    one on a removed line, are not shown either."""
    (workspace / "other").mkdir()
    password = "hunter2-" + workspace.parent.name
    (workspace / "other" / "conf.py").write_text(f'DEBUG = False\npassword = "{password}"\nPORT = 1\n')
    (workspace / "src" / "app.py").write_text(APP + f'KEY = "{AWS_KEY}"\n')
    git(workspace, "add", "-A")
    git(workspace, "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-qm", "first")
    (workspace / "other" / "conf.py").write_text(f'DEBUG = True\npassword = "{password}"\nPORT = 1\n')
    (workspace / "src" / "app.py").write_text(APP)  # the key removed: the diff's "-" line holds it
    (workspace / "src" / "util" / "strings.py").write_text("def shout(s: str) -> str:\n    return s.upper()\n")
    stats, _, output = await pack(client, path="src", include_diff=True)
    assert password not in output and AWS_KEY not in output
    assert "diff --git a/src/util/strings.py" in output  # a clean file's diff is still shown
    reasons = {entry["path"]: entry["reason"] for entry in stats["skipped"]}
    assert reasons["git diff of other/conf.py"] == reasons["git diff of src/app.py"] == "holds a secret"


async def test_a_file_edited_between_reading_and_scanning_is_left_out(
    client: Client, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan vouches for the bytes the pack holds, not for whatever is on disk by then: a secret read into the
    pack and removed from the file before the scan (whose clean verdict is even cached) must not be packed."""
    context_toolset = importlib.import_module("tandem.toolsets.context.toolset")  # the module, not the Toolset
    settings = workspace / "src" / "settings.py"
    clean = f'REGION = "{workspace.parent.name}"\n'  # bytes no other test packs (the result cache is shared)
    settings.write_text(clean)
    first, _, output = await pack(client)
    assert '<file path="src/settings.py">' in output  # clean, and now known clean in the result cache
    settings.write_text(f'{clean}AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n')
    read = context_toolset._read

    def read_then_edited(*args: object) -> object:
        files = read(*args)
        settings.write_text(clean)  # an editor saves the file between the pack's read and its scan
        return files

    monkeypatch.setattr(context_toolset, "_read", read_then_edited)
    stats, _, output = await pack(client)
    assert AWS_KEY not in output and '<file path="src/settings.py">' not in output
    reasons = {entry["path"]: entry["reason"] for entry in stats["skipped"]}
    assert reasons["src/settings.py"] == "not scanned for secrets: changed after it was read"
    assert stats["file_count"] == first["file_count"] - 1


async def test_a_repeated_pack_is_the_same_pack(client: Client, workspace: Path) -> None:
    """The second pack takes its counts and scan verdicts from the result cache: the same output and the same
    counts, exact against tiktoken; an edited file is counted and scanned anew."""
    (workspace / "src" / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n')
    first_stats, _, first = await pack(client)
    again_stats, _, again = await pack(client)
    assert again == first and {k: v for k, v in again_stats.items() if k != "pack_id"} == {
        k: v for k, v in first_stats.items() if k != "pack_id"
    }
    assert again_stats["total_tokens"] == tiktoken_count(again)
    (workspace / "src" / "app.py").write_text(APP + "\n# one more line, and a key: " + AWS_KEY + "\n")
    edited_stats, _, edited = await pack(client)
    assert edited_stats["total_tokens"] == tiktoken_count(edited) != again_stats["total_tokens"]
    assert AWS_KEY not in edited and {e["path"] for e in edited_stats["skipped"]} >= {"src/app.py", "src/settings.py"}
