"""The MCP binding, the interceptor chain and sessions."""

from tandem.server.binding import TandemServer

__all__ = ["TandemServer"]
