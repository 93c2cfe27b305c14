"""scan_unsafe through a real MCP client: every shipped rule flags its unsafe snippet and leaves a close, safe one
alone; project rules add, replace and disable; bad rules are clear errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from tandem.toolsets.code.unsafe_scan import shipped_rules
from tests.toolsets.calls import call, refused, serving, text

pytestmark = pytest.mark.anyio

# rule id -> (file suffix, code it must flag, close code it must leave alone)
CASES: dict[str, tuple[str, str, str]] = {
    "python-subprocess-shell": (
        ".py",
        "import subprocess\nsubprocess.run(cmd, shell=True)\n",
        "import subprocess\nsubprocess.run(['ls', '-l'], shell=False)\n",
    ),
    "python-subprocess-getoutput": (
        ".py",
        "import subprocess\nout = subprocess.getoutput('ls ' + folder)\n",
        "import subprocess\nout = subprocess.run(['ls', folder], capture_output=True)\n",
    ),
    "python-os-system": (".py", "import os\nos.system('rm -rf ' + path)\n", "import platform\nplatform.system()\n"),
    "python-os-popen": (".py", "import os\nos.popen(cmd).read()\n", "import os\nos.open(path, os.O_RDONLY)\n"),
    "python-eval-exec": (".py", "eval(user_input)\nexec(f'run({x})')\n", "eval('1 + 2')\nexec('pass')\n"),
    "python-yaml-load": (
        ".py",
        "import yaml\nyaml.load(data)\n",
        "import yaml\nyaml.load(data, Loader=yaml.SafeLoader)\n",
    ),
    "python-yaml-unsafe-load": (".py", "import yaml\nyaml.unsafe_load(data)\n", "import yaml\nyaml.safe_load(data)\n"),
    "python-unsafe-deserialization": (
        ".py",
        "import pickle\nobj = pickle.loads(blob)\n",
        "import json\nobj = json.loads(blob)\n",
    ),
    "python-sql-string-formatting": (
        ".py",
        'cursor.execute("SELECT * FROM users WHERE id = %s" % uid)\ncursor.execute(f"DELETE FROM t WHERE n = {n}")\n',
        'cursor.execute("SELECT * FROM users WHERE id = %s", (uid,))\ncursor.execute("SELECT 1 " + "FROM t")\n',
    ),
    "python-tempfile-mktemp": (
        ".py",
        "import tempfile\nname = tempfile.mktemp()\n",
        "import tempfile\ntempfile.mkstemp()\n",
    ),
    "python-tls-verify-disabled": (
        ".py",
        "import requests\nrequests.get(url, verify=False)\n",
        "import requests\nrequests.get(url, verify=True)\n",
    ),
    "python-weak-hash": (
        ".py",
        "import hashlib\nhashlib.md5(password)\nhashlib.new('sha1', data)\n",
        "import hashlib\nhashlib.md5(data, usedforsecurity=False)\nhashlib.sha256(password)\n",
    ),
    "js-eval": (".js", "eval(userCode);\n", 'eval("2 + 2");\n'),
    "js-new-function": (".ts", 'const f = new Function("a", body);\n', "const f = new Foo(a);\n"),
    "js-child-process-exec": (
        ".js",
        "const cp = require('child_process');\ncp.exec(`ls ${dir}`);\n",
        "const cp = require('child_process');\ncp.execFile('ls', [dir]);\n",
    ),
    "js-inner-html": (".js", "el.innerHTML = html;\n", 'el.innerHTML = "<b>static</b>";\nel.textContent = html;\n'),
    "js-document-write": (".jsx", "document.write(x);\n", "console.log(x);\n"),
}


def test_every_shipped_rule_has_a_case() -> None:
    assert sorted(CASES) == sorted(r.id for r in shipped_rules())


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for rule_id, (suffix, unsafe, safe) in CASES.items():
        (root / f"unsafe_{rule_id}{suffix}").write_text(unsafe)
        (root / f"safe_{rule_id}{suffix}").write_text(safe)
    return root


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["code"]) as connected:
        yield connected


async def test_each_rule_flags_its_unsafe_case_and_not_its_safe_one(client: Client) -> None:
    report = await call(client, "scan_unsafe")
    found: dict[str, set[str]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["path"], set()).add(finding["rule"])
    for rule_id, (suffix, *_) in CASES.items():
        assert rule_id in found.get(f"unsafe_{rule_id}{suffix}", set()), f"{rule_id} missed its unsafe case"
        assert rule_id not in found.get(f"safe_{rule_id}{suffix}", set()), f"{rule_id} flagged its safe case"
    assert report["files_scanned"] == 2 * len(CASES)
    assert report["counts"]["python-eval-exec"] == 2 and report["counts"]["python-sql-string-formatting"] == 2
    first = next(f for f in report["findings"] if f["rule"] == "python-os-system")
    assert (first["line"], first["column"], first["code"]) == (2, 1, "os.system('rm -rf ' + path)")
    assert first["severity"] == "warning" and "subprocess.run" in first["note"]


async def test_summary_filters_and_paths(client: Client, workspace: Path) -> None:
    summary = await text(client, "scan_unsafe", paths=["unsafe_python-os-system.py", "safe_python-os-system.py"])
    assert summary.splitlines()[0] == "1 unsafe pattern(s) in 1 file(s): python-os-system x1"
    clean = await text(client, "scan_unsafe", paths=["safe_js-eval.js"])
    assert clean.startswith("no unsafe patterns in 1 file(s)")
    errors = await call(client, "scan_unsafe", min_severity="error")
    assert {f["severity"] for f in errors["findings"]} == {"error"}
    only = await call(client, "scan_unsafe", rules=["js-eval"])
    assert set(only["counts"]) == {"js-eval"} and [r["id"] for r in only["rules"]] == ["js-eval"]
    assert "unknown rule ids: nope" in await refused(client, "scan_unsafe", rules=["nope"])
    assert "outside the workspace" in await refused(client, "scan_unsafe", paths=["../"])
    capped = await call(client, "scan_unsafe", max_results=3)
    assert len(capped["findings"]) == 3 and capped["truncated"] and sum(capped["counts"].values()) > 3


async def test_ignore_comments(client: Client, workspace: Path) -> None:
    (workspace / "quiet.py").write_text(
        "import os\nos.system(a)  # tandem-ignore\n# tandem-ignore: python-os-system\nos.system(b)\n"
        "os.system(c)  # tandem-ignore: python-eval-exec\n"
    )
    report = await call(client, "scan_unsafe", paths=["quiet.py"])
    assert [f["line"] for f in report["findings"]] == [5] and report["suppressed"] == 2


async def test_project_rules_add_replace_and_disable(client: Client, workspace: Path) -> None:
    rules = workspace / ".tandem" / "rules"
    rules.mkdir(parents=True)
    (rules / "house.yml").write_text(
        "id: no-print\nlanguage: python\nseverity: info\nmessage: use logging\nrule: {pattern: print($$$A)}\n"
        "---\nid: python-os-system\nlanguage: python\nseverity: error\nmessage: never os.system here\n"
        "rule: {pattern: os.system($$$)}\n---\ndisable: [js-eval]\n"
    )
    (workspace / "app.py").write_text("import os\nprint('hi')\nos.system('ls')\n")
    report = await call(client, "scan_unsafe")
    origins = {r["id"]: r["origin"] for r in report["rules"]}
    assert origins["no-print"] == ".tandem/rules/house.yml" and origins["python-os-system"] == ".tandem/rules/house.yml"
    assert "js-eval" not in origins and "js-eval" not in report["counts"]
    mine = [f for f in report["findings"] if f["path"] == "app.py"]
    assert [(f["rule"], f["severity"], f["message"]) for f in mine] == [
        ("no-print", "info", "use logging"),
        ("python-os-system", "error", "never os.system here"),
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("id: x\nlanguage: python\nmessage: m\nrule: {kind: no_such_kind}\n", "rule 'x' in .tandem/rules/bad.yml"),
        ("id: x\nlanguage: cobol\nmessage: m\nrule: {pattern: a}\n", "unknown language cobol"),
        ("id: x\nlanguage: python\nrule: {pattern: a}\n", "'message' is missing"),
        ("language: python\nmessage: m\nrule: {pattern: a}\n", "every rule needs an 'id'"),
        ("id: x\nlanguage: python\nmessage: m\nseverity: fatal\nrule: {pattern: a}\n", "severity is one of"),
        ("id: x\nlanguage: python\nmessage: m\nfix: y\nrule: {pattern: a}\n", "unknown keys fix"),
        ("id: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
async def test_bad_project_rules_are_clear_errors(client: Client, workspace: Path, content: str, reason: str) -> None:
    rules = workspace / ".tandem" / "rules"
    rules.mkdir(parents=True)
    (rules / "bad.yml").write_text(content)
    message = await refused(client, "scan_unsafe")
    assert reason in message and "bad.yml" in message, message


async def test_a_rules_folder_linked_out_of_the_workspace_is_refused(
    client: Client, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "r.yml").write_text("id: x\nlanguage: python\nmessage: m\nrule: {pattern: a}\n")
    (workspace / ".tandem").mkdir()
    (workspace / ".tandem" / "rules").symlink_to(outside)
    assert "outside the workspace" in await refused(client, "scan_unsafe")


async def test_a_large_tree_scans_in_worker_processes_with_the_same_answer(tmp_path: Path) -> None:
    for i in range(650):
        (tmp_path / f"m{i:04d}.py").write_text(f"import os\n\ndef f{i}():\n    os.system('x{i}')\n" * (i % 3 == 0))
    async with serving(tmp_path, toolsets=["code"]) as client:
        report = await call(client, "scan_unsafe", max_results=10_000)
    assert report["files_scanned"] == 650 and report["counts"] == {"python-os-system": 217}
    assert [f["path"] for f in report["findings"]] == sorted(f["path"] for f in report["findings"])
