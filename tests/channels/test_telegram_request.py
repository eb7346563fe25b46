"""The Bot API over aiohttp: python-telegram-bot's own calls and errors, through real
sockets (the fake Bot API, a server that never answers, a port nobody listens on)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import Forbidden, NetworkError, TimedOut

from channels.telegram_request import AiohttpRequest
from tests.conftest import TELEGRAM_TOKEN
from tests.fakes import FakeTelegram


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest(read_timeout=0.5, connect_timeout=0.5)
    yield request
    await request.shutdown()


def bot(base: str, request: AiohttpRequest) -> Bot:
    return Bot(TELEGRAM_TOKEN, base_url=f"{base}/bot", request=request)


async def test_messages_buttons_and_files_reach_the_bot_api_as_python_telegram_bot_sends_them(
        fake_telegram: FakeTelegram, request_: AiohttpRequest) -> None:
    api = bot(fake_telegram.url, request_)
    sent = await api.send_message(42, "Привіт — you are safe here 🌱", reply_markup={
        "inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}]]})
    assert sent.message_id >= 1000 and sent.chat.id == 42  # the answer is read back
    (call,) = fake_telegram.of("sendMessage")
    assert call.params["text"] == "Привіт — you are safe here 🌱"
    assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}]]}

    assert await api.set_webhook("https://hotline.example/webhooks/telegram", certificate=b"-----PEM-----")
    (hook,) = fake_telegram.of("setWebhook")
    assert hook.params["url"] == "https://hotline.example/webhooks/telegram"
    with hook.params["certificate"].file as certificate:  # a multipart file part
        assert certificate.read() == b"-----PEM-----"


async def test_the_bot_apis_refusals_and_outages_are_python_telegram_bots_errors(
        fake_telegram: FakeTelegram, request_: AiohttpRequest) -> None:
    api = bot(fake_telegram.url, request_)
    fake_telegram.blocked.add(7)
    with pytest.raises(Forbidden, match="blocked"):
        await api.send_message(7, "hello")
    fake_telegram.fail_next = 1
    with pytest.raises(NetworkError):  # a 500
        await api.send_message(8, "hello")
    assert (await api.send_message(8, "again")).text == "again"


async def test_a_bot_api_that_never_answers_times_out_within_the_read_timeout(
        request_: AiohttpRequest) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot(f"http://127.0.0.1:{port}", request_).send_message(1, "hello")
    assert time.monotonic() - started < 3  # 0.5 s read timeout, not forever
    assert accepted  # it did connect
    server.close()
    for writer in accepted:
        writer.close()
    await server.wait_closed()


async def test_nobody_listening_is_a_network_error(request_: AiohttpRequest) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again before the request: nobody listens
    with pytest.raises(NetworkError, match=r"aiohttp\.ClientConnectorError") as raised:
        await bot(f"http://127.0.0.1:{port}", request_).send_message(1, "hello")
    assert TELEGRAM_TOKEN not in str(raised.value)  # the URL holds the token; errors get logged
