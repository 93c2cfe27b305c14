"""Task frontmatter read and written the way Backlog.md does, so a file Tandem writes is byte for byte what the
CLI would write for the same task.

The CLI writes frontmatter with gray-matter, which dumps through js-yaml 3 (``safeDump``): 2-space block sequences,
``[]`` for an empty list, single quotes where a scalar would not read back as the same string, double quotes with
escapes for non-printable text (an emoji is two UTF-16 code units js-yaml counts as unprintable), and long values
folded (``>-``) at 80 columns less the indent. PyYAML's emitter differs in each of these, so the dumper here follows
js-yaml's rules; PyYAML still does the reading.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

_FENCE = re.compile(r"\A---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_AT_VALUE = re.compile(r"^(\s*(?:assignee|reporter):[ \t]*)(@[^\s#].*?)\s*$")
_AT_FLOW = re.compile(r"^(\s*(?:assignee|reporter):[ \t]*)\[(.*)\]\s*$")
_UNQUOTED_DUE = re.compile(r"^(\s*due_date:[ \t]*)([^'\"\s#][^#]*?)\s*$")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# js-yaml 3's int (type/int.js, as a regex) and float (type/float.js, its "no trailing _" check folded in).
_INT = re.compile(
    r"^[-+]?(?:0|0b[01_]*[01]|0x[0-9a-fA-F_]*[0-9a-fA-F]|0[0-7_]*[0-7]|[1-9](?:[0-9_]*[0-9])?"
    r"|[1-9][0-9_]*(?::[0-5]?[0-9])+)\Z"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:0|[1-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))(?<!_)\Z"
)


class _Loader(yaml.SafeLoader):
    """YAML as js-yaml 3 reads it: only ``true``/``false`` are booleans (not ``yes``/``on``), integers and floats
    are js-yaml's (``3_`` and ``01.`` are text, not YAML 1.1's 3 and 1.0), there is no ``=`` value tag, and dates
    stay text, since Backlog.md keeps ``created_date`` and friends as strings. The dumper below quotes by the same
    rules, so what it writes reads back as the string it was."""


_REPLACED = (
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",
)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


class FrontmatterError(ValueError):
    """A file whose frontmatter is missing or is not a YAML mapping."""


def split(text: str) -> tuple[dict[str, Any], str]:
    """The frontmatter fields and the body (trimmed, as the CLI keeps it) of a task file."""
    text = text.removeprefix("\ufeff")
    match = _FENCE.match(text)
    if match is None:
        raise FrontmatterError("it does not start with a '---' frontmatter block")
    try:
        data = yaml.load(_quote_cli_shorthands(match.group(1)), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"its frontmatter is not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValueError:  # an integer of more than 4,300 digits, which Python will not convert
        raise FrontmatterError("its frontmatter holds a number too long to read") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontmatterError("its frontmatter is not a mapping of fields")
    return {str(key): value for key, value in data.items()}, text[match.end() :].replace("\r\n", "\n").strip()


def _quote_cli_shorthands(frontmatter: str) -> str:
    """Quote what the CLI accepts unquoted although YAML does not: ``assignee: @ada`` and ``due_date: 2026-01-02``."""
    lines = []
    for line in frontmatter.splitlines():
        if match := _AT_VALUE.match(line):
            line = match.group(1) + json.dumps(match.group(2))
        elif match := _AT_FLOW.match(line):
            items = [item.strip() for item in match.group(2).split(",") if item.strip()]
            quoted = [json.dumps(item) if item.startswith("@") else item for item in items]
            line = f"{match.group(1)}[{', '.join(quoted)}]"
        elif (match := _UNQUOTED_DUE.match(line)) and match.group(2).lower() not in ("null", "~"):
            line = match.group(1) + json.dumps(match.group(2))
        lines.append(line)
    return "\n".join(lines)


def render(fields: dict[str, Any], body: str) -> str:
    """The whole file: frontmatter, a blank line, the body (gray-matter's ``stringify`` plus the CLI's blank line)."""
    dumped = "\n".join(_pair(key, value) for key, value in fields.items())
    return f"---\n{dumped}\n---\n\n{body.strip()}\n" if body.strip() else f"---\n{dumped}\n---\n\n\n"


def _pair(key: str, value: Any) -> str:
    name = key if _PLAIN_KEY.match(key) else scalar(key, 1, single_line=True)
    if isinstance(value, list) and all(isinstance(item, str | int | float | bool) for item in value):
        if not value:
            return f"{name}: []"
        return f"{name}:" + "".join(f"\n  - {_value(item, 2)}" for item in value)
    if isinstance(value, dict | list):
        # Nested structures are no field Backlog.md writes; keep them readable YAML rather than byte-identical.
        nested = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False, allow_unicode=True)
        return nested.rstrip("\n")
    rendered = _value(value, 1)
    return f"{name}:{'' if rendered.startswith(chr(10)) else ' '}{rendered}"


def _value(value: Any, level: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return scalar(str(value), level)


# js-yaml 3's dumper (lib/js-yaml/dumper.js), rule for rule, over UTF-16 code units as JavaScript sees a string.
_PLAIN, _SINGLE, _LITERAL, _FOLDED, _DOUBLE = range(5)
_DEPRECATED_BOOLEANS = {
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "on",
    "On",
    "ON",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "off",
    "Off",
    "OFF",
}
_ESCAPES = {
    0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 27: "\\e", 34: '\\"',
    92: "\\\\", 133: "\\N", 160: "\\_", 8232: "\\L", 8233: "\\P",
}  # fmt: skip
_NOT_FIRST = {ord(c) for c in "-?:,[]{}#&*!|=>'\"%@`"}
_FLOW_OR_COLON = {ord(c) for c in ",[]{}:"}
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9]{2})?))?$"
)


def scalar(text: str, level: int, *, single_line: bool = False) -> str:
    """``text`` as js-yaml 3 dumps a string at nesting ``level`` (1 for a top-level value, 2 for a list item)."""
    if not text:
        return "''"
    if text in _DEPRECATED_BOOLEANS:
        return f"'{text}'"
    indent = 2 * max(1, level)
    width = max(40, 80 - indent)
    style = _style(_units(text), single_line, width, _is_ambiguous(text))
    if style == _PLAIN:
        return text
    if style == _SINGLE:
        return "'" + text.replace("'", "''") + "'"
    if style == _DOUBLE:
        return '"' + _escaped(text) + '"'
    body = _fold(text, width) if style == _FOLDED else text
    header = (">" if style == _FOLDED else "|") + _block_indicator(text)
    return header + "\n" + _indent(body, indent).removesuffix("\n")


def _units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]


def _printable(c: int) -> bool:
    return 32 <= c <= 126 or (161 <= c <= 55295 and c not in (8232, 8233)) or (57344 <= c <= 65533 and c != 65279)


def _white(c: int) -> bool:
    return c in (32, 9)


def _plain_safe(c: int, previous: int | None) -> bool:
    if not _printable(c) or c in _FLOW_OR_COLON:
        return False
    # '#' is plain only right after a non-space character ("a#b"), never after a space (" #" starts a comment).
    return c != 35 or (
        previous is not None and _printable(previous) and not _white(previous) and previous not in (10, 13)
    )


def _style(units: list[int], single_line: bool, width: int, ambiguous: bool) -> int:
    plain = _printable(units[0]) and not _white(units[0]) and units[0] not in _NOT_FIRST and not _white(units[-1])
    has_break = foldable = False
    last_break = -1
    for i, c in enumerate(units):
        if c == 10 and not single_line:
            has_break = True
            foldable = foldable or (i - last_break - 1 > width and units[last_break + 1] != 32)
            last_break = i
        elif not _printable(c):
            return _DOUBLE
        plain = plain and _plain_safe(c, units[i - 1] if i else None)
    if single_line:
        return _PLAIN if plain and not ambiguous else _SINGLE
    foldable = foldable or (len(units) - last_break - 1 > width and units[last_break + 1] != 32)
    if not has_break and not foldable:
        return _PLAIN if plain and not ambiguous else _SINGLE
    return _FOLDED if foldable else _LITERAL


def _is_ambiguous(text: str) -> bool:
    """Whether YAML would read ``text`` unquoted as something other than this string (js-yaml's implicit types)."""
    return (
        text in ("~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "<<")
        or _INT.match(text) is not None
        or _FLOAT.match(text) is not None
        or _DATE.match(text) is not None
        or _TIMESTAMP.match(text) is not None
    )


def _escaped(text: str) -> str:
    units = _units(text)
    out = []
    i = 0
    while i < len(units):
        c = units[i]
        if 0xD800 <= c <= 0xDBFF and i + 1 < len(units) and 0xDC00 <= units[i + 1] <= 0xDFFF:
            out.append(_hex_escape((c - 0xD800) * 1024 + units[i + 1] - 0xDC00 + 0x10000))
            i += 2
            continue
        escape = _ESCAPES.get(c)
        out.append(escape if escape else chr(c) if _printable(c) else _hex_escape(c))
        i += 1
    return "".join(out)


def _hex_escape(code: int) -> str:
    letter, digits = ("x", 2) if code <= 0xFF else ("u", 4) if code <= 0xFFFF else ("U", 8)
    return f"\\{letter}{code:0{digits}X}"


def _block_indicator(text: str) -> str:
    indent = "2" if re.match(r"^\n* ", text) else ""
    clip = text.endswith("\n")
    keep = clip and (text.endswith("\n\n") or text == "\n")
    return indent + ("+" if keep else "" if clip else "-")


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line and line != "\n" else line for line in text.splitlines(keepends=True))


def _fold(text: str, width: int) -> str:
    first_break = text.find("\n")
    first_break = first_break if first_break != -1 else len(text)
    result = _fold_line(text[:first_break], width)
    previous_more_indented = text[:1] in ("\n", " ")
    for match in re.finditer(r"(\n+)([^\n]*)", text[first_break:]):
        prefix, line = match.group(1), match.group(2)
        more_indented = line[:1] == " "
        result += prefix + ("\n" if not previous_more_indented and not more_indented and line else "")
        result += _fold_line(line, width)
        previous_more_indented = more_indented
    return result


def _fold_line(line: str, width: int) -> str:
    if not line or line[0] == " ":
        return line
    start = current = 0
    result = ""
    for match in re.finditer(r" [^ ]", line):
        following = match.start()
        if following - start > width:
            end = current if current > start else following
            result += "\n" + line[start:end]
            start = end + 1
        current = following
    result += "\n"
    if len(line) - start > width and current > start:
        result += line[start:current] + "\n" + line[current + 1 :]
    else:
        result += line[start:]
    return result[1:]
