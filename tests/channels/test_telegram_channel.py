"""The Telegram channel on its own: updates in, Inbound out (a recorder stands in for the bot)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.background import running
from bot.messages import Inbound, Outbound
from bot.settings import Secret
from channels.telegram import Telegram
from tests.conftest import TELEGRAM_SECRET, TELEGRAM_TOKEN
from tests.fakes import FakeTelegram


class Recorder:
    def __init__(self) -> None:
        self.inbound: list[Inbound] = []
        self.received = asyncio.Event()

    async def __call__(self, inbound: Inbound) -> list[Outbound]:
        self.inbound.append(inbound)
        self.received.set()
        return []


def update(update_id: int, text: str, lang: str = "uk") -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": 7, "date": int(time.time()), "text": text,
        "chat": {"id": 99, "type": "private", "first_name": "A"},
        "from": {"id": 99, "is_bot": False, "first_name": "A", "language_code": lang}}}


@pytest.fixture
async def channel(fake_telegram: FakeTelegram) -> AsyncIterator[Telegram]:
    telegram = Telegram(Secret(TELEGRAM_TOKEN), Secret(TELEGRAM_SECRET), fake_telegram.url)
    yield telegram
    await telegram.close()


async def post(client: TestClient, body: dict[str, Any]) -> int:
    response = await client.post("/webhooks/telegram", json=body,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    return response.status


async def test_language_code_commands_and_ids_are_passed_on(
        channel: Telegram, aiohttp_client: Callable[[web.Application], Awaitable[TestClient]]) -> None:
    recorder = Recorder()
    app = web.Application()
    app.router.add_routes(channel.routes(recorder))
    client = await aiohttp_client(app)
    for n, text in enumerate(["привіт", "/start", "/delete", "/help", "/stop@hotline_bot"]):
        assert await post(client, update(100 + n, text)) == 200
    greeting, start, delete, help_, stop = recorder.inbound
    assert greeting.hints == {"language_code": "uk"} and greeting.text == "привіт"
    assert greeting.address == "99" and greeting.delivery_id == "100" and greeting.message_ref == "7"
    assert start.text == "/greet" and start.command is None
    assert (delete.text, help_.text, stop.text) == ("/delete", "/help", "/stop")


async def test_polling_feeds_the_same_path_without_a_webhook(channel: Telegram,
                                                             fake_telegram: FakeTelegram) -> None:
    recorder = Recorder()
    fake_telegram.updates.append(update(555, "hello from polling"))
    async with running(channel.poll(recorder)):
        await asyncio.wait_for(recorder.received.wait(), 10)
    assert recorder.inbound[0].text == "hello from polling" and recorder.inbound[0].delivery_id == "555"
    polls = fake_telegram.of("getUpdates")
    assert polls and polls[0].params["allowed_updates"] == ["message", "edited_message", "callback_query"]

