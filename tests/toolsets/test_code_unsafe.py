"""scan_unsafe through a real MCP client: every shipped rule flags its unsafe snippets and leaves close, safe ones
alone; project rules add, replace and disable; bad rules are clear errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client

from tandem.toolsets.code.unsafe_scan import shipped_rules
from tests.toolsets.calls import call, refused, serving, text

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Case:
    suffix: str
    unsafe: str
    """Code the rule must flag: on each line marked FLAG (in a comment) and on no other."""
    safe: str
    """Close code the rule must leave alone."""

    def flagged_lines(self) -> list[int]:
        return [n for n, line in enumerate(self.unsafe.split("\n"), 1) if "FLAG" in line]


CASES: dict[str, Case] = {
    "python-subprocess-shell": Case(
        ".py",
        "import subprocess\nimport subprocess as sp\nsubprocess.run(cmd, shell=True)  # FLAG\n"
        "sp.Popen(  # FLAG\n    cmd,\n    shell=True,\n)\n",
        "import subprocess\nsubprocess.run(['ls', '-l'], shell=False)\nrun(cmd, shell='/bin/bash')\n",
    ),
    "python-subprocess-getoutput": Case(
        ".py",
        "import subprocess\nout = subprocess.getoutput('ls ' + folder)  # FLAG\n"
        "status, out = subprocess.getstatusoutput(cmd)  # FLAG\n",
        "import subprocess\nout = subprocess.run(['ls', folder], capture_output=True)\n",
    ),
    "python-os-system": Case(
        ".py", "import os\nos.system('rm -rf ' + path)  # FLAG\n", "import platform\nplatform.system()\n"
    ),
    "python-os-popen": Case(
        ".py", "import os\nos.popen(cmd).read()  # FLAG\n", "import os\nos.open(path, os.O_RDONLY)\n"
    ),
    "python-eval-exec": Case(
        ".py",
        "eval(user_input)  # FLAG\nexec(f'run({x})')  # FLAG\n"
        "eval(  # FLAG\n    # a comment first\n    expression,\n)\n",
        "eval('1 + 2')\nexec('pass')\nexec(f'constant')\nmodel.eval(batch)\neval(  # a comment first\n    '1'\n)\n",
    ),
    "python-yaml-load": Case(
        ".py",
        "import yaml\nyaml.load(data)  # FLAG\nyaml.load_all(f, Loader=yaml.FullLoader)  # FLAG\n",
        "import yaml\nyaml.load(data, Loader=yaml.SafeLoader)\nyaml.load(f, yaml.CSafeLoader)\n",
    ),
    "python-yaml-unsafe-load": Case(
        ".py", "import yaml\nyaml.unsafe_load(data)  # FLAG\n", "import yaml\nyaml.safe_load(data)\n"
    ),
    "python-unsafe-deserialization": Case(
        ".py",
        "obj = pickle.loads(blob)  # FLAG\ncode = marshal.load(f)  # FLAG\ndb = shelve.open(path)  # FLAG\n",
        "obj = json.loads(blob)\nblob = pickle.dumps(obj)\n",
    ),
    "python-sql-string-formatting": Case(
        ".py",
        'cursor.execute("SELECT * FROM users WHERE id = %s" % uid)  # FLAG\n'
        'cursor.execute(f"DELETE FROM t WHERE n = {n}")  # FLAG\n'
        'cursor.execute("SELECT * FROM t WHERE a = \'" + a + "\'")  # FLAG\n'
        'cursor.executemany("INSERT INTO {} VALUES (?)".format(table), rows)  # FLAG\n',
        'cursor.execute("SELECT * FROM users WHERE id = %s", (uid,))\ncursor.execute("SELECT 1 " + "FROM t")\n'
        'cursor.execute(query, params)\ncursor.execute(f"SELECT 1")\n',
    ),
    "python-tempfile-mktemp": Case(
        ".py",
        "import tempfile\nname = tempfile.mktemp()  # FLAG\n"
        "from tempfile import mktemp\nmktemp(suffix='.txt')  # FLAG\n",
        "import tempfile\ntempfile.mkstemp()\ntempfile.mkdtemp()\n",
    ),
    "python-tls-verify-disabled": Case(
        ".py",
        "requests.get(url, verify=False)  # FLAG\nsession.post(url, json=body, verify=False)  # FLAG\n"
        "client = httpx.Client(verify=False)  # FLAG\n",
        "requests.get(url, verify=True)\nrequests.get(url, verify='/etc/ssl/ca.pem')\n",
    ),
    "python-weak-hash": Case(
        ".py",
        "hashlib.md5(password)  # FLAG\nhashlib.new('sha1', data)  # FLAG\nhashlib.new(\"MD5\")  # FLAG\n",
        "hashlib.md5(data, usedforsecurity=False)\nhashlib.sha256(password)\nhashlib.new('sha256')\n",
    ),
    "js-eval": Case(
        ".js",
        "eval(userCode); // FLAG\neval(`return ${x}`); // FLAG\n",
        'eval("2 + 2");\neval(`2 + 2`);\nobj.eval(code);\n',
    ),
    "js-new-function": Case(
        ".ts",
        'const f = new Function("a", body); // FLAG\nconst g = Function(...names, `return ${x}`); // FLAG\n',
        "const f = new Foo(a);\nconst g = makeFunction(body);\nconst global = Function('return this')();\n",
    ),
    "js-child-process-exec": Case(
        ".js",
        "const cp = require('child_process');\ncp.exec(`ls ${dir}`); // FLAG\n"
        "require('child_process').execSync('rm -rf ' + dir); // FLAG\n"
        "const { exec } = require('child_process');\nexec(command); // FLAG\n",
        "const cp = require('child_process');\ncp.execFile('ls', [dir]);\ncp.exec('ls -l');\n/a+/.exec(text);\n",
    ),
    "js-inner-html": Case(
        ".tsx",
        "el.innerHTML = html; // FLAG\nel.outerHTML += `<b>${name}</b>`; // FLAG\nconst b = <b>{name}</b>;\n",
        'el.innerHTML = "<b>static</b>";\nel.textContent = html;\nconst h = el.innerHTML;\n',
    ),
    "js-document-write": Case(
        ".jsx",
        "const p = <p>{x}</p>;\ndocument.write(x); // FLAG\ndocument.writeln(`<p>${x}</p>`); // FLAG\n",
        "console.log(x);\nconst p = <p>{x}</p>;\n",
    ),
}


def test_every_shipped_rule_has_a_case() -> None:
    assert sorted(CASES) == sorted(r.id for r in shipped_rules())
    assert all(case.flagged_lines() for case in CASES.values())


@pytest.mark.parametrize("rule_id", sorted(CASES))
async def test_a_shipped_rule_flags_its_unsafe_case_and_not_its_safe_one(tmp_path: Path, rule_id: str) -> None:
    case = CASES[rule_id]
    (tmp_path / f"unsafe{case.suffix}").write_text(case.unsafe)
    (tmp_path / f"safe{case.suffix}").write_text(case.safe)
    async with serving(tmp_path, toolsets=["code"]) as client:
        report = await call(client, "scan_unsafe")
    flagged = [(f["path"], f["line"]) for f in report["findings"] if f["rule"] == rule_id]
    assert flagged == [(f"unsafe{case.suffix}", line) for line in case.flagged_lines()]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for rule_id, case in CASES.items():
        (root / f"unsafe_{rule_id}{case.suffix}").write_text(case.unsafe)
        (root / f"safe_{rule_id}{case.suffix}").write_text(case.safe)
    (root / "notes.md").write_text("os.system(cmd) in prose is not code\n")
    return root


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["code"]) as connected:
        yield connected


async def test_the_whole_tree_with_every_rule(client: Client) -> None:
    report = await call(client, "scan_unsafe")
    assert report["files_scanned"] == 2 * len(CASES)  # notes.md has no language a rule applies to
    assert report["counts"] == {rule_id: len(case.flagged_lines()) for rule_id, case in CASES.items()}
    assert report["total"] == sum(report["counts"].values()) == len(report["findings"])
    assert report["files_with_findings"] == len(CASES)
    assert {r["origin"] for r in report["rules"]} == {"shipped"}
    assert sorted(r["id"] for r in report["rules"]) == sorted(CASES)
    first = next(f for f in report["findings"] if f["rule"] == "python-os-system")
    assert first["severity"] == "warning" and "subprocess.run" in first["note"] and "/bin/sh" in first["message"]


async def test_position_and_snippet(client: Client, workspace: Path) -> None:
    (workspace / "app.py").write_text(
        "def run(cmd):\n    label = 'naïve → ✓'; os.system(cmd)\n    if cmd:\n"
        "        subprocess.run(\n            cmd,\n            shell=True,\n        )\n"
    )
    report = await call(client, "scan_unsafe", paths=["app.py"])
    assert [(f["rule"], f["line"], f["column"], f["end_line"], f["snippet"]) for f in report["findings"]] == [
        ("python-os-system", 2, 26, 2, "label = 'naïve → ✓'; os.system(cmd)"),
        ("python-subprocess-shell", 4, 9, 7, "subprocess.run(\n    cmd,\n    shell=True,\n)"),
    ]


async def test_summary(client: Client, workspace: Path) -> None:
    (workspace / "a.py").write_text("eval(x)\nexec(y)\nos.system(z)\n")
    (workspace / "b.py").write_text("eval(w)\n")
    summary = await text(client, "scan_unsafe", paths=["a.py", "b.py"])
    assert summary.splitlines()[0] == "4 unsafe pattern(s) in 2 file(s) (python-eval-exec x3, python-os-system x1)"
    assert summary.splitlines()[1] == "a.py:1:1: error python-eval-exec: " + shipped_message("python-eval-exec")
    clean = await text(client, "scan_unsafe", paths=["safe_js-eval.js", "safe_python-eval-exec.py"])
    assert clean == f"no unsafe patterns in 2 file(s) ({len(CASES)} rules)"


def shipped_message(rule_id: str) -> str:
    return next(r.message for r in shipped_rules() if r.id == rule_id)


async def test_filters_and_the_cap(client: Client) -> None:
    errors = await call(client, "scan_unsafe", min_severity="error")
    assert {f["severity"] for f in errors["findings"]} == {"error"}
    assert {r["severity"] for r in errors["rules"]} == {"error"}
    only = await call(client, "scan_unsafe", rules=["js-eval"])
    assert only["counts"] == {"js-eval": 2} and [r["id"] for r in only["rules"]] == ["js-eval"]
    # the JavaScript and TypeScript files only: no other language has a rule in this scan
    assert only["files_scanned"] == 2 * sum(case.suffix != ".py" for case in CASES.values())
    assert "unknown rule ids: nope" in await refused(client, "scan_unsafe", rules=["nope"])
    capped = await call(client, "scan_unsafe", max_results=3)
    assert len(capped["findings"]) == 3 and capped["truncated"] and capped["total"] > 3
    assert capped["total"] == sum(capped["counts"].values())


@pytest.mark.parametrize("path", ["../x", "..", "/etc/passwd", "unsafe_js-eval.js/../../outside.py"])
async def test_a_path_out_of_the_workspace_is_refused(client: Client, path: str) -> None:
    assert "outside the workspace" in await refused(client, "scan_unsafe", paths=[path])


async def test_ignore_comments(client: Client, workspace: Path) -> None:
    (workspace / "quiet.py").write_text(
        "import os\nos.system(a)  # tandem-ignore\nos.system(b)\n# tandem-ignore: python-os-system\nos.system(c)\n"
        "os.system(d)  # tandem-ignore: python-eval-exec\n"
    )
    report = await call(client, "scan_unsafe", paths=["quiet.py"])
    # a trailing comment covers its own line only; a comment line covers the line under it
    assert [f["line"] for f in report["findings"]] == [3, 6] and report["suppressed"] == 2
    assert "2 silenced by tandem-ignore" in await text(client, "scan_unsafe", paths=["quiet.py"])


async def test_project_rules_add_replace_and_disable(client: Client, workspace: Path) -> None:
    rules = workspace / ".tandem" / "rules"
    rules.mkdir(parents=True)
    (rules / "house.yml").write_text(
        "id: no-print\nlanguage: python\nseverity: info\nmessage: use logging\nnote: logger.info(...)\n"
        "rule: {pattern: print($$$A)}\n"
        "---\nid: python-os-system\nlanguage: python\nseverity: error\nmessage: never os.system here\n"
        "rule: {pattern: os.system($$$)}\n---\ndisable: [js-eval, python-eval-exec]\n"
    )
    (rules / "web.yaml").write_text(
        "id: no-alert\nlanguage: [javascript, typescript]\nmessage: no alert boxes\nrule: {pattern: alert($$$)}\n"
    )
    (rules / "README.txt").write_text("not a rule file: only .yml and .yaml are read\n")
    (workspace / "app.py").write_text("import os\nprint('hi')\nos.system('ls')\neval(x)\n")
    (workspace / "web.js").write_text("alert(1);\n")
    (workspace / "web.ts").write_text("alert('x' as string);\n")
    report = await call(client, "scan_unsafe")
    origins = {r["id"]: r["origin"] for r in report["rules"]}
    assert origins["no-print"] == origins["python-os-system"] == ".tandem/rules/house.yml"
    assert origins["no-alert"] == ".tandem/rules/web.yaml" and origins["python-weak-hash"] == "shipped"
    assert "js-eval" not in origins and "python-eval-exec" not in origins
    assert "js-eval" not in report["counts"] and "python-eval-exec" not in report["counts"]
    mine = [(f["path"], f["rule"], f["severity"], f["message"], f["note"]) for f in report["findings"]]
    assert [m for m in mine if m[0] in ("app.py", "web.js", "web.ts")] == [
        ("app.py", "no-print", "info", "use logging", "logger.info(...)"),
        ("app.py", "python-os-system", "error", "never os.system here", ""),
        ("web.js", "no-alert", "warning", "no alert boxes", ""),
        ("web.ts", "no-alert", "warning", "no alert boxes", ""),
    ]
    assert report["counts"]["python-os-system"] == 2  # the replacement still finds the shipped case


async def test_project_rules_with_no_literal_text_still_match(client: Client, workspace: Path) -> None:
    # a file is parsed only when it holds the text a rule needs: rules that need none, or need it in
    # any case, must still see every file
    rules = workspace / ".tandem" / "rules"
    rules.mkdir(parents=True)
    (rules / "shapes.yml").write_text(
        "id: bare-except\nlanguage: python\nmessage: name the exception\n"
        "rule: {kind: except_clause, not: {has: {kind: identifier}}}\n"
        "---\nid: loud-name\nlanguage: python\nmessage: a shouted name\n"
        "rule: {kind: identifier, regex: '(?i)^danger$'}\n"
        "---\nid: via-util\nlanguage: python\nmessage: a risky call\nrule: {matches: risky}\n"
        "utils: {risky: {kind: call, has: {field: function, regex: '^risk(y|ier)$'}}}\n"
        "---\nid: any-of\nlanguage: python\nmessage: either\nrule: {any: [{pattern: foo($A)}, {kind: lambda}]}\n"
        "---\nid: unsafe-call\nlanguage: python\nmessage: not a safe_ call\n"
        "rule: {kind: call, not: {has: {field: function, regex: '^safe_'}}}\n"
    )
    (workspace / "odd.py").write_text("try:\n    pass\nexcept:\n    DANGER = riskier()\nf = lambda: 0\n")
    report = await call(client, "scan_unsafe", paths=["odd.py"])
    assert [(f["rule"], f["line"]) for f in report["findings"]] == [
        ("bare-except", 3),
        ("loud-name", 4),
        ("unsafe-call", 4),
        ("via-util", 4),
        ("any-of", 5),
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("id: x\nlanguage: python\nmessage: m\nrule: {kind: no_such_kind}\n", "Kind `no_such_kind` is invalid"),
        ("id: x\nlanguage: python\nmessage: m\nrule: {regex: '(unclosed'}\n", "regex parse error"),
        ("id: x\nlanguage: python\nmessage: m\nrule: {pattern: 'a b c'}\n", "Multiple AST nodes"),
        ("id: x\nlanguage: python\nmessage: m\nrule: {matches: nowhere}\n", "Rule `nowhere` is not defined"),
        ("id: x\nlanguage: python\nmessage: m\nrule: {patern: a}\n", "unknown field `patern`"),
        ("id: x\nlanguage: cobol\nmessage: m\nrule: {pattern: a}\n", "unknown language cobol"),
        ("id: x\nlanguage: {python: 1}\nmessage: m\nrule: {pattern: a}\n", "unknown language"),
        ("id: x\nmessage: m\nrule: {pattern: a}\n", "'language' is missing"),
        ("id: x\nlanguage: python\nrule: {pattern: a}\n", "'message' is missing"),
        ("id: x\nlanguage: python\nmessage: m\n", "'rule' is missing"),
        ("language: python\nmessage: m\nrule: {pattern: a}\n", "every rule needs an 'id'"),
        ("id: x\nlanguage: python\nmessage: m\nseverity: fatal\nrule: {pattern: a}\n", "severity is one of"),
        ("id: x\nlanguage: python\nmessage: m\nfix: y\nrule: {pattern: a}\n", "unknown keys fix"),
        (
            "id: x\nlanguage: python\nmessage: m\nrule: {pattern: a}\n---\nid: x\nlanguage: python\nmessage: n\n"
            "rule: {pattern: b}\n",
            "the id is used twice",
        ),
        ("disable: js-eval\n", "'disable' takes a list of rule ids"),
        ("id: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
async def test_bad_project_rules_are_clear_errors(client: Client, workspace: Path, content: str, reason: str) -> None:
    rules = workspace / ".tandem" / "rules"
    rules.mkdir(parents=True)
    (rules / "bad.yml").write_text(content)
    message = await refused(client, "scan_unsafe")
    assert reason in message and ".tandem/rules/bad.yml" in message, message
    if "id: x" in content:
        assert "rule 'x' in .tandem/rules/bad.yml" in message, message
    assert "Stack backtrace" not in message


async def test_one_id_in_two_project_files_is_an_error(client: Client, workspace: Path) -> None:
    rules = workspace / ".tandem" / "rules"
    rules.mkdir(parents=True)
    for name in ("a.yml", "b.yml"):
        (rules / name).write_text("id: dup\nlanguage: python\nmessage: m\nrule: {pattern: a}\n")
    message = await refused(client, "scan_unsafe")
    assert "rule 'dup' in .tandem/rules/b.yml" in message and "already defined in .tandem/rules/a.yml" in message


async def test_a_rules_folder_linked_out_of_the_workspace_is_refused(
    client: Client, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "r.yml").write_text("id: x\nlanguage: python\nmessage: m\nrule: {pattern: a}\n")
    (workspace / ".tandem").mkdir()
    (workspace / ".tandem" / "rules").symlink_to(outside)
    assert "outside the workspace" in await refused(client, "scan_unsafe")


async def test_a_rule_file_linked_out_of_the_workspace_is_refused(
    client: Client, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.yml"
    outside.write_text("id: x\nlanguage: python\nmessage: m\nrule: {pattern: a}\n")
    (workspace / ".tandem" / "rules").mkdir(parents=True)
    (workspace / ".tandem" / "rules" / "linked.yml").symlink_to(outside)
    assert "outside the workspace" in await refused(client, "scan_unsafe")


async def test_a_large_tree_scans_in_worker_processes_with_the_same_answer(tmp_path: Path) -> None:
    for i in range(650):
        (tmp_path / f"m{i:04d}.py").write_text(f"import os\n\ndef f{i}():\n    os.system('x{i}')\n" * (i % 3 == 0))
    async with serving(tmp_path, toolsets=["code"]) as client:
        report = await call(client, "scan_unsafe", max_results=10_000)
    assert report["files_scanned"] == 650 and report["counts"] == {"python-os-system": 217}
    assert report["files_with_findings"] == 217
    assert [f["path"] for f in report["findings"]] == sorted(f["path"] for f in report["findings"])
    assert {(f["line"], f["column"]) for f in report["findings"]} == {(4, 5)}
