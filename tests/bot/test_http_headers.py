"""Headers every response carries, behind TLS or not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import _harden
from bot.keys import SETTINGS
from bot.settings import Settings

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.mark.parametrize(("public_url", "hsts"), [("https://hotline.example.org", True),
                                                  ("http://127.0.0.1:8080", False)])
async def test_hsts_only_behind_tls_and_never_a_version_banner(aiohttp_client: ClientFactory,
                                                               public_url: str, hsts: bool) -> None:
    app = web.Application()
    app[SETTINGS] = Settings(public_url=public_url)
    app.on_response_prepare.append(_harden)  # type: ignore[arg-type]
    app.router.add_get("/", _ok)
    response = await (await aiohttp_client(app)).get("/")
    assert ("Strict-Transport-Security" in response.headers) is hsts
    assert response.headers["Server"] == "hotline"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
