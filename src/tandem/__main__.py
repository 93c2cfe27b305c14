"""``python -m tandem`` and the ``tandem`` command.

``tandem pack`` scans the files it packs for secrets in worker processes: their fork server starts first thing,
and imports detect-secrets on another CPU while this process imports the CLI (where there is more than one CPU
and a fork server; see ``tandem.fork_server``).

The CLI is imported with the garbage collector paused: importing pydantic's models and Typer's commands creates
objects by the hundred thousand and no garbage, and collecting them over and over costs a fifth of the import
time of a short command such as ``tandem pack``. What was imported is then frozen out of later collections.
"""

from __future__ import annotations

import gc
import os
import sys

PRELOADS = ("tandem.core.secret_scan_prepared", "tandem.core.encoder_prepared")
"""What ``tandem pack``'s workers preload: detect-secrets prepared and the encoder built, so that they scan and
count (``secret_engine.PREPARED``, ``tokens.PREPARED``, named here so as not to import those modules)."""


def _start_pack_workers(argv: list[str]) -> None:
    if argv[:1] != ["pack"] or "--no-secret-scan" in argv or (os.cpu_count() or 1) < 2:
        return
    from tandem import fork_server

    for module in PRELOADS:
        fork_server.preload(module)
    fork_server.start()


def _forget_working_directory() -> None:
    """``python -m tandem`` puts the working directory first on the import path (unless ``-P``): run in a
    workspace holding a ``typer.py`` or a ``pydantic/``, it would import and run that instead of Tandem's own
    dependency. Tandem never imports from the working directory; the worker processes inherit this path too."""
    if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def main() -> None:
    _forget_working_directory()
    _start_pack_workers(sys.argv[1:])
    gc.disable()
    try:
        from tandem.cli import main as cli
    finally:
        gc.freeze()
        gc.enable()
    cli()


if __name__ == "__main__":
    main()
