"""Which commands a tool may run: an allow-list of programs (with optional argument patterns) and a deny-list.

The policy is configuration (``[commands]`` in ``tandem.toml``); no tool can change it. It judges the program that
will really run: wrappers such as ``env``, ``nice``, ``nohup``, ``timeout`` and ``stdbuf`` are looked through, a
program is found on the server's own ``PATH`` (a caller cannot put a ``git`` of its own first), a path to a program
in the workspace names that file, and shell or interpreter one-liners (``sh -c``, ``python -c``, ``node -e``, ...)
count as shell commands, refused unless the policy allows a shell.

What it cannot stop: an allowed program doing what it does. ``python`` runs any script, ``make`` runs any
recipe, ``git`` runs hooks. Arguments that are paths outside the workspace are refused (``cat /etc/passwd``), but a
program may still open such paths itself. Real isolation needs an isolating backend.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from tandem.core.errors import ToolError
from tandem.core.workspace_path import PathRefused, relative_display, workspace_path

DEFAULT_ALLOW = [
    *("ls", "cat", "head", "tail", "wc", "grep", "rg", "find", "sort", "uniq", "diff", "cut", "tr", "echo", "printf"),
    *("pwd", "true", "false", "date", "uname", "which", "file", "stat", "du", "tree", "basename", "dirname"),
    *("realpath", "sha256sum", "md5sum", "jq", "git", "python", "python3", "pytest", "ruff", "mypy", "make"),
    *("npm", "npx", "node", "cargo", "go", "uv"),
]
DEFAULT_DENY = [
    *("sudo", "su", "doas", "pkexec", "chroot", "nsenter", "unshare", "setsid", "disown", "shutdown", "reboot"),
    *("find *-exec*", "find *-ok*", "find *-delete*", "find *-fprint*", "find *-fls*"),
    *("git *--upload-pack*", "git *--receive-pack*", "git -c *", "git *--config-env*", "git *--exec-path*"),
    *("npm *--prefix /*", "npx *--yes*"),
]
DEFAULT_SCRUB = ["*_TOKEN", "*_KEY", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*", "*_PAT", "*API_KEY*"]
REFUSED_CALLER_ENV = [
    *("PATH", "LD_*", "DYLD_*", "BASH_ENV", "ENV", "PROMPT_COMMAND", "IFS", "SHELLOPTS", "BASHOPTS", "PS4"),
    *("PYTHONSTARTUP", "PYTHONINSPECT", "NODE_OPTIONS", "PERL5OPT", "RUBYOPT", "PAGER", "EDITOR", "VISUAL"),
    *("GIT_CONFIG*", "GIT_EXEC_PATH", "GIT_SSH*", "GIT_ASKPASS", "GIT_EXTERNAL_DIFF", "GIT_PAGER", "GIT_EDITOR"),
    *("GIT_PROXY_COMMAND", "GIT_DIR", "GIT_WORK_TREE", "SSH_ASKPASS"),
]
SAFE_OUTSIDE_PATHS = ("/dev/null", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/zero", "/dev/urandom")

_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "ash", "busybox"}
_ONE_LINER_FLAGS = {
    "python": re.compile(r"^-[A-Za-z]*c"),
    "node": re.compile(r"^(-[A-Za-z]*[ep]|--eval|--print)(=|$)"),
    "deno": re.compile(r"^eval$"),
    "bun": re.compile(r"^(-e|--eval|-p|--print)(=|$)"),
    "perl": re.compile(r"^-[A-Za-z]*[eE]"),
    "ruby": re.compile(r"^-[A-Za-z]*e"),
    "php": re.compile(r"^-[A-Za-z]*r"),
    "lua": re.compile(r"^-[A-Za-z]*e"),
    "Rscript": re.compile(r"^(-e|--expr)"),
    "osascript": re.compile(r"^-e"),
    "pwsh": re.compile(r"^-(c|command|EncodedCommand)", re.IGNORECASE),
}
_SHELL_ONE_LINER = re.compile(r"^-[A-Za-z]*c[A-Za-z]*$")


class CommandRefused(ToolError):
    """The policy does not allow this command; the message says which rule and what to do."""


class CommandPolicy(BaseModel):
    """``[commands]`` in ``tandem.toml``: what the command runner may start, and with which limits."""

    allow: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOW),
        description="Programs that may run: 'name', or 'name ARGS-GLOB' to allow only matching arguments; "
        "'./path' for a program in the workspace.",
    )
    deny: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DENY), description="Rules in the same form that win over 'allow'."
    )
    shell: bool = Field(False, description="Allow shell command strings and interpreter one-liners (sh -c, ...).")
    confine_arguments: bool = Field(
        True, description="Refuse arguments that are absolute or '..' paths leading outside the workspace."
    )
    scrub_env: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCRUB),
        description="Environment variables (glob patterns) removed before a command starts.",
    )
    keep_env: list[str] = Field(default_factory=list, description="Variables kept even when 'scrub_env' matches.")
    timeout_s: float = Field(120.0, gt=0, description="Default time limit of a command.")
    max_timeout_s: float = Field(1800.0, gt=0, description="The longest time limit a caller may ask for.")
    max_output_bytes: int = Field(200_000, gt=0, description="Output kept per stream (head and tail).")
    kill_after_output_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="A command producing more output than this in total is stopped."
    )
    cpu_seconds: int | None = Field(None, gt=0, description="CPU time limit (RLIMIT_CPU), where supported.")
    memory_mb: int | None = Field(None, gt=0, description="Data segment limit (RLIMIT_DATA), where supported.")
    file_size_mb: int | None = Field(1024, gt=0, description="Largest file a command may write (RLIMIT_FSIZE).")
    processes: int | None = Field(
        None, gt=0, description="Process limit (RLIMIT_NPROC); note it counts every process of the user."
    )


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow or deny entry: a program, and optionally a glob over its arguments joined as a shell would."""

    program: str
    args: str | None

    @classmethod
    def parse(cls, text: str) -> Rule:
        program, _, args = text.strip().partition(" ")
        return cls(program, args.strip() or None)

    def matches(self, program: str, args: list[str]) -> bool:
        if program != self.program:
            return False
        return self.args is None or fnmatch.fnmatchcase(shlex.join(args), self.args)


@dataclass(frozen=True, slots=True)
class Approved:
    """A command the policy let through: what to execute, and the program name the rules judged."""

    argv: list[str]
    program: str


_WRAPPER_OPTIONS_WITH_VALUE = {
    "env": {"-u", "--unset"},
    "nice": {"-n", "--adjustment"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "stdbuf": {"-i", "-o", "-e", "--input", "--output", "--error"},
    "nohup": set(),
}
_WRAPPER_REFUSED_OPTIONS = {"env": {"-S", "--split-string", "-C", "--chdir"}}


def check_command(policy: CommandPolicy, workspace: Path, argv: list[str]) -> Approved:
    """Judge ``argv`` against ``policy``; return what to execute (the program as an absolute path)."""
    inner = _unwrap(_usable(argv))
    args = inner[1:]
    bare = "/" not in inner[0]
    # A program named bare is judged before it is looked up, so a refusal says nothing of what is installed.
    name, executable = (inner[0], "") if bare else _locate(inner[0], workspace)
    _judge(policy, name, args)
    if bare:
        name, executable = _locate(inner[0], workspace)
    if policy.confine_arguments:
        _confine_arguments(workspace, args)
    wrappers = argv[: len(argv) - len(inner)]
    if wrappers:
        wrapper_path = shutil.which(wrappers[0])
        if wrapper_path is None:
            raise CommandRefused(f"{wrappers[0]!r} is not installed")
        return Approved([wrapper_path, *wrappers[1:], executable, *args], name)
    return Approved([executable, *args], name)


def check_remote_command(policy: CommandPolicy, argv: list[str]) -> Approved:
    """Judge a command that runs on another machine: by program name (nothing here says what is installed
    there), a workspace program as './path', and path arguments checked lexically against the workspace."""
    inner = _unwrap(_usable(argv))
    program, args = inner[0], inner[1:]
    if "/" in program:
        normal = posixpath.normpath(program)
        if program.startswith("/") or normal == ".." or normal.startswith("../"):
            raise CommandRefused(
                f"{program!r}: name installed programs without a directory, or './path' in the workspace"
            )
        program = "./" + normal
    _judge(policy, program, args)
    if policy.confine_arguments:
        for arg in args:
            value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            if not value or "://" in value or value in SAFE_OUTSIDE_PATHS:
                continue
            normal = posixpath.normpath(value)
            if value.startswith(("/", "~")) or normal == ".." or normal.startswith("../"):
                raise CommandRefused(
                    f"the argument {value[:200]!r} is a path outside the workspace; commands may only name "
                    "paths inside it"
                )
    return Approved(argv, program)


def _usable(argv: list[str]) -> list[str]:
    if not argv or not argv[0]:
        raise CommandRefused("no command given")
    if any("\x00" in arg for arg in argv):
        raise CommandRefused("a command argument contains a NUL byte")
    return argv


def _judge(policy: CommandPolicy, name: str, args: list[str]) -> None:
    """One-liners, then the deny-list, then the allow-list."""
    _refuse_one_liner(policy, name, args)
    for text in policy.deny:
        if Rule.parse(text).matches(name, args):
            raise CommandRefused(f"{shlex.join([name, *args])[:200]!r} is denied by the rule {text!r}")
    if not any(Rule.parse(text).matches(name, args) for text in policy.allow):
        raise CommandRefused(
            f"{name!r} is not on the allow-list of programs (with these arguments); the list is set in "
            "[commands] allow in tandem.toml"
        )


def check_shell(policy: CommandPolicy, command: str) -> None:
    """A shell command string runs only when the policy allows a shell."""
    if not policy.shell:
        raise CommandRefused(
            "shell command strings are not allowed (set 'shell = true' under [commands] in tandem.toml); "
            "pass the program and its arguments as a list instead"
        )
    if "\x00" in command:
        raise CommandRefused("the command contains a NUL byte")


def _unwrap(argv: list[str]) -> list[str]:
    """The command a chain of transparent wrappers (``env X=1 nice -n 5 timeout 10 prog``) ends up running."""
    rest = list(argv)
    while rest and os.path.basename(rest[0]) in _WRAPPER_OPTIONS_WITH_VALUE:
        wrapper = os.path.basename(rest[0])
        takes_value = _WRAPPER_OPTIONS_WITH_VALUE[wrapper]
        refused = _WRAPPER_REFUSED_OPTIONS.get(wrapper, set())
        i = 1
        while i < len(rest):
            arg = rest[i]
            option = arg.split("=", 1)[0]
            if option in refused or (arg.startswith("-") and not arg.startswith("--") and arg[:2] in refused):
                raise CommandRefused(f"'{wrapper} {option}' is not allowed: it hides which command runs")
            if arg == "--":
                i += 1
                break
            if wrapper == "env" and "=" in arg and not arg.startswith("-"):
                i += 1
            elif arg.startswith("-") and arg != "-":
                i += 2 if (arg in takes_value) else 1
            elif wrapper == "timeout" and i == _first_positional(rest, takes_value):
                i += 1  # the duration
            else:
                break
        rest = rest[i:]
        if not rest:
            raise CommandRefused(f"'{wrapper}' without a command to run is not allowed")
    return rest


def _first_positional(argv: list[str], takes_value: set[str]) -> int:
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in takes_value else 1
    return i


def _locate(program: str, workspace: Path) -> tuple[str, str]:
    """The rule name and absolute path of ``program``: found on the server's PATH, or a file in the workspace."""
    if "/" not in program:
        found = shutil.which(program)
        if found is None:
            raise CommandRefused(f"{program!r} is not installed (not found on the server's PATH)")
        return program, found
    if program.startswith("/"):
        base = os.path.basename(program)
        found = shutil.which(base)
        if found is not None and os.path.realpath(found) == os.path.realpath(program):
            return base, found
    try:
        path = workspace_path(workspace, program)
    except PathRefused:
        raise CommandRefused(
            f"{program!r} is neither a program on the server's PATH nor a file in the workspace; "
            "name installed programs without a directory"
        ) from None
    if not os.access(path, os.X_OK) or not path.is_file():
        raise CommandRefused(f"{program!r} is not an executable file")
    return "./" + relative_display(workspace, path), str(path)


def _refuse_one_liner(policy: CommandPolicy, name: str, args: list[str]) -> None:
    if policy.shell:
        return
    base = re.sub(r"[\d.]+$", "", name)  # python3.12 -> python
    pattern = _ONE_LINER_FLAGS.get(base)
    for arg in args:
        if arg == "--":
            break
        if (base in _SHELLS and _SHELL_ONE_LINER.match(arg)) or (pattern is not None and pattern.match(arg)):
            raise CommandRefused(
                f"'{name} {arg}' runs code given on the command line, which counts as a shell command; "
                "write the code to a file in the workspace and run that, or allow a shell in tandem.toml"
            )
        if base in _SHELLS and not arg.startswith("-"):
            break


def _confine_arguments(workspace: Path, args: list[str]) -> None:
    """Arguments that are paths leaving the workspace (absolute, '~', or climbing out with '..') are refused."""
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if not value or "://" in value or value in SAFE_OUTSIDE_PATHS:
            continue
        if value.startswith(("/", "~")) or value == ".." or value.startswith("../") or "/../" in value:
            try:
                workspace_path(workspace, value)
            except PathRefused:
                raise CommandRefused(
                    f"the argument {value[:200]!r} is a path outside the workspace; commands may only name "
                    "paths inside it"
                ) from None


def scrubbed_environment(policy: CommandPolicy, base: dict[str, str], extra: dict[str, str] | None) -> dict[str, str]:
    """``base`` without the variables ``scrub_env`` names, plus the caller's ``extra`` (some names refused)."""
    scrub = [p.upper() for p in policy.scrub_env]
    keep = {k.upper() for k in policy.keep_env}
    env = {
        k: v for k, v in base.items() if k.upper() in keep or not any(fnmatch.fnmatchcase(k.upper(), p) for p in scrub)
    }
    for name, value in (extra or {}).items():
        if not name or "=" in name or "\x00" in name or "\x00" in value:
            raise CommandRefused(f"invalid environment variable name or value: {name[:100]!r}")
        if any(fnmatch.fnmatchcase(name.upper(), p) for p in REFUSED_CALLER_ENV):
            raise CommandRefused(f"the environment variable {name!r} may not be set by a caller: it changes what runs")
        env[name] = value
    return env
