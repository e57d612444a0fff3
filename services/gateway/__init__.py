"""The gateway: the venue's HTTP/WebSocket edge (routes, authentication, rate limits)."""
