"""The gateway's routes, one module per area: ``auth``, ``trading``, ``market``, ``ops``, ``ws``."""

from services.gateway.routes import auth, market, ops, trading, ws

ROUTERS = (auth.router, trading.router, market.router, ops.router, ws.router)

__all__ = ["ROUTERS"]
