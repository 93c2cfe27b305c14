"""``python -m tandem`` and the ``tandem`` command.

``tandem pack`` scans the files it packs for secrets and counts their tokens in worker processes, and a server's
warm-up starts the same workers: their fork server starts first thing, and imports detect-secrets and builds the
token counter on another CPU while this process imports the CLI (and a server the MCP SDK: half a second), where
there is more than one CPU and a fork server (see ``tandem.fork_server``). A server whose settings turn out to want no
warm-up stops it again (``cli.serve``).

The CLI is imported with the garbage collector paused: importing pydantic's models and Typer's commands creates
objects by the hundred thousand and no garbage, and collecting them over and over costs a fifth of the import
time of a short command such as ``tandem pack``. What was imported is then frozen out of later collections.
"""

from __future__ import annotations

import gc
import os
import sys

PRELOADS = ("tandem.core.secret_scan_prepared", "tandem.core.encoder_prepared")
"""What the workers of ``tandem pack`` and of a server's warm-up preload: detect-secrets prepared and the token
counter built, so that they scan and count (``secret_engine.PREPARED``, ``tokens.PREPARED``, named here so as not
to import those modules)."""


def _start_workers(argv: list[str]) -> None:
    """Start the workers' fork server for the commands that will use it soon: ``pack`` (unless it scans for no
    secrets) and ``serve`` (whose warm-up would start it, after the imports)."""
    if argv[:1] not in (["pack"], ["serve"]) or "--no-secret-scan" in argv or (os.cpu_count() or 1) < 2:
        return
    from tandem import fork_server

    for module in PRELOADS:
        fork_server.preload(module)
    fork_server.start()


def _forget_working_directory() -> None:
    """``python -m tandem`` puts the working directory first on the import path (unless ``-P``): run in a
    workspace holding a ``typer.py`` or a ``pydantic/``, it would import and run that instead of Tandem's own
    dependency. Tandem never imports from the working directory; the worker processes inherit this path too."""
    if sys.flags.safe_path or not sys.path:
        return
    try:
        here = os.getcwd()
    except OSError:  # a directory removed since: nothing there to import, but "" would still name it
        here = ""
    if sys.path[0] in ("", here):
        del sys.path[0]


def main() -> None:
    _forget_working_directory()
    _start_workers(sys.argv[1:])
    gc.disable()
    try:
        from tandem.cli import main as cli
    finally:
        gc.freeze()
        gc.enable()
    cli()


if __name__ == "__main__":
    main()
