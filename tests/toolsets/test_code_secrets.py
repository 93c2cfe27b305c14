"""scan_secrets through a real MCP client: real detect-secrets scans of real files and of real git diffs, a baseline
made by the detect-secrets CLI, and no raw secret anywhere in what comes back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from tandem.core.secret_engine import redact
from tests.toolsets.calls import call, git, refused, serving, text

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("git_identity")]

AWS = "AKIAZ4XQ7RW2MPL3KVNT"
PASSWORD = "hunter2-correct-horse-battery"
GITHUB = "ghp_1x9Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3"
ALLOWED = "AKIAZ4XQ7RW2MPL3KVNX"
LATER = "AKIAQ7RT2W4XM9PL6KZB"
DOTENV = "AKIAJ5ZQ3TW8NRB2XLYP"
HEX = "b3c1f9a27d4e8a6f0c5d2e9b7a1f3c8d6e4b2a90"
BASE64 = "Zm9vYmFyYmF6cXV4c2VjcmV0dmFsdWVoZXJlMTIzNDU2Nzg5MA=="
ESCAPED = "Ystalwart99plover"
"""Part of a YAML value written with an escape: detect-secrets sees it decoded, the line holds it as written."""
RAW = (AWS, PASSWORD, GITHUB, ALLOWED, LATER, DOTENV, HEX, BASE64, ESCAPED)
CONFIG = (
    f'AWS_ACCESS_KEY_ID = "{AWS}"\npassword = "{PASSWORD}"\ntoken = "{GITHUB}"\n'
    f'allowed = "{ALLOWED}"  # pragma: allowlist secret\n'
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "config.py").write_text(CONFIG)
    (root / "id_rsa").write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n")
    (root / "clean.py").write_text("VALUE = 1\n")
    (root / "blob.bin").write_bytes(b"\x00\x01" + f'key = "{AWS}"'.encode())
    return root


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["code"]) as connected:
        yield connected


async def scan(client: Client, **arguments: object) -> tuple[dict, str]:
    """The structured result and the text of a scan, after checking that no raw secret is in either."""
    result = await client.call_tool("scan_secrets", arguments)
    assert not result.is_error, result.content[0].text
    everything = json.dumps(result.structured_content) + "".join(c.text for c in result.content)
    leaked = [secret for secret in RAW if secret in everything]
    assert not leaked, f"raw secrets in the result: {leaked}"
    return result.structured_content, result.content[0].text


async def test_files_are_scanned_and_every_secret_masked(client: Client) -> None:
    report, summary = await scan(client)
    found = {(s["path"], s["line"], s["type"]) for s in report["secrets"]}
    assert {
        ("config.py", 1, "AWS Access Key"),
        ("config.py", 2, "Secret Keyword"),
        ("config.py", 3, "GitHub Token"),
        ("id_rsa", 1, "Private Key"),
    } <= found
    assert not any(s["line"] == 4 for s in report["secrets"])  # pragma: allowlist secret
    assert {s["path"] for s in report["secrets"]} == {"config.py", "id_rsa"}  # the binary is skipped
    aws = next(s for s in report["secrets"] if s["type"] == "AWS Access Key")
    assert aws["redacted"] == 'AWS_ACCESS_KEY_ID = "AK********"' and len(aws["hashed_secret"]) == 40
    assert aws["is_verified"] is False
    assert report["files_scanned"] == 3 and report["mode"] == "files"
    assert summary.splitlines()[0].startswith(f"{sum(report['counts'].values())} secret(s) in 2 file(s) (")
    clean, summary = await scan(client, paths=["clean.py"])
    assert clean["secrets"] == [] and summary == "no secrets found in 1 file(s)"
    assert "outside the workspace" in await refused(client, "scan_secrets", paths=["../"])


async def test_a_baseline_from_the_detect_secrets_cli_suppresses_known_secrets(client: Client, workspace: Path) -> None:
    cli = Path(sys.executable).parent / "detect-secrets"
    made = subprocess.run([str(cli), "scan", "--all-files"], cwd=workspace, capture_output=True, text=True, check=True)  # noqa: ASYNC221
    (workspace / ".secrets.baseline").write_text(made.stdout)
    report, summary = await scan(client)
    assert report["secrets"] == [] and report["suppressed_by_baseline"] >= 4
    assert (
        summary == f"no secrets found in 3 file(s); {report['suppressed_by_baseline']} suppressed by .secrets.baseline"
    )
    assert report["baseline"] == ".secrets.baseline"
    (workspace / "later.py").write_text(f'KEY = "{LATER}"\n')
    report, _ = await scan(client)
    assert [(s["path"], s["type"]) for s in report["secrets"]] == [("later.py", "AWS Access Key")]
    unfiltered, _ = await scan(client, baseline=None)
    assert unfiltered["suppressed_by_baseline"] == 0 and len(unfiltered["secrets"]) >= 5


async def test_other_kinds_of_secret_and_where_they_hide(tmp_path: Path) -> None:
    root = tmp_path / "other"
    root.mkdir()
    (root / "hashes.py").write_text(f'checksum = "{HEX}"\nblob = "{BASE64}"\n')
    (root / ".env").write_text(f"AWS_ACCESS_KEY_ID={DOTENV}\n")
    (root / "app.yaml").write_text(f'password: "s3cr3t\\u0041{ESCAPED}"\n')
    (root / "big.py").write_text(f'KEY = "{LATER}"\n' + "# padding\n" * 100)
    async with serving(root, toolsets=["code"], max_file_bytes=400) as client:
        report, summary = await scan(client)
    found = {(s["path"], s["line"], s["type"]) for s in report["secrets"]}
    assert found == {
        ("hashes.py", 1, "Hex High Entropy String"),
        ("hashes.py", 2, "Base64 High Entropy String"),
        (".env", 1, "AWS Access Key"),
        ("app.yaml", 1, "Secret Keyword"),
    }
    escaped = next(s for s in report["secrets"] if s["path"] == "app.yaml")
    assert escaped["redacted"] == "<redacted>"  # the secret is not in the line as written: nothing of it is shown
    size = (root / "big.py").stat().st_size
    assert report["skipped"] == [f"big.py: {size} bytes, over the 400-byte limit (max_file_bytes)"]
    assert report["files_scanned"] == 3 and summary.splitlines()[0].endswith("; 1 file(s) skipped")


def test_redaction_masks_overlapping_and_repeated_secrets() -> None:
    line = 'a = "ABCDEFGHIJKLMNOPQRST" + "ABCDEFGHIJKLMNOPQRST"'
    assert redact(line, ["ABCDEFGHIJKL", "IJKLMNOPQRST"]) == 'a = "AB********" + "AB********"'
    assert redact('pw = "short"', ["short"]) == 'pw = "********"'
    assert redact('pw = "decoded"', ["other"]) == "<redacted>"
    assert redact("x", [None]) == "<redacted>"


async def test_bad_baselines_are_errors(client: Client, workspace: Path) -> None:
    for corrupt in ("{not json", "[]", '{"results": {"config.py": "x"}}', '{"results": {"a.py": [{"type": "T"}]}}'):
        (workspace / ".secrets.baseline").write_text(corrupt)
        assert ".secrets.baseline is not a detect-secrets baseline" in await refused(client, "scan_secrets"), corrupt
    assert "no baseline file 'other.baseline'" in await refused(client, "scan_secrets", baseline="other.baseline")
    assert "outside the workspace" in await refused(client, "scan_secrets", baseline="../x.baseline")


@pytest.mark.parametrize(
    "settings",
    [
        {"plugins_used": [{"name": "Evil", "path": "file://./evil.py"}]},
        {"plugins_used": [{"name": "Evil", "path": "XXXXXXX./evil.py"}]},  # detect-secrets cuts 7 characters, any
        {"plugins_used": [{"name": "AWSKeyDetector"}], "filters_used": [{"path": "file://./evil.py::f"}]},
        {"plugins_used": [{"name": "AWSKeyDetector"}], "filters_used": [{"path": "evil.f"}]},
        {"plugins_used": [{"name": "NoSuchDetector"}]},
    ],
)
async def test_baselines_naming_code_to_run_are_refused(client: Client, workspace: Path, settings: dict) -> None:
    (workspace / ".secrets.baseline").write_text(json.dumps({**settings, "results": {}}))
    (workspace / "evil.py").write_text(f"open({str(workspace / 'PWNED')!r}, 'w')\ndef f(line): return True\n")
    message = await refused(client, "scan_secrets")
    assert "not one of detect-secrets' own" in message and "would run code from the repository" in message
    assert not (workspace / "PWNED").exists()


async def test_a_baselines_settings_are_honoured(client: Client, workspace: Path, tmp_path: Path) -> None:
    only_aws = {"plugins_used": [{"name": "AWSKeyDetector"}], "results": {}}
    (workspace / ".secrets.baseline").write_text(json.dumps(only_aws))
    report, _ = await scan(client)
    assert report["counts"] == {"AWS Access Key": 1} and report["baseline"] == ".secrets.baseline"
    filters_only = {"filters_used": [{"path": "detect_secrets.filters.allowlist.is_line_allowlisted"}], "results": {}}
    (workspace / ".secrets.baseline").write_text(json.dumps(filters_only))
    report, _ = await scan(client)  # no plugin list: every plugin, as detect-secrets does
    assert {"AWS Access Key", "Secret Keyword", "Private Key"} <= set(report["counts"])
    (tmp_path / "words.txt").write_text("akiaz4\n")
    wordlist = {"path": "detect_secrets.filters.wordlist.should_exclude_secret", "min_length": 3, "file_hash": ""}
    outside = {**only_aws, "filters_used": [{**wordlist, "file_name": "../words.txt"}]}
    (workspace / ".secrets.baseline").write_text(json.dumps(outside))
    assert "outside the workspace" in await refused(client, "scan_secrets")


@pytest.fixture
def repository(workspace: Path) -> Path:
    git(workspace, "init", "-q")
    git(workspace, "add", "config.py", "clean.py")
    git(workspace, "commit", "-qm", "old secrets")
    return workspace


async def test_diff_modes_scan_only_added_lines(client: Client, repository: Path) -> None:
    (repository / "clean.py").write_text(f'VALUE = 1\nOTHER = 2\nKEY = "{LATER}"\n')
    git(repository, "add", "clean.py")
    staged, summary = await scan(client, diff="staged")
    assert [(s["path"], s["line"], s["type"]) for s in staged["secrets"]] == [("clean.py", 3, "AWS Access Key")]
    assert staged["mode"] == "staged" and staged["files_scanned"] == 1 and summary.startswith("1 secret(s)")

    (repository / "config.py").write_text(CONFIG + f'again = "{GITHUB}"\n')
    working, _ = await scan(client, diff="working")
    places = {(s["path"], s["line"]) for s in working["secrets"]}
    assert ("clean.py", 3) in places and ("config.py", 5) in places
    assert ("id_rsa", 1) in places  # untracked files count whole in working mode
    assert not any(line in (1, 2, 3) for path, line in places if path == "config.py")  # committed, not added
    assert ("config.py", 5) not in {(s["path"], s["line"]) for s in (await scan(client, diff="staged"))[0]["secrets"]}

    git(repository, "commit", "-qam", "more")
    against, _ = await scan(client, diff="HEAD~1", paths=["clean.py"])
    assert [(s["path"], s["line"]) for s in against["secrets"]] == [("clean.py", 3)]


async def test_diff_mode_refuses_bad_revisions(client: Client, repository: Path, tmp_path: Path) -> None:
    out = tmp_path / "written"
    for bad in (f"--output={out}", "-x", "HEAD;rm -rf /", "a b", "HEAD..main"):
        assert "invalid revision" in await refused(client, "scan_secrets", diff=bad), bad
    assert "no commit 'nope'" in await refused(client, "scan_secrets", diff="nope")
    assert not out.exists()


async def test_diff_mode_needs_a_repository(client: Client) -> None:
    assert "not in a git repository" in await refused(client, "scan_secrets", diff="staged")


async def test_run_all_validations_fails_on_a_secret(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(f'"""An app."""\n\nKEY = "{AWS}"\n')
    async with serving(tmp_path, toolsets=["code"]) as client:
        report = await call(client, "run_all_validations", skip=["tests"])
        summary = await text(client, "run_all_validations", skip=["tests", "lint", "format", "syntax"])
    secrets = next(s for s in report["steps"] if s["name"] == "secrets")
    assert secrets["status"] == "failed" and secrets["details"] == ["app.py:3: AWS Access Key"]
    assert not report["ok"] and AWS not in json.dumps(report)
    assert summary.startswith("FAILED: secrets (1 secret(s) in 1 file(s) (AWS Access Key x1))")
