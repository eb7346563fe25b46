"""Nothing leaves the machine: every connection and name lookup of the real server,
recorded by an audit hook (tests/egress/sitecustomize.py), goes to loopback — Redis on a
Unix socket and the (fake) provider APIs on 127.0.0.1."""

from __future__ import annotations

import ast

import aiohttp

from tests.conftest import RunningServer
from tests.fakes import FakeTelegram, FakeTwilio
from tests.integration.test_sms import Phone
from tests.integration.test_telegram import TelegramUser

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


async def test_nothing_connects_outside_loopback(server: RunningServer, fake_twilio: FakeTwilio,
                                                 fake_telegram: FakeTelegram) -> None:
    # Traffic on every channel, including sends through both provider APIs.
    await Phone(server).text("hello")
    await TelegramUser(server, fake_telegram).say("hello", 2)
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        await ws.send_json({"type": "message", "text": "hello"})
        await ws.receive_json(timeout=30)
    lines = server.egress()
    assert any(line.startswith("connect") for line in lines), "the hook recorded nothing"
    outside = []
    for line in lines:
        kind, _, raw = line.partition(" ")
        target = ast.literal_eval(raw)
        if kind == "connect" and isinstance(target, tuple):
            host = target[0]
        elif kind == "lookup" and target is not None:  # None: a passive lookup, to listen
            host = target.decode() if isinstance(target, bytes) else target
        else:
            continue  # a Unix socket (Redis) never leaves the machine
        if host not in LOOPBACK:
            outside.append(line)
    assert outside == []
