"""The English conversation end to end: a real server, real model, real Redis.
(Every language: tests/integration/test_languages.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis

from tests.conftest import RunningServer

# Words a person writes; none may appear in Redis or in the logs afterwards.
PRIVATE_WORDS = ["Marisol", "passport", "Fresno", "greenhouse", "Oleksandr"]


class Person:
    """A web chat user: sends a text or a button payload and reads every reply."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def say(self, text: str, replies: int = 1) -> list[dict[str, Any]]:
        """Send ``text`` and read the ``replies`` messages the bot answers with."""
        await self.ws.send_json({"type": "message", "text": text})
        return [await self.ws.receive_json(timeout=30) for _ in range(replies)]

    async def greet(self) -> list[dict[str, Any]]:
        return await self.say("hello", replies=2)  # the notice, then the safety question


@pytest.fixture
async def person(server: RunningServer) -> AsyncIterator[Person]:
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        await ws.send_json({"type": "hello", "lang": "en-GB"})
        yield Person(ws)


def texts(replies: list[dict[str, Any]]) -> str:
    return " ".join(r["text"] for r in replies)


def payloads(replies: list[dict[str, Any]]) -> dict[str, str]:
    return {b["title"]: b["payload"] for r in replies for b in r["buttons"]}


async def test_greeting_is_an_honest_notice_and_a_safety_check(person: Person) -> None:
    replies = await person.say("hi", replies=2)
    said = texts(replies)
    assert "don't need to give your name" in said
    assert "won't tell the police or anyone else without your consent" in said
    assert "Nothing is kept in this browser" in said  # honest about what the web chat keeps
    assert "safe for you to talk right now" in said
    assert all(r["type"] == "message" and r["from"] == "bot" and r["dir"] == "ltr" for r in replies)
    assert payloads(replies) == {"Yes, I can talk": "/affirm", "No, not now": "/not_safe"}


async def test_the_whole_conversation(person: Person) -> None:
    menu = await person.greet()
    menu = await person.say(payloads(menu)["Yes, I can talk"])
    assert "What would you like to do?" in texts(menu)
    assert set(payloads(menu)) == {"I need help", "Report something I saw", "Check a job offer",
                                   "Ask a question", "Talk to a person"}

    help_reply, question = await person.say("my boss took my passport and i cant leave", replies=2)
    assert "Help does not depend on your name, the police or your papers" in help_reply["text"]
    assert "skip any of them" in help_reply["text"]
    # One optional question at a time; each can be skipped, and a person is one tap away.
    assert "paid what you were promised" in question["text"]
    assert payloads([question]) == {"Skip": "/skip", "Talk to a person": "/talk_to_human"}
    (question,) = await person.say("cleaning, they pay me almost nothing")
    assert "passport or ID papers" in question["text"]
    (question,) = await person.say(payloads([question])["Skip"])
    assert "owe money" in question["text"]
    for answer in ["yes 3000 dollars for the trip", "no", "skip"]:
        (question,) = await person.say(answer)
    assert "How old are you?" in question["text"]
    done, receipt = await person.say("17", replies=2)
    assert "You won't need to repeat it" in done["text"]
    assert "Your receipt code is" in receipt["text"]  # the story is told: a way back to it
    await person.say(payloads([receipt])["I saved it"])

    rights = texts(await person.say(payloads([done])["Know my rights"]))
    assert "whatever your immigration status" in rights

    tip, question = await person.say("i want to report something i saw at a farm", replies=2)
    assert "You don't need to give your name" in tip["text"]
    assert question["text"] == "What did you see or hear?"
    for _ in range(4):
        (question,) = await person.say("/skip")
    assert "under 18" in question["text"]
    (done,) = await person.say("i think so, two girls")
    assert "Please don't confront anyone" in done["text"]

    stop = await person.say("stop")
    assert "I will stop here" in texts(stop)

    handoff = texts(await person.say("can i talk to a real person"))
    assert "Our team is not online right now" in handoff  # and then the bot is silent
    erased = texts(await person.say(payloads(stop)["Delete this conversation"]))
    assert "has been deleted" in erased


@pytest.mark.parametrize("answer", ["no not now, he is next to me", "no"])
async def test_it_is_not_safe_now(person: Person, answer: str) -> None:
    await person.greet()
    reply = texts(await person.say(answer))
    assert "Write again whenever it is safe" in reply


async def test_typing_delete_erases_on_any_channel(person: Person) -> None:
    await person.greet()
    assert "has been deleted" in texts(await person.say("Delete"))


@pytest.mark.parametrize("text", ["zxqv blorf", "recommend a pizza place", "1234567"])
async def test_what_it_does_not_understand_never_dead_ends(person: Person, text: str) -> None:
    await person.greet()
    replies = await person.say(text)
    assert "didn't understand" in texts(replies)
    assert "Talk to a person" in payloads(replies)


async def test_the_notice_comes_first_whatever_the_first_message(person: Person) -> None:
    notice, answer, _ = await person.say("my boss took my passport", replies=3)
    assert "don't need to give your name" in notice["text"] and "police" in notice["text"]
    assert "Help does not depend on your name" in answer["text"]
    (later,) = await person.say("talk to a person")  # once per session, not every turn
    assert "Our team is not online right now" in later["text"]


async def test_the_socket_survives_bad_frames_on_the_real_server(person: Person) -> None:
    await person.ws.send_str("{not json")
    assert (await person.ws.receive_json(timeout=5))["code"] == "bad_json"
    assert "don't need to give your name" in texts(await person.greet())


async def test_nothing_personal_is_in_redis_or_the_logs(server: RunningServer, person: Person) -> None:
    await person.greet()
    await person.say("My name is Marisol, they keep my passport at the greenhouse in Fresno")
    await person.say("my friend Oleksandr works there too")
    await person.say("talk to a person")

    keys, dumped = server.stored()
    trackers = sum(key.startswith(b"tracker:webchat:") for key in keys)
    assert trackers >= 1
    logs = server.logs().encode()
    assert b'"event": "http"' in logs  # the log was captured, at DEBUG
    for word in PRIVATE_WORDS:
        assert word.lower().encode() not in dumped.lower(), f"{word} is in Redis"
        assert word.lower().encode() not in logs.lower(), f"{word} is in the logs"


async def test_delete_erases_the_conversation_from_redis(server: RunningServer, person: Person) -> None:
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        before = set(client.scan_iter(match="tracker:*"))
        await person.greet()
        created = set(client.scan_iter(match="tracker:*")) - before
        assert len(created) == 1
        await person.ws.send_json({"type": "delete"})
        assert "has been deleted" in (await person.ws.receive_json(timeout=10))["text"]
        assert not created & set(client.scan_iter(match="tracker:*"))
    finally:
        client.close()


async def test_health_and_metrics(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/healthz") as health:
            assert health.status == 200 and (await health.json()) == {"status": "ok"}
            assert health.headers["Server"] == "hotline"
        async with session.get(server.url + "/metrics") as metrics:
            body = await metrics.text()
    assert 'hotline_messages_total{channel="webchat"}' in body
    assert "hotline_turn_seconds_bucket" in body
