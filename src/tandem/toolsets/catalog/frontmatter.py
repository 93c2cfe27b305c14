"""YAML frontmatter, read tolerantly: what can be repaired is repaired and said so; what cannot is said with file,
line and reason, and the file is still read (its name from the file name, its body as the text).

The classic breakage is an unquoted ``: `` inside a value (``description: Expert in billing: Stripe``), which
YAML reads as a nested mapping and refuses; such values are quoted and the file parsed again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # libyaml missing: the pure-Python loader reads the same documents
    _Loader = yaml.SafeLoader

_FENCE = "---"
_PLAIN_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w-]*):[ \t]+(?P<value>\S.*?)\s*$")


@dataclass(frozen=True)
class Diagnostic:
    """Something wrong with a definition file: ``repaired`` (read anyway, as shown) or ``error`` (fields lost)."""

    path: str
    line: int
    severity: Literal["repaired", "error", "duplicate"]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "severity": self.severity, "reason": self.reason}


@dataclass
class Frontmatter:
    fields: dict[str, Any]
    body: str
    body_line: int
    """The 1-based line the body starts on."""
    diagnostics: list[Diagnostic] = field(default_factory=list)


def parse(text: str, path: str) -> Frontmatter:
    """The frontmatter fields and the body of a Markdown file; never raises for bad content."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != _FENCE:
        return Frontmatter({}, text, 1)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in (_FENCE, "...")), None)
    if end is None:
        return Frontmatter(
            {},
            "\n".join(lines[1:]),
            2,
            [Diagnostic(path, 1, "error", "frontmatter opened with '---' on line 1 is never closed; read as body")],
        )
    block = lines[1:end]
    body = "\n".join(lines[end + 1 :]).strip("\n")
    fields, diagnostics = _fields(block, path)
    return Frontmatter(fields, body, end + 2, diagnostics)


def _fields(block: list[str], path: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    source = "\n".join(block)
    try:
        data = yaml.load(source, Loader=_Loader)
    except yaml.YAMLError as exc:
        first_error = exc
    else:
        return _mapping(data, path)
    repaired, quoted = _quote_colon_values(block)
    if quoted:
        try:
            data = yaml.load("\n".join(repaired), Loader=_Loader)
        except yaml.YAMLError:
            pass
        else:
            fields, diagnostics = _mapping(data, path)
            reason = "unquoted ': ' in the value of '{}'; read as a quoted string"
            repairs = [Diagnostic(path, i + 2, "repaired", reason.format(key)) for i, key in quoted]
            return fields, [*repairs, *diagnostics]
    line = getattr(getattr(first_error, "problem_mark", None), "line", 0) + 2
    reason = getattr(first_error, "problem", None) or str(first_error).splitlines()[0]
    fields = _plain_pairs(block)
    kept = f"; kept {', '.join(sorted(fields))} as plain text" if fields else ""
    return fields, [Diagnostic(path, line, "error", f"invalid YAML frontmatter: {reason}{kept}")]


def _mapping(data: Any, path: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [Diagnostic(path, 2, "error", f"frontmatter is a {type(data).__name__}, not a mapping of fields")]
    return {str(k): v for k, v in data.items()}, []


def _quote_colon_values(block: list[str]) -> tuple[list[str], list[tuple[int, str]]]:
    """The block with every top-level plain value that holds ': ' quoted, and which lines that changed."""
    out: list[str] = []
    quoted: list[tuple[int, str]] = []
    for i, line in enumerate(block):
        match = _PLAIN_KEY.match(line)
        value = match.group("value") if match else ""
        if match and ": " in value and value[0] not in "\"'[{|>&*!#":
            out.append(f"{match.group('key')}: {json.dumps(value)}")
            quoted.append((i, match.group("key")))
        else:
            out.append(line)
    return out, quoted


def _plain_pairs(block: list[str]) -> dict[str, Any]:
    """Top-level ``key: value`` lines read as plain strings: what is left when the YAML cannot be repaired."""
    pairs: dict[str, Any] = {}
    for line in block:
        match = _PLAIN_KEY.match(line)
        if match:
            pairs[match.group("key")] = match.group("value").strip().strip("\"'")
    return pairs
