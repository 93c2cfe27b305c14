"""Client-side pieces the MCP SDK lacks; today the WebSocket transport."""

from tandem.client.websocket import websocket_client

__all__ = ["websocket_client"]
