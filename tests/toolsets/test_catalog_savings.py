"""``tandem catalog savings`` on the fixture corpus, run as a user runs it: every figure recounted here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tandem.toolsets.catalog.savings import SavingsError, load_queries

CORPUS = Path(__file__).parent.parent / "fixtures" / "catalog"
SAVED_FLOOR = 47.0
"""What the built-in query set saves on the fixture corpus at the default limit (48.0%); a change that costs more
tokens than that fails."""


def savings(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "MCP_"))}
    return subprocess.run(
        [sys.executable, "-m", "tandem", "catalog", "savings", "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "HOME": str(workspace)},
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(".tandem"))
    return target


def test_savings_per_query_and_in_total(workspace: Path) -> None:
    done = savings(workspace, "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["indexed"] == {"agents": 77, "skills": 38, "workflows": 24}
    assert len(figures["queries"]) == len(load_queries(None)) == 25
    # The totals are what the per-query figures add up to, one query per turn.
    turns, total = len(figures["queries"]), figures["total"]
    answers = sum(q["answer_tokens"] for q in figures["queries"])
    assert total["without_catalog"] == figures["listing_tokens_per_turn"] * turns
    assert total["with_catalog"] == figures["catalog_tool_tokens_per_turn"] * turns + answers
    assert total["saved_tokens"] == total["without_catalog"] - total["with_catalog"]
    assert total["saved_percent"] >= SAVED_FLOOR, total
    assert figures["catalog_tools"] == 14 and all(q["answer_tokens"] > 50 for q in figures["queries"])
    assert {q["top"] for q in figures["queries"][:3]} == {"react-specialist", "python-developer", "security-auditor"}
    # The listing is counted with the real tokenizer: more than a word count, far less than the 1.3 chars/token guess.
    listing_words = sum(len(line.split()) for line in _listing(workspace))
    assert listing_words < figures["listing_tokens_per_turn"] < sum(len(line) for line in _listing(workspace)) / 1.3


def _listing(workspace: Path) -> list[str]:
    from tandem.config import load_settings
    from tandem.toolsets.catalog.savings import full_listing
    from tandem.toolsets.catalog.service import Catalog

    settings = load_settings(workspace)
    catalog = Catalog(workspace, workspace / ".scratch", settings.catalog).start(background=False)
    try:
        text = full_listing(catalog)
    finally:
        catalog.close()
    return text.splitlines()


def test_the_listing_is_every_definition_on_one_line(workspace: Path) -> None:
    lines = _listing(workspace)
    assert sum(line.startswith("- ") for line in lines) == 77 + 38 + 24
    assert "- react-specialist: " in "\n".join(lines) and any(line.startswith("- /release: ") for line in lines)
    # One line per definition, whitespace in descriptions folded: nothing a prompt would not carry.
    assert all("\n" not in line and "  " not in line for line in lines)


def test_the_printed_report_and_other_encodings(workspace: Path) -> None:
    queries = workspace / "mine.yml"
    queries.write_text(yaml.safe_dump([{"kind": "agent", "capability": "kafka"}, {"kind": "workflow", "goal": "ship"}]))
    printed = savings(workspace, "--queries", str(queries), "--limit", "3")
    assert printed.returncode == 0, printed.stderr
    assert "Full listing (77 agents, 38 skills, 24 workflows): " in printed.stdout
    assert "kafka-streaming-engineer" in printed.stdout and "agent: capability='kafka'" in printed.stdout
    assert "2 queries, one per turn: " in printed.stdout and "% fewer)" in printed.stdout
    o200k = json.loads(savings(workspace, "--queries", str(queries), "--json").stdout)
    cl100k = json.loads(savings(workspace, "--queries", str(queries), "--json", "--encoding", "cl100k_base").stdout)
    assert (o200k["encoding"], cl100k["encoding"]) == ("o200k_base", "cl100k_base")
    assert o200k["listing_tokens_per_turn"] != cl100k["listing_tokens_per_turn"]


def test_bad_input_is_one_clear_line(workspace: Path, tmp_path: Path) -> None:
    broken = workspace / "broken.yml"
    broken.write_text("- kind: agent\n  capability: [unclosed\n")
    no_kind = workspace / "no-kind.yml"
    no_kind.write_text("- capability: react\n")
    empty_skill = workspace / "empty-skill.yml"
    empty_skill.write_text("- kind: skill\n")
    for path, message in (
        (broken, "is not valid YAML"),
        (no_kind, "query 1 needs a kind of agent, skill, workflow"),
        (empty_skill, "query 1 (skill) needs a context"),
        (workspace / "missing.yml", "cannot read"),
    ):
        done = savings(workspace, "--queries", str(path))
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    unknown = savings(workspace, "--encoding", "p50k_base")
    assert unknown.returncode == 2 and "unknown encoding 'p50k_base'" in unknown.stderr
    nothing = tmp_path / "empty"
    nothing.mkdir()
    empty = savings(nothing)
    assert empty.returncode == 1 and "nothing indexed" in empty.stderr
    with pytest.raises(SavingsError, match="non-empty YAML list"):
        load_queries(_write(tmp_path / "dict.yml", "kind: agent\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
