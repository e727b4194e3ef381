"""The network edge to Gate API v4 (REST, WebSocket feeds, WebSocket trading API)."""
