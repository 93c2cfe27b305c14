"""``python -m tandem`` and the ``tandem`` command.

The CLI is imported with the garbage collector paused: importing pydantic's models and Typer's commands creates
objects by the hundred thousand and no garbage, and collecting them over and over costs a fifth of the import
time of a short command such as ``tandem pack``. What was imported is then frozen out of later collections.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from tandem.cli import main as cli
    finally:
        gc.freeze()
        gc.enable()
    cli()


if __name__ == "__main__":
    main()
