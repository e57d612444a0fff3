"""Liveness, readiness, Prometheus metrics and the operator's status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.errors import ApiError
from services.gateway.metrics import CONTENT_TYPE
from services.gateway.routes.deps import gateway, json

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process is up and serving."""
    return json({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Recovered, the engine running, and the projection caught up with everything logged before start."""
    gw = gateway(request)
    if not gw.deps.ready():
        return json({"error": {"code": "not_ready", "message": "the venue is starting or stopping"}}, 503)
    return json({"status": "ready"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(gateway(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/admin/status")
async def status(request: Request) -> Response:
    """Engine sequence and state hash, log positions, snapshot and projection positions, fee balances."""
    gw = gateway(request)
    if not gw.settings.admin_api:
        raise ApiError(404, "not_found", "not found")
    return json(await gw.deps.status())
