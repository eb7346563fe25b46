"""A connection the parent accepts is served by the worker it is handed to."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

from bot.handoff import HandedSite, hand_over, socket_pair


async def _answer(_: web.Request) -> web.Response:
    return web.Response(text="served by the worker")


async def test_a_handed_connection_is_served_and_a_closed_pair_stops_the_worker() -> None:
    app = web.Application()
    app.router.add_get("/", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    parent_end, worker_end = socket_pair()
    parent_gone = asyncio.Event()
    await HandedSite(runner, worker_end, parent_gone.set).start()
    listening = socket.create_server(("127.0.0.1", 0))  # no event loop listens on it: the parent's
    listening.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as session:
            port = listening.getsockname()[1]
            asking = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/"))
            connection, _ = await loop.sock_accept(listening)
            with connection:
                assert hand_over(parent_end, connection)
            response = await asking
            assert await response.text() == "served by the worker"

        parent_end.close()
        await asyncio.wait_for(parent_gone.wait(), timeout=10)
    finally:
        listening.close()
        await runner.cleanup()


def test_a_worker_that_is_gone_takes_nothing() -> None:
    parent_end, worker_end = socket_pair()
    worker_end.close()
    with parent_end, socket.create_server(("127.0.0.1", 0)) as listening, \
            socket.create_connection(listening.getsockname()):
        connection, _ = listening.accept()
        with connection:
            assert not hand_over(parent_end, connection)
