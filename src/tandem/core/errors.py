"""The errors a tool or the core raises, and how each reaches the client."""

from __future__ import annotations


class TandemError(Exception):
    """Base class of every error Tandem raises on purpose."""


class ToolError(TandemError):
    """A tool could not do what was asked; the client gets an ``isError`` result with this message.

    The message is for the model reading it: say what was wrong and what to do instead.
    """


class InvalidArguments(TandemError):
    """The arguments do not fit the tool's schema; the client gets a JSON-RPC invalid-params error."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class MissingCapability(TandemError):
    """The call needs a client capability the client did not declare (e.g. ``{"sampling": {}}``)."""

    def __init__(self, message: str, required: dict[str, object]) -> None:
        super().__init__(message)
        self.required = required


class NotFound(TandemError):
    """A tool, resource or prompt that the registry does not serve; a JSON-RPC invalid-params error."""


class ConfigError(TandemError):
    """A setting is invalid; startup stops with this message, which names the setting."""
