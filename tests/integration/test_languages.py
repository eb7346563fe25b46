"""Tried as a new user would, in each of the twelve languages: informal words in,
every reply in that language, every flow reachable, the language switchable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml

from bot.evaluation import STORIES_DIR
from bot.languages import Languages
from bot.responses import Responses
from tests.conftest import RunningServer

LANGUAGES = Languages.load()
RESPONSES = Responses.load()


def lines(code: str) -> dict[str, str]:
    """intent → the first thing a person says with it, from that language's test stories."""
    said: dict[str, str] = {}
    for story in yaml.safe_load((STORIES_DIR / f"test_{code}.yml").read_text(encoding="utf-8"))["stories"]:
        for step in story["steps"]:
            if "user" in step:
                said.setdefault(step["intent"], step["user"].strip())
    return said


def names_by_text(code: str, channel: str) -> dict[str, str]:
    """The text of every response in ``code`` (as sent on ``channel``) → its name."""
    return {RESPONSES.render(name, code, channel)["text"]: name for name in RESPONSES.catalogue["en"]}


class Chat:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def say(self, text: str, replies: int) -> list[dict[str, Any]]:
        await self.ws.send_json({"type": "message", "text": text})
        return [await self.ws.receive_json(timeout=30) for _ in range(replies)]


@pytest.fixture
async def chat(server: RunningServer) -> AsyncIterator[Chat]:
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        # The browser says English: what the person writes must still win.
        await ws.send_json({"type": "hello", "lang": "en-US"})
        yield Chat(ws)


# (what the person says, by intent) → the responses that must come back, in order.
# Asking for a person, or danger, hands the conversation over and the bot falls
# silent: tests/integration/test_handoff.py.
SCRIPT = [
    ("ask_help", ["utter_greet", "utter_help", "utter_ask_work"]),
    ("skip", ["utter_ask_documents"]),
    ("stop", ["utter_stop"]),
    ("job_offer_check", ["utter_job_offer", "utter_job_offer_advice"]),
    ("info_rights", ["utter_info_rights"]),
    ("info_services", ["utter_info_services"]),
    ("give_tip", ["utter_tip", "utter_ask_tip_what"]),
    ("delete_data", ["utter_confirm_delete"]),
    ("deny", ["utter_delete_cancelled"]),
    ("out_of_scope", ["utter_default"]),
    ("thanks", ["utter_welcome"]),
]


@pytest.mark.parametrize("code", LANGUAGES.codes)
async def test_a_person_is_answered_in_their_language_through_every_flow(chat: Chat, code: str) -> None:
    said, known = lines(code), names_by_text(code, "webchat")
    for intent, expected in SCRIPT:
        replies = await chat.say(said[intent], len(expected))
        assert [known.get(r["text"], r["text"]) for r in replies] == expected, f"{code}: {said[intent]!r}"
        assert {(r["lang"], r["dir"]) for r in replies} == {(code, LANGUAGES.direction(code))}


@pytest.mark.parametrize("code", LANGUAGES.codes)
async def test_the_language_can_be_switched_by_name_at_any_time(chat: Chat, code: str) -> None:
    other = LANGUAGES.codes[(LANGUAGES.codes.index(code) + 1) % len(LANGUAGES.codes)]
    said = lines(code)
    await chat.say(said["greet"], 2)
    (switched,) = await chat.say(LANGUAGES[other].name, 1)
    assert switched["lang"] == other and switched["text"] == RESPONSES.render(
        "utter_language_set", other, "webchat")["text"]
    # A language chosen is kept, whatever the person writes next.
    (answer,) = await chat.say(said["info_rights"], 1)
    assert answer["lang"] == other
    assert answer["text"] == RESPONSES.render("utter_info_rights", other, "webchat")["text"]


async def test_the_menu_lists_every_language_and_a_choice_sticks(chat: Chat) -> None:
    (menu,) = await chat.say("/language", 1)
    assert [b["title"] for b in menu["buttons"]] == [LANGUAGES[c].name for c in LANGUAGES.codes]
    arabic = next(b["payload"] for b in menu["buttons"] if b["title"] == "العربية")
    (chosen,) = await chat.say(arabic, 1)
    assert (chosen["lang"], chosen["dir"]) == ("ar", "rtl")


async def test_a_guess_gives_way_to_what_the_person_writes(chat: Chat) -> None:
    notice, _ = await chat.say("ok", 2)
    assert notice["lang"] == "en"  # "ok" alone: the browser's language is the guess
    replies = await chat.say(lines("es")["ask_help"], 2)
    assert {r["lang"] for r in replies} == {"es"}


async def test_a_long_message_in_another_language_switches_a_short_word_does_not(chat: Chat) -> None:
    await chat.say(lines("en")["ask_help"], 3)
    (answer,) = await chat.say("merci", 1)  # one word of French answers the question, in English
    assert answer["lang"] == "en"
    replies = await chat.say(lines("vi")["talk_to_human"] + " " + lines("vi")["info_rights"], 1)
    assert replies[0]["lang"] == "vi"
