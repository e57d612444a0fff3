"""The gateway serving the web UI's build (``services.gateway.static``): the page, its assets, and the API first.

The browser tests themselves run under Node (``make web-test``: ``web/tests/e2e``);
this checks the Python side with a stand-in build in a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.static import IMMUTABLE, mount_web


def _build(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><script type="module" src="./assets/app-1a2b.js"></script>')
    (dist / "assets" / "app-1a2b.js").write_text("console.log('rialto')")
    (dist / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return dist


def _app(dist: Path, profile: str = "embedded") -> TestClient:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/instruments")
    async def instruments() -> list[str]:
        return ["BTC-USD"]

    mount_web(app, profile, dist)
    return TestClient(app)


def test_the_page_is_served_at_the_root_and_revalidated(tmp_path: Path) -> None:
    client = _app(_build(tmp_path))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "./assets/app-1a2b.js" in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/index.html").text == page.text
    assert client.head("/").status_code == 200


def test_assets_are_cached_for_good(tmp_path: Path) -> None:
    client = _app(_build(tmp_path))
    asset = client.get("/assets/app-1a2b.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('rialto')"
    assert asset.headers["cache-control"] == IMMUTABLE
    assert client.get("/favicon.svg").status_code == 200
    missing = client.get("/assets/nope.js")
    assert missing.status_code == 404
    assert "cache-control" not in missing.headers


def test_api_routes_keep_priority_and_unknown_paths_stay_404(tmp_path: Path) -> None:
    client = _app(_build(tmp_path))
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/v1/instruments").json() == ["BTC-USD"]
    assert client.get("/no-such-page").status_code == 404
    assert client.get("/v1/nothing").status_code == 404


def test_assets_outside_the_build_are_not_served(tmp_path: Path) -> None:
    dist = _build(tmp_path)
    (tmp_path / "secret.txt").write_text("no")
    client = _app(dist)
    assert client.get("/assets/../../secret.txt").status_code == 404
    assert client.get("/assets/%2e%2e/%2e%2e/secret.txt").status_code == 404


def test_without_a_build_the_root_says_how_to_make_one(tmp_path: Path) -> None:
    client = _app(tmp_path / "missing")
    response = client.get("/")
    assert response.status_code == 404
    assert "make web" in response.json()["error"]["message"]
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("profile", ["aws"])
def test_the_aws_profile_serves_the_build_from_s3_not_here(tmp_path: Path, profile: str) -> None:
    client = _app(_build(tmp_path), profile)
    assert client.get("/").status_code == 404
    assert client.get("/assets/app-1a2b.js").status_code == 404
