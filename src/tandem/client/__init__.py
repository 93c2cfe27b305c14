"""Client-side pieces: the catalog client with its registry fallback, and the WebSocket transport the SDK lacks."""

from tandem.client.catalog import CatalogClient, CatalogError, CatalogUnavailable
from tandem.client.websocket import websocket_client

__all__ = ["CatalogClient", "CatalogError", "CatalogUnavailable", "websocket_client"]
