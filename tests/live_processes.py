"""The live processes of this machine, read from /proc (zombies are gone already)."""

from __future__ import annotations

from pathlib import Path

PARENT, GROUP = 1, 2
"""Fields of /proc/PID/stat after the command name: the state is field 0."""


def live(field: int, value: int) -> list[int]:
    """The pids of live processes whose stat ``field`` (``PARENT`` or ``GROUP``) is ``value``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[field]) == value and fields[0] != "Z":
                found.append(int(entry.name))
    return found
