"""Specialist personas: Markdown files with YAML frontmatter, shipped in ``personas/`` and overridden or added to by
the project's ``<data dir>/specialists/*.md``. A file that cannot be read is reported with its problem and leaves
the others served.

Project files are read through workspace confinement: a symlink that leads out of the workspace is refused (and
reported like any bad file), since its target would become a system prompt sent to a model or shown to the client.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.core import ToolError
from tandem.core.workspace_path import open_in_workspace, workspace_path

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
MAX_PERSONA_BYTES = 64 * 1024
"""A persona is a system prompt; a bigger file is a mistake (a pasted log, a binary), not a persona."""
PROJECT_DIR = "specialists"
"""The folder under the data dir (``.tandem/``) that holds the project's personas."""

Source = Literal["shipped", "project"]


class PersonaFields(BaseModel):
    """The frontmatter of a persona file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=100)]
    description: Annotated[str, Field(min_length=1, max_length=500)]
    keywords: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(default_factory=list, max_length=100)
    when_to_use: Annotated[str, Field(max_length=1000)] | None = None


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    title: str
    description: str
    keywords: tuple[str, ...]
    when_to_use: str | None
    instructions: str
    """The Markdown body: the persona's system prompt."""
    source: Source
    file: str
    """Where it was read from, as a user names it (``.tandem/specialists/sre.md``, ``shipped:sre.md``)."""
    overrides: bool = False
    """A project persona that replaces the shipped one of the same name."""


@dataclass(frozen=True, slots=True)
class PersonaProblem:
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


@dataclass
class Personas:
    """Every persona served now, by name, and the files that could not be read."""

    by_name: dict[str, Persona] = field(default_factory=dict)
    problems: list[PersonaProblem] = field(default_factory=list)


class InvalidPersona(ValueError):
    """A persona file that cannot be served; the message says what is wrong."""


def parse_persona(text: str, *, stem: str, source: Source, file: str) -> Persona:
    """One persona from the text of its file; ``InvalidPersona`` saying what is wrong (with the line, where known)."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise InvalidPersona(
            "no YAML frontmatter: the file must start with a '---' line, then title, description and keywords"
        )
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise InvalidPersona("the frontmatter opened on line 1 is never closed with a '---' line")
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2}: " if mark is not None else ""
        raise InvalidPersona(f"{where}invalid YAML frontmatter: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise InvalidPersona("the frontmatter must be a mapping of fields (title: ..., description: ...)")
    try:
        fields = PersonaFields.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'frontmatter'}: {e['msg']}" for e in exc.errors())
        raise InvalidPersona(f"invalid frontmatter: {reasons}") from None
    if fields.name is None and not _valid_name(stem):
        raise InvalidPersona(
            f"the file name {stem!r} is not a persona name; add 'name:' (lowercase letters, digits, _ and -)"
        )
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise InvalidPersona("the body (the persona's instructions, after the frontmatter) is empty")
    return Persona(
        name=fields.name or stem,
        title=fields.title,
        description=fields.description,
        keywords=tuple(fields.keywords),
        when_to_use=fields.when_to_use,
        instructions=body,
        source=source,
        file=file,
    )


def _valid_name(name: str) -> bool:
    return re.match(NAME_PATTERN, name) is not None


@functools.cache
def shipped() -> Personas:
    """The personas that ship with Tandem (read once: they cannot change while it runs)."""
    found = Personas()
    folder = resources.files(__package__).joinpath("personas")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            _add(found, entry.read_bytes(), entry.name.removesuffix(".md"), "shipped", f"shipped:{entry.name}")
    return found


def load(workspace: Path, data_path: Path, shown_as: str) -> Personas:
    """The shipped personas with the project's (``data_path/specialists/*.md``, shown as ``shown_as/...``) laid over
    them: a project persona replaces the shipped one of its name; a broken project file leaves the shipped one.

    The files are confined to ``workspace``, the data dir included (a ``.tandem`` that is a symlink out of it is
    refused); only a data dir configured as an absolute path elsewhere confines them to itself instead."""
    base = shipped()
    found = Personas(dict(base.by_name), list(base.problems))
    # Lexical on purpose: a relative data_dir (even '../x', or a symlink) is always held to the workspace.
    inside = data_path.is_relative_to(workspace)
    root = workspace if inside else data_path
    prefix = f"{data_path.relative_to(workspace).as_posix()}/" if inside else ""
    try:
        folder = workspace_path(root, f"{prefix}{PROJECT_DIR}")
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(".md"))
    except FileNotFoundError:
        return found
    except (ToolError, OSError) as exc:
        why = str(exc) if isinstance(exc, ToolError) else exc.strerror or type(exc).__name__
        found.problems.append(PersonaProblem(f"{shown_as}/{PROJECT_DIR}", f"no project persona read: {why}"))
        return found
    project = Personas()
    for name in names:
        file = f"{shown_as}/{PROJECT_DIR}/{name}"
        try:
            data = _read(root, f"{prefix}{PROJECT_DIR}/{name}")
        except InvalidPersona as exc:
            project.problems.append(PersonaProblem(file, str(exc)))
            continue
        _add(project, data, name.removesuffix(".md"), "project", file)
    for name, persona in project.by_name.items():
        found.by_name[name] = dataclasses.replace(persona, overrides=name in found.by_name)
    found.problems += project.problems
    return found


def _read(root: Path, relative: str) -> bytes:
    """The bytes of one confined persona file; ``InvalidPersona`` saying why not, with no host path in it."""
    try:
        path = workspace_path(root, relative)
    except ToolError as exc:
        raise InvalidPersona(f"not read: {exc}") from None
    try:
        # O_NONBLOCK: a FIFO named *.md must not hang the listing; it is refused below as not a regular file.
        fd = open_in_workspace(root, path, os.O_RDONLY | os.O_NONBLOCK)
    except ToolError as exc:
        raise InvalidPersona(f"cannot be read: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidPersona("not a regular file")
        if info.st_size > MAX_PERSONA_BYTES:
            raise InvalidPersona(f"{info.st_size} bytes, over the {MAX_PERSONA_BYTES}-byte limit")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_PERSONA_BYTES + 1)
    except OSError as exc:
        raise InvalidPersona(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_PERSONA_BYTES:  # it grew after the check
        raise InvalidPersona(f"over the {MAX_PERSONA_BYTES}-byte limit")
    return data


def _add(into: Personas, data: bytes, stem: str, source: Source, file: str) -> None:
    try:
        persona = parse_persona(data.decode("utf-8"), stem=stem, source=source, file=file)
    except UnicodeDecodeError:
        into.problems.append(PersonaProblem(file, "not UTF-8 text"))
        return
    except InvalidPersona as exc:
        into.problems.append(PersonaProblem(file, str(exc)))
        return
    earlier = into.by_name.get(persona.name)
    if earlier is not None:
        into.problems.append(PersonaProblem(file, f"name {persona.name!r} is already defined by {earlier.file}"))
        return
    into.by_name[persona.name] = persona
