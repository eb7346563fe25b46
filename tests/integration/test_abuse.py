"""A flood on the real server: slowed down, and a cry for help still gets through."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from bot.messages import Outbound
from bot.responses import Responses
from bot.settings import Settings
from channels.sms_text import render
from tests.conftest import RunningServer, start_server, stop_server
from tests.fakes import FakeTelegram, FakeTwilio
from tests.integration.test_sms import Phone

RESPONSES = Responses.load()


def sms(name: str, **values: str) -> list[str]:
    return render(Outbound.from_rasa(RESPONSES.render(name, "en", "sms", **values), "en"))


async def test_a_flood_is_slowed_but_a_cry_for_help_still_gets_through(server: RunningServer) -> None:
    phone = Phone(server)
    for n in range(20):  # a burst of 20 is within a person's limit: every one is answered
        assert await phone.text(f"hello, this is message {n}")
    assert await phone.text("hello again") == sms("utter_slow_down")
    assert await phone.text("and again") == []  # told once a minute, not once a message
    assert await phone.text("please help me now, he is hitting me and i cant get out") == sms(
        "utter_after_hours", hours="12")

    # The flood is counted; the metrics carry no number and no words.
    async with aiohttp.ClientSession() as session, session.get(server.url + "/metrics") as response:
        body = await response.text()
    assert 'hotline_rate_limited_total{channel="sms"} 2.0' in body
    assert phone.number[1:] not in body and "hello" not in body and "hitting" not in body


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory, model_settings: Settings,
                 fake_twilio: FakeTwilio, fake_telegram: FakeTelegram) -> Iterator[RunningServer]:
    """A server told it can answer 2 messages a second: SMS gets 1 a second, 10 at once."""
    running = start_server(tmp_path_factory.mktemp("small-var"), model_settings, fake_twilio, fake_telegram,
                           HOTLINE_MESSAGES_PER_SECOND="2")
    yield running
    stop_server(running)


async def test_many_numbers_at_once_are_slowed_at_the_configured_rate(small_server: RunningServer) -> None:
    # Each number sends once (far inside its own limit); together they are a flood.
    replies = [await Phone(small_server).text("hello") for _ in range(24)]
    greeting = replies[0]
    assert "don't need to give your name" in greeting[0]
    assert replies[:10] == [greeting] * 10  # the channel's burst: 10 at 2 a second
    slowed = replies.count(sms("utter_slow_down"))
    assert slowed and slowed + replies.count(greeting) == 24
    # A cry for help from yet another number passes every limit.
    assert await Phone(small_server).text("please help me now, he is hitting me and i cant get out") == sms(
        "utter_after_hours", hours="12")
