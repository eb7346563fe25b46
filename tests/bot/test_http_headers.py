"""Headers every response carries, behind TLS or not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import _harden, read_timeout
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


async def test_a_body_that_comes_too_slowly_gets_a_408(aiohttp_client: ClientFactory) -> None:
    app = web.Application(middlewares=[read_timeout(0.3)])
    app.router.add_post("/", _ok)
    client = await aiohttp_client(app)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")  # 90 bytes short
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert status_line.startswith(b"HTTP/1.1 408")
    writer.close()
    assert (await client.post("/", data=b"x" * 100)).status == 200  # a whole body is fine
