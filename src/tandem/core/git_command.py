"""The one way Tandem runs git: every git tool, and every other tool that reads git (diff-mode scans, packs), goes
through ``open_repository`` and ``Repository.run``.

A repository is data an attacker may have written, and git runs programs its config names. So each command:

- finds the repository only inside the workspace (``GIT_CEILING_DIRECTORIES``), and refuses one whose work tree
  lies outside it (``core.worktree``); the server's own ``GIT_DIR`` / ``GIT_WORK_TREE`` / ... are not inherited;
- turns off what runs programs on its own: the pager, fsmonitor, hooks (unless ``[git] hooks``), auto gc, the
  ``ext::`` transport; diff commands get ``--no-ext-diff --no-textconv``;
- overrides every program-running key the *repository's* config sets (``filter.*.clean``, ``diff.*.textconv``,
  ``merge.*.driver``, ``core.sshCommand``, ``gpg.program``, ``credential.helper``, ``remote.*.uploadpack``, ...;
  included files count as the repository's) with the user's own (system / global) value, or a harmless one, unless
  ``[git] trusted_config`` names the key;
- never prompts (``GIT_TERMINAL_PROMPT=0``, no terminal), speaks the C locale, runs under the command runner's
  time limit, output caps and process-group kill.

Arguments are validated before git sees them: revisions and names match a conservative pattern and never start with
``-``, ``--end-of-options`` precedes them, paths are confined and come after ``--`` with ``--literal-pathspecs``.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tandem.core.commands import CommandResult, CommandRunner, OutputCallback
from tandem.core.errors import ToolError
from tandem.core.workspace_path import real_workspace_root, relative_display, workspace_entry, workspace_path


class GitSettings(BaseModel):
    """The ``[git]`` table of ``tandem.toml``."""

    model_config = ConfigDict(extra="forbid")

    remotes: list[str] = Field(
        default_factory=list,
        description="Remote URLs git_clone, git_fetch, git_pull and git_push may reach, as glob patterns "
        "(e.g. 'https://github.com/acme/*', 'git@github.com:acme/*', '/srv/git/*'); none by default.",
    )
    hooks: bool = Field(False, description="Run the repository's hooks (pre-commit, ...); a hook is a program.")
    trusted_config: list[str] = Field(
        default_factory=list,
        description="Keys of the repository's own config honoured even though they run a program "
        "(glob patterns, e.g. 'filter.lfs.*'); by default such keys are overridden.",
    )
    timeout_s: float = Field(60.0, gt=0, description="Time limit of a local git command.")
    network_timeout_s: float = Field(600.0, gt=0, description="Time limit of clone, fetch, pull and push.")


ALWAYS = (
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("protocol.ext.allow", "never"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("color.ui", "false"),
    ("core.quotePath", "false"),
    ("log.showSignature", "false"),
)
"""Settings every Tandem git command runs with."""
PROGRAM_KEYS: tuple[tuple[str, str], ...] = (
    ("core.sshcommand", "ssh"),
    ("core.gitproxy", ""),
    ("core.askpass", ""),
    ("core.alternaterefscommand", ""),
    ("core.hookspath", ""),
    ("credential.helper", ""),
    ("credential.*.helper", ""),
    ("diff.external", ""),
    ("diff.*.command", ""),
    ("diff.*.textconv", ""),
    ("filter.*.clean", ""),
    ("filter.*.smudge", ""),
    ("filter.*.process", ""),
    ("filter.*.required", "false"),
    ("merge.*.driver", "false"),
    ("gpg.program", "gpg"),
    ("gpg.openpgp.program", "gpg"),
    ("gpg.x509.program", "gpgsm"),
    ("gpg.ssh.program", "ssh-keygen"),
    ("gpg.ssh.defaultkeycommand", ""),
    ("remote.*.uploadpack", "git-upload-pack"),
    ("remote.*.receivepack", "git-receive-pack"),
    ("hook.*.command", ""),
    ("uploadpack.packobjectshook", ""),
    ("remote.*.vcs", ""),
)
"""Config keys that name a program to run, with the value used when the repository sets one and the user does not
(an empty value resets a list or turns the program off)."""
REPOSITORY_SCOPES = frozenset({"local", "worktree"})
KEPT_GIT_ENV = frozenset(
    {
        "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
    }
)  # fmt: skip
"""Variables of the server's environment a git command still sees; every other ``GIT_*`` one (``GIT_DIR``,
``GIT_INDEX_FILE``, ``GIT_CONFIG_PARAMETERS``, ...) would change which repository or config git uses."""

_REVISION = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_@./{}~^+-]{0,254}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]{0,254}")
_RANGE = re.compile(r"\.\.\.?")


def revision(value: str, what: str = "revision") -> str:
    """``value`` if it is a plain revision (``HEAD~2``, ``main``, ``v1.0^{commit}``, ``@{-1}``, a sha); else a tool
    error. Never an option: a leading ``-`` is refused."""
    if not _REVISION.fullmatch(value) or ".." in value:
        raise ToolError(
            f"invalid {what} {value[:100]!r}: use a branch, tag, commit id or an expression such as HEAD~2 "
            "(letters, digits and _ @ . / { } ~ ^ + -, not starting with '-')"
        )
    return value


def revision_range(value: str) -> str:
    """A revision or a range ``A..B`` / ``A...B`` of two revisions (either side may be empty)."""
    parts = _RANGE.split(value, maxsplit=1)
    if len(parts) == 1:
        return revision(value)
    if not any(parts):
        raise ToolError(f"invalid range {value!r}: give at least one side, e.g. main..HEAD")
    for part in parts:
        if part:
            revision(part)
    return value


def plain_name(value: str, what: str) -> str:
    """A branch or remote name: letters, digits and ``_ . / + -``, not starting with ``-`` or ``.``, no ``..``."""
    if not _NAME.fullmatch(value) or ".." in value or value.endswith((".lock", "/", ".")) or "//" in value:
        raise ToolError(f"invalid {what} {value[:100]!r}: use letters, digits and _ . / + - (not starting with '-')")
    return value


def remote_allowed(settings: GitSettings, url: str) -> str:
    """``url`` if ``[git] remotes`` allows it; else a tool error saying how to allow it."""
    if not url or url.startswith("-") or any(c in url for c in "\x00\n\r") or "::" in url:
        raise ToolError(f"refused remote URL {url[:200]!r}: transports such as 'ext::' and options are not URLs")
    if not any(fnmatch.fnmatchcase(url, pattern) for pattern in settings.remotes):
        raise ToolError(
            f"the remote {url[:200]!r} is not allowed: add a pattern that matches it to 'remotes' in the [git] "
            "table of tandem.toml" + (" (none is allowed now)" if not settings.remotes else "")
        )
    return url


def _scrubbed(variable: str) -> bool:
    return variable.startswith("GIT_") and variable not in KEPT_GIT_ENV


def program() -> str:
    found = shutil.which("git")
    if found is None:
        raise ToolError("git is not installed on the machine running Tandem")
    return found


@dataclass(frozen=True)
class ConfigEntry:
    scope: str
    key: str
    value: str


def parse_config_list(text: str) -> list[ConfigEntry]:
    """``git config --list --show-scope -z`` output: ``scope NUL key LF value NUL`` per entry."""
    fields = text.split("\x00")
    entries = []
    for scope, pair in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = pair.partition("\n")
        entries.append(ConfigEntry(scope, key, value))
    return entries


FIRST_WINS = ("remote.*.uploadpack", "remote.*.receivepack")
"""Keys git takes the first value of, so a ``-c`` cannot override them: the transport commands pass
``--upload-pack`` / ``--receive-pack`` instead (``Overrides.programs``)."""


@dataclass
class Overrides:
    options: list[str] = field(default_factory=list)
    """``-c`` options that cancel program-running keys the repository's config sets."""
    neutralized: list[str] = field(default_factory=list)
    """Those keys."""
    programs: dict[str, str] = field(default_factory=dict)
    """For the first-wins keys the repository sets: the program to pass on the command line instead."""


def overrides_for(entries: Iterable[ConfigEntry], settings: GitSettings) -> Overrides:
    """How to run git so that the program-running keys of the repository's own config (not the user's) are
    ignored: the user's own value where there is one, else a harmless value."""
    entries = list(entries)
    found = Overrides()
    for key in dict.fromkeys(e.key for e in entries if e.scope in REPOSITORY_SCOPES):
        lowered = key.lower()
        fallback = next((v for pattern, v in PROGRAM_KEYS if fnmatch.fnmatchcase(lowered, pattern)), None)
        if fallback is None or any(fnmatch.fnmatchcase(lowered, p.lower()) for p in settings.trusted_config):
            continue
        if lowered == "core.hookspath" and settings.hooks:
            continue
        if "=" in key:
            raise ToolError(
                f"the repository's config sets {key[:200]!r}, a key that names a program and that git cannot be "
                "told to ignore; remove it from .git/config"
            )
        users = [e.value for e in entries if e.key.lower() == lowered and e.scope not in REPOSITORY_SCOPES]
        found.neutralized.append(key)
        if any(fnmatch.fnmatchcase(lowered, pattern) for pattern in FIRST_WINS):
            found.programs[key] = users[0] if users else fallback
            continue
        found.options += ["-c", f"{key}="]
        for value in users or ([fallback] if fallback else []):
            found.options += ["-c", f"{key}={value}"]
    return found


@dataclass
class Repository:
    """A git work tree inside the workspace, ready to run commands in."""

    runner: CommandRunner
    workspace: Path
    root: Path
    settings: GitSettings
    options: list[str] = field(default_factory=list)
    """Global options before every subcommand (``-c`` settings, ``--literal-pathspecs``)."""
    overrides: Overrides = field(default_factory=Overrides)
    """What of the repository's config was overridden because it names a program."""
    within: tuple[Path, ...] = ()
    """The client's roots, which confine paths further."""

    async def run(
        self,
        args: list[str],
        *,
        stdin: str | None = None,
        timeout_s: float | None = None,
        check: bool = True,
        on_output: OutputCallback | None = None,
        max_output_bytes: int | None = None,
        read_only: bool = False,
        literal_pathspecs: bool = True,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """``git <options> <args>`` in the work tree's root; a tool error with git's message if it fails.

        ``literal_pathspecs=False`` for the one command that takes no paths and misbehaves with the option
        (``git stash push --include-untracked`` then leaves untracked files behind).
        """
        options = self.options if literal_pathspecs else [o for o in self.options if o != "--literal-pathspecs"]
        return await run_git(
            self.runner,
            self.workspace,
            [*options, *args],
            cwd=self.root,
            stdin=stdin,
            timeout_s=timeout_s or self.settings.timeout_s,
            check=check,
            on_output=on_output,
            max_output_bytes=max_output_bytes,
            read_only=read_only,
            env=env,
        )

    def pack_program(self, remote: str, push: bool) -> list[str]:
        """``--upload-pack`` / ``--receive-pack`` for a transport command to ``remote``, when the repository's
        config names its own program there (which git would otherwise run)."""
        kind = "receivepack" if push else "uploadpack"
        program = self.overrides.programs.get(f"remote.{remote}.{kind}")
        if program is None:
            return []
        return [f"--{'receive' if push else 'upload'}-pack={program}"]

    def relative(self, path: Path) -> str:
        """A confined path relative to the work tree's root, for git; a tool error if it is outside the work tree."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            raise ToolError(
                f"{relative_display(self.workspace, path)!r} is outside the repository at "
                f"{relative_display(self.workspace, self.root)!r}"
            ) from None
        return relative.as_posix() if relative.parts else "."

    def paths(self, paths: Iterable[str]) -> list[str]:
        """Client paths, confined (a final symlink stays itself) and relative to the work tree's root."""
        return [self.relative(workspace_entry(self.workspace, p, within=self.within)) for p in paths]

    def shown(self, relative: str) -> str:
        """A path git printed (relative to the work tree) as the client should see it (relative to the workspace)."""
        prefix = relative_display(self.workspace, self.root)
        return relative if prefix == "." else f"{prefix}/{relative}"


def base_options(settings: GitSettings) -> list[str]:
    options = ["--no-pager", "--literal-pathspecs"]
    for key, value in ALWAYS:
        options += ["-c", f"{key}={value}"]
    if not settings.hooks:
        options += ["-c", "core.hooksPath=/dev/null"]
    return options


async def run_git(
    runner: CommandRunner,
    workspace: Path,
    args: list[str],
    *,
    cwd: Path,
    stdin: str | None = None,
    timeout_s: float | None = None,
    check: bool = True,
    on_output: OutputCallback | None = None,
    max_output_bytes: int | None = None,
    read_only: bool = False,
    env: dict[str, str] | None = None,
) -> CommandResult:
    """``git`` through the command runner, with prompts off, no repository search above the workspace, C locale;
    ``env`` adds variables (``GIT_INDEX_FILE`` for a scratch index)."""
    root = real_workspace_root(workspace)
    env = {**(env or {}), "GIT_TERMINAL_PROMPT": "0", "GIT_CEILING_DIRECTORIES": str(root.parent), "LC_ALL": "C"}
    if read_only:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    result = await runner.run(
        [program(), *args],
        cwd=str(cwd),
        stdin=stdin,
        timeout_s=timeout_s,
        env=env,
        on_output=on_output,
        max_output_bytes=max_output_bytes,
        keep_head=True,
        drop_env=_scrubbed,
    )
    if check and not result.ok:
        raise ToolError(failure_message(args, result))
    return result


def failure_message(args: list[str], result: CommandResult) -> str:
    subcommand = next((a for a in args if not a.startswith("-") and "=" not in a), "git")
    if result.timed_out:
        return f"git {subcommand} did not finish within its time limit ({result.duration_s:.0f} s) and was stopped"
    text = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.exit_code}")[-2000:]
    if "Author identity unknown" in text or "empty ident name" in text:
        text += (
            "\n(git has no author identity here: set user.name and user.email in the repository's or the user's "
            "git config)"
        )
    return f"git {subcommand} failed: {text}"


async def open_repository(
    runner: CommandRunner, workspace: Path, settings: GitSettings, path: str = ".", within: tuple[Path, ...] = ()
) -> Repository:
    """The repository whose work tree holds ``path`` (a confined directory), searched no higher than the workspace.

    A tool error if there is none, if it is bare, or if its work tree is outside the workspace.
    """
    directory = workspace_path(workspace, path, within=within)
    if not directory.is_dir():
        raise ToolError(f"{path!r} is not a directory")
    options = base_options(settings)
    found = await run_git(
        runner, workspace, [*options, "rev-parse", "--show-toplevel"], cwd=directory, check=False, read_only=True
    )
    if not found.ok:
        message = found.stderr.strip()
        if "not a git repository" in message:
            raise ToolError(
                f"{path!r} is not in a git repository (repositories are looked for up to the workspace root, "
                "not above it)"
            )
        raise ToolError(f"git cannot use the repository at {path!r}: {message[-1000:]}")
    root = Path(found.stdout.strip())  # git prints the real path
    try:
        root.relative_to(real_workspace_root(workspace))
    except ValueError:
        raise ToolError(
            f"the repository at {path!r} has its work tree outside the workspace (core.worktree?); refused"
        ) from None
    listed = await run_git(
        runner,
        workspace,
        [*options, "config", "--list", "--show-scope", "--includes", "-z"],
        cwd=root,
        check=False,
        read_only=True,
        max_output_bytes=4 * 1024 * 1024,
    )
    if not listed.ok and listed.stderr.strip():
        raise ToolError(f"git cannot read the repository's config: {listed.stderr.strip()[-1000:]}")
    overrides = overrides_for(parse_config_list(listed.stdout), settings)
    return Repository(runner, workspace, root, settings, [*options, *overrides.options], overrides, within)
