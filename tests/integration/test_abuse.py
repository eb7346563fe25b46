"""A flood on the real server: slowed down, and a cry for help still gets through."""

from __future__ import annotations

import aiohttp

from bot.messages import Outbound
from bot.responses import Responses
from channels.sms_text import render
from tests.conftest import RunningServer
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
