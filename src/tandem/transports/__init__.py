"""Transports: one ``TandemServer`` served over stdio, and over HTTP (/mcp, /sse, /ws, /health) from one ASGI app."""
