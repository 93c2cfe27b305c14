"""A task's Markdown body as Backlog.md structures it: ``## `` sections, the structured ones fenced by comment
markers (``<!-- SECTION:DESCRIPTION:BEGIN -->``, ``<!-- AC:BEGIN -->``, ...), checklists numbered ``- [ ] #1 text``.

Sections are read from the markers when present and from the bare heading otherwise (older files). A section that
is changed is written in the CLI's canonical form at the CLI's position; everything else, unknown sections
included, is kept as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel

_SENTINEL = re.compile(r"<!-- (SECTION:[A-Z][A-Z0-9_]*|COMMENTS|COMMENT|AC|DOD):(BEGIN|END) -->")
_HEADING = re.compile(r"^##[ \t]+(.+?)[ \t]*$")
_MARKED_ITEM = re.compile(r"^- \[([ x])\] (?:#\d+ )?(.+)$")
_ANY_ITEM = re.compile(r"^\s*- \[([ x])\] (?:#\d+ )?(.*)$")
_COMMENT_FIELD = re.compile(r"^([a-zA-Z_]+):\s*(.*)$")

TEXT_SECTIONS = {
    "description": ("Description", "SECTION:DESCRIPTION"),
    "plan": ("Implementation Plan", "SECTION:PLAN"),
    "notes": ("Implementation Notes", "SECTION:NOTES"),
    "final_summary": ("Final Summary", "SECTION:FINAL_SUMMARY"),
}
CHECKLISTS = {"acceptance_criteria": ("Acceptance Criteria", "AC"), "definition_of_done": ("Definition of Done", "DOD")}
_ORDER = ["description", "acceptance_criteria", "definition_of_done", "plan", "notes", "comments", "final_summary"]
_TITLES = {title.lower(): key for key, (title, _) in {**TEXT_SECTIONS, **CHECKLISTS}.items()} | {"comments": "comments"}


class Criterion(BaseModel):
    index: int
    text: str
    checked: bool


class Comment(BaseModel):
    index: int
    body: str
    created: str = ""
    author: str | None = None


@dataclass
class _Block:
    key: str | None
    """Which structured section this is (``description``, ``acceptance_criteria``, ...); None for any other."""
    text: str


@dataclass
class Body:
    blocks: list[_Block] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Body:
        """Split a body into its top-level sections; a ``## `` line inside a marker pair belongs to that section."""
        blocks: list[_Block] = []
        current: list[str] = []
        key: str | None = None
        open_family: str | None = None
        for line in text.replace("\r\n", "\n").split("\n"):
            heading = _HEADING.match(line) if open_family is None else None
            if heading:
                if current:
                    blocks.append(_Block(key, "\n".join(current)))
                current, key = [], _TITLES.get(heading.group(1).strip().lower())
            current.append(line)
            for family, kind in _SENTINEL.findall(line):
                if kind == "BEGIN" and open_family is None:
                    open_family = family
                elif kind == "END" and family == open_family:
                    open_family = None
        if any(line.strip() for line in current):
            blocks.append(_Block(key, "\n".join(current)))
        return cls(blocks)

    def render(self) -> str:
        return "\n\n".join(block.text.strip() for block in self.blocks if block.text.strip())

    def _block(self, key: str) -> _Block | None:
        return next((block for block in self.blocks if block.key == key), None)

    def text(self, key: str) -> str:
        """A text section (``description``, ``plan``, ``notes``, ``final_summary``); empty when absent."""
        block = self._block(key)
        if block is None:
            return ""
        _, marker = TEXT_SECTIONS[key]
        inner = _between(block.text, marker)
        return (inner if inner is not None else block.text.split("\n", 1)[1] if "\n" in block.text else "").strip()

    def checklist(self, key: str) -> list[Criterion]:
        """A checklist (``acceptance_criteria``, ``definition_of_done``), numbered from 1 as the CLI numbers it."""
        block = self._block(key)
        if block is None:
            return []
        _, marker = CHECKLISTS[key]
        inner = _between(block.text, marker)
        lines = (inner if inner is not None else block.text).split("\n")
        found = [m for m in (_MARKED_ITEM.match(line) for line in lines) if m]
        return [Criterion(index=i, text=m.group(2), checked=m.group(1) == "x") for i, m in enumerate(found, start=1)]

    def comments(self) -> list[Comment]:
        """The ``## Comments`` section's entries (``author:`` / ``created:`` lines, then the body between ``---``)."""
        block = self._block("comments")
        inner = _between(block.text, "COMMENTS") if block else None
        if inner is None:
            return []
        comments: list[Comment] = []
        lines = inner.split("\n")
        i = 0
        while i < len(lines):
            meta: dict[str, str] = {}
            while i < len(lines) and lines[i].strip() != "---":
                if match := _COMMENT_FIELD.match(lines[i].strip()):
                    meta[match.group(1).lower()] = match.group(2).strip()
                i += 1
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "---"), None)
            if i >= len(lines) or end is None:
                break
            body = "\n".join(lines[i + 1 : end]).strip()
            if body:
                comments.append(
                    Comment(
                        index=len(comments) + 1, body=body, created=meta.get("created", ""), author=meta.get("author")
                    )
                )
            i = end + 1
        return comments

    def set_text(self, key: str, value: str) -> None:
        """Replace (or add, or with an empty value remove) a text section, in the CLI's form."""
        if value.strip() == self.text(key):
            return
        title, marker = TEXT_SECTIONS[key]
        content = value.replace("\r\n", "\n").strip()
        self._put(key, f"## {title}\n\n<!-- {marker}:BEGIN -->\n{content}\n<!-- {marker}:END -->" if content else "")

    def set_checklist(self, key: str, items: list[Criterion]) -> None:
        """Replace a checklist with ``items`` (renumbered from 1), keeping any prose lines the section held."""
        current = self.checklist(key)
        if [(c.text, c.checked) for c in current] == [(c.text, c.checked) for c in items]:
            return
        title, marker = CHECKLISTS[key]
        block = self._block(key)
        kept: list[str] = []
        if block is not None:
            inner = _between(block.text, marker)
            kept = (inner if inner is not None else block.text.split("\n", 1)[1] if "\n" in block.text else "").split(
                "\n"
            )
        lines = _merge_items(kept, items)
        self._put(
            key,
            f"## {title}\n<!-- {marker}:BEGIN -->\n" + "\n".join(lines) + f"\n<!-- {marker}:END -->" if lines else "",
        )

    def _put(self, key: str, text: str) -> None:
        existing = [i for i, block in enumerate(self.blocks) if block.key == key]
        if existing:
            first, *duplicates = existing
            self.blocks[first] = _Block(key, text)
            for index in reversed(duplicates):
                del self.blocks[index]
            return
        if not text:
            return
        rank = _ORDER.index(key)
        before = [i for i, b in enumerate(self.blocks) if b.key in _ORDER and _ORDER.index(b.key) < rank]
        after = [i for i, b in enumerate(self.blocks) if b.key in _ORDER and _ORDER.index(b.key) > rank]
        if before:
            position = before[-1] + 1
        elif after:
            position = after[0]
        else:
            position = 0 if key in ("description", "plan") else len(self.blocks)
        self.blocks.insert(position, _Block(key, text))


def _between(text: str, marker: str) -> str | None:
    """What lies between ``<!-- marker:BEGIN -->`` and its ``END``, or None when the markers are missing."""
    begin, end = f"<!-- {marker}:BEGIN -->", f"<!-- {marker}:END -->"
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start != -1 else -1
    if stop == -1:
        return None
    return text[start + len(begin) : stop].removeprefix("\n").rstrip("\n")


def _merge_items(existing: list[str], items: list[Criterion]) -> list[str]:
    """Checklist lines: item lines take the new items in order, other lines stay; extra items go at the end."""
    queue = list(items)
    lines: list[str] = []
    number = 1
    for line in existing:
        if _ANY_ITEM.match(line.strip()):
            if queue:
                item = queue.pop(0)
                lines.append(f"- [{'x' if item.checked else ' '}] #{number} {item.text}")
                number += 1
            continue
        lines.append(line)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    for item in queue:
        if lines and lines[-1].strip() and not lines[-1].strip().startswith("- ["):
            lines.append("")
        lines.append(f"- [{'x' if item.checked else ' '}] #{number} {item.text}")
        number += 1
    return lines
