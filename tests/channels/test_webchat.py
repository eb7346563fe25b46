"""The web chat channel on its own: a recording callback stands in for the bot."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.messages import Button, DeliveryError, Inbound, Outbound
from channels.webchat import PAGE_CSP, WebChat, _FrameBudget

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


class Recorder:
    def __init__(self) -> None:
        self.channel = WebChat()
        self.inbound: list[Inbound] = []
        self.fail_next = False

    async def __call__(self, inbound: Inbound) -> list[Outbound]:
        self.inbound.append(inbound)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the model broke")
        buttons = (Button("Yes, I can talk", "/affirm"), Button("No, not now", "/not_safe"))
        return [Outbound(text=f"echo {len(inbound.text)}", buttons=buttons, lang="ar", direction="rtl")]


@pytest.fixture
async def chat(aiohttp_client: ClientFactory) -> tuple[TestClient, Recorder]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_routes(recorder.channel.routes(recorder))
    return await aiohttp_client(app), recorder


async def test_a_message_is_answered_with_buttons_language_and_direction(chat: Any) -> None:
    client, recorder = chat
    async with client.ws_connect("/chat/ws") as ws:
        await ws.send_json({"type": "hello", "lang": "ar-EG"})
        await ws.send_json({"type": "message", "text": "مرحبا"})
        frame = await ws.receive_json()
    assert frame == {
        "type": "message", "from": "bot", "text": "echo 5", "lang": "ar", "dir": "rtl",
        "buttons": [{"title": "Yes, I can talk", "payload": "/affirm"},
                    {"title": "No, not now", "payload": "/not_safe"}],
    }
    assert recorder.inbound[0].channel == "webchat" and recorder.inbound[0].hints == {"browser_lang": "ar-eg"}


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", "bad_json"),
    (json.dumps({"type": "message", "text": "x" * 5000}), "too_large"),
    (json.dumps({"type": "message", "text": "é" * 2100}), "too_large"),  # 4 KB counts bytes
    (json.dumps({"type": "shout", "text": "hi"}), "unknown_type"),
    (json.dumps(["message"]), "bad_frame"),
    (json.dumps({"text": "no type"}), "bad_frame"),
    (json.dumps({"type": "message", "text": "   "}), "empty"),
    (json.dumps({"type": "message", "text": 42}), "empty"),
    (json.dumps({"type": "message", "text": "a\x00b"}), "bad_text"),
])
async def test_bad_frames_get_an_error_and_the_conversation_goes_on(chat: Any, frame: str, code: str) -> None:
    client, recorder = chat
    async with client.ws_connect("/chat/ws") as ws:
        await ws.send_str(frame)
        error = await ws.receive_json()
        assert error["type"] == "error" and error["code"] == code and error["message"]
        await ws.send_json({"type": "message", "text": "still there?"})
        assert (await ws.receive_json())["text"] == "echo 12"
    assert [i.text for i in recorder.inbound] == ["still there?"]


async def test_binary_frames_are_refused(chat: Any) -> None:
    client, _ = chat
    async with client.ws_connect("/chat/ws") as ws:
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json())["code"] == "bad_frame"


async def test_a_failing_turn_is_an_error_frame_not_a_closed_socket(chat: Any) -> None:
    client, recorder = chat
    recorder.fail_next = True
    async with client.ws_connect("/chat/ws") as ws:
        await ws.send_json({"type": "message", "text": "one"})
        assert (await ws.receive_json())["code"] == "unavailable"
        await ws.send_json({"type": "message", "text": "two"})
        assert (await ws.receive_json())["text"] == "echo 3"


async def test_delete_erases_and_what_follows_is_a_new_conversation(chat: Any) -> None:
    client, recorder = chat
    async with client.ws_connect("/chat/ws") as ws:
        await ws.send_json({"type": "message", "text": "first"})
        await ws.receive_json()
        await ws.send_json({"type": "delete"})
        await ws.receive_json()
        await ws.send_json({"type": "message", "text": "again"})
        await ws.receive_json()
    first, delete, again = recorder.inbound
    assert delete.command == "delete" and delete.address == first.address
    assert again.address != first.address


async def test_each_connection_is_its_own_anonymous_conversation(chat: Any) -> None:
    client, recorder = chat
    for _ in range(2):
        async with client.ws_connect("/chat/ws") as ws:
            await ws.send_json({"type": "message", "text": "hi"})
            await ws.receive_json()
    assert recorder.inbound[0].address != recorder.inbound[1].address


async def test_the_page_is_small_self_contained_neutral_and_never_cached(chat: Any) -> None:
    client, _ = chat
    page = await client.get("/chat")
    html = await page.text()
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert "'unsafe-inline'" not in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP
    assert page.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in page.headers
    assert re.search(r"<title>Chat</title>", html)
    assert "<script>" not in html and not re.search(r"\son[a-z]+=", html)  # no inline script
    total = len(html.encode())
    for asset in re.findall(r'(?:src|href)="(/chat/static/[^"]+)"', html):
        response = await client.get(asset)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        body = await response.read()
        total += len(body)
        assert b"http://" not in body and b"//cdn" not in body
    assert total < 60 * 1024
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from another host


async def test_only_the_page_assets_are_served(chat: Any) -> None:
    client, _ = chat
    for name in ("chat.html", "..%2Fbase.py", "secrets.json"):
        assert (await client.get(f"/chat/static/{name}")).status == 404


async def test_a_later_message_reaches_the_open_page_and_not_a_closed_one(chat: Any) -> None:
    client, recorder = chat
    channel: WebChat = recorder.channel
    async with client.ws_connect("/chat/ws") as ws:
        await ws.send_json({"type": "message", "text": "hi"})
        await ws.receive_json()
        address = recorder.inbound[0].address
        await channel.send(address, Outbound(text="A person from our team is here.", sender="staff"))
        frame = await ws.receive_json()
        assert frame["from"] == "staff" and frame["text"] == "A person from our team is here."
    with pytest.raises(DeliveryError) as caught:
        await channel.send(address, Outbound(text="too late"))
    assert caught.value.permanent


async def test_a_socket_that_floods_is_slowed_down(chat: Any) -> None:
    client, recorder = chat
    async with client.ws_connect("/chat/ws") as ws:
        for _ in range(30):
            await ws.send_str("not json")
        first = await ws.receive_json()
        started = time.monotonic()
        codes = [first["code"]] + [(await ws.receive_json())["code"] for _ in range(29)]
        waited = time.monotonic() - started
    assert codes == ["bad_json"] * 30  # each answered, none dropped
    assert waited >= 10 / _FrameBudget.RATE - 0.1  # the 10 past the burst at the socket's pace
    assert recorder.inbound == []


async def test_messages_past_the_burst_are_all_answered_in_order(chat: Any) -> None:
    client, recorder = chat
    async with client.ws_connect("/chat/ws") as ws:
        for n in range(24):
            await ws.send_json({"type": "message", "text": "x" * (n + 1)})
        echoes = [(await ws.receive_json())["text"] for _ in range(24)]
        await ws.send_json({"type": "delete"})
        assert (await ws.receive_json())["type"] == "message"
    assert echoes == [f"echo {n + 1}" for n in range(24)]
    assert [i.command for i in recorder.inbound][-1] == "delete"
