"""Thousands of generated inputs against the three parsers a stranger can reach: the
Twilio form, the Telegram update and the web chat protocol. Whatever arrives, the
answer is a clear status or error frame — never a 500, a crash or a lost socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bot.messages import Inbound, Outbound
from bot.settings import Secret
from channels.sms import Sms
from channels.telegram import Telegram
from channels.webchat import WebChat
from tests.conftest import TELEGRAM_SECRET, TELEGRAM_TOKEN, TWILIO_TOKEN

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PUBLIC = "https://hotline.example.org"
TWILIO_FIELDS = ["From", "Body", "MessageSid", "SmsMessageSid", "NumMedia", "MediaUrl0", "To", "AccountSid"]
text = st.text(st.characters(codec="utf-8"), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=20)


async def nothing(inbound: Inbound) -> list[Outbound]:
    assert isinstance(inbound.text, str) and isinstance(inbound.address, str)
    return [Outbound(text=inbound.text[:50])]


async def served(aiohttp_client: ClientFactory, routes: list[web.RouteDef]) -> TestClient:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_routes(routes)
    return await aiohttp_client(app)


@pytest.fixture
async def twilio(aiohttp_client: ClientFactory) -> TestClient:
    channel = Sms("AC1", Secret(TWILIO_TOKEN), "+15005550006", PUBLIC)
    return await served(aiohttp_client, channel.routes(nothing))


@pytest.fixture
async def telegram(aiohttp_client: ClientFactory) -> AsyncIterator[TestClient]:
    channel = Telegram(Secret(TELEGRAM_TOKEN), Secret(TELEGRAM_SECRET), "http://127.0.0.1:9")
    yield await served(aiohttp_client, channel.routes(nothing))
    await channel.close()


@pytest.fixture
async def webchat(aiohttp_client: ClientFactory) -> TestClient:
    return await served(aiohttp_client, WebChat().routes(nothing))


@FUZZ
@given(form=st.dictionaries(st.sampled_from(TWILIO_FIELDS) | text, text, max_size=8), signed=st.booleans())
async def test_any_twilio_form_gets_a_clear_answer(twilio: TestClient, form: dict[str, str],
                                                   signed: bool) -> None:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + "/webhooks/twilio", form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers["X-Twilio-Signature"] = signature
    response = await twilio.post("/webhooks/twilio", data=urlencode(form), headers=headers)
    assert response.status in ((200, 400) if signed else (403,)), (response.status, await response.text())


@FUZZ
@given(update=st.dictionaries(st.sampled_from(["update_id", "message", "callback_query", "edited_message"])
                              | text, json_values, max_size=4))
async def test_any_telegram_update_gets_a_clear_answer(telegram: TestClient, update: dict[str, Any]) -> None:
    response = await telegram.post("/webhooks/telegram", data=json.dumps(update),
                                   headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                                            "Content-Type": "application/json"})
    assert response.status in (200, 400), (response.status, await response.text())


@FUZZ
@given(frames=st.lists(text | json_values.map(json.dumps), min_size=1, max_size=5))
async def test_any_web_chat_frames_get_frames_back_and_the_socket_lives(webchat: TestClient,
                                                                        frames: list[str]) -> None:
    async with webchat.ws_connect("/chat/ws") as ws:
        for frame in frames:
            await ws.send_str(frame)
        await ws.send_json({"type": "message", "text": "still there?"})
        while True:
            reply = await ws.receive_json(timeout=5)
            assert reply["type"] in ("message", "error")
            if reply.get("text") == "still there?":
                break
