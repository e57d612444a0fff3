"""The web UI's built assets (``web/dist``, made by ``make web``), served by the gateway.

In the embedded and local profiles the gateway serves the trading screen
itself: ``GET /`` is ``index.html`` and ``/assets/*`` the bundles Vite wrote
(content-hashed names, so they are cached for a year; ``index.html`` is
revalidated every time). The aws profile serves the same build from S3
behind CloudFront, so there nothing is mounted here.

Only those paths (and the few other files at the top of ``web/dist``, such as
the favicon) are added, after the API's routes: an API route always wins,
and an unknown path is still the API's JSON 404. Nothing is rendered on the
server; the page finds the API at its own origin unless its
``<meta name="rialto-api-base">`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from services.gateway.errors import error_body
from services.gateway.routes.deps import json

WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
SERVED_PROFILES = ("embedded", "local")
IMMUTABLE = "public, max-age=31536000, immutable"
# The page talks to its own origin (REST and WebSocket) unless rialto-api-base points elsewhere,
# in which case the deployment serving it sets its own policy (the aws profile's CloudFront).
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Assets(StaticFiles):
    """``/assets/*``: content-hashed bundles, cached for good."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = IMMUTABLE
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _not_built() -> Response:
    return json(error_body("not_found", "the web UI is not built here: run `make web`"), 404)


def mount_web(app: FastAPI, profile: str, directory: Path = WEB_DIST) -> None:
    """Serve the built UI from ``directory`` at ``/`` (embedded and local profiles only)."""
    if profile not in SERVED_PROFILES:
        return
    index = directory / "index.html"

    async def page(request: Request) -> Response:
        if not index.is_file():
            return _not_built()
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    app.add_api_route("/", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/index.html", page, methods=["GET", "HEAD"], include_in_schema=False)
    # Other top-level files of the build (favicon, ...), as they are when the app is made.
    if directory.is_dir():
        for file in sorted(directory.iterdir()):
            if file.is_file() and file.name != "index.html" and not file.name.startswith("."):
                app.add_api_route(f"/{file.name}", _file_route(file), methods=["GET", "HEAD"], include_in_schema=False)
    # check_dir=False: a build made after the venue started is served without a restart.
    app.mount("/assets", _Assets(directory=directory / "assets", check_dir=False), name="web-assets")


def _file_route(file: Path) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        if not file.is_file():
            return _not_built()
        return FileResponse(file, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    return serve
