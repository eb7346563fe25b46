"""Triage on the real server: P1 hands the conversation to a person in every language
and on every channel, cases keep the story, and receipt codes work across channels."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.messages import Outbound
from bot.responses import Responses
from channels.sms_text import render
from tests.conftest import RunningServer, eventually
from tests.fakes import FakeTelegram
from tests.integration.test_languages import LANGUAGES, lines
from tests.integration.test_sms import Phone
from tests.integration.test_telegram import TelegramUser, message_update
from triage.cases import CaseStore, QueueItem
from triage.presence import Presence

RESPONSES = Responses.load()
CHANNELS = ("webchat", "sms", "telegram")
CODE = re.compile(r"\d{4} \d{4} \d{4} \d{4}")


class Client(Protocol):
    channel: str

    async def send(self, text: str, replies: int) -> list[str]:
        """Send ``text``; the texts of the ``replies`` messages that answer it."""
        ...


class Web:
    channel = "webchat"

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, text: str, replies: int) -> list[str]:
        await self.ws.send_json({"type": "message", "text": text})
        return [(await self.ws.receive_json(timeout=30))["text"] for _ in range(replies)]


class Sms:
    channel = "sms"

    def __init__(self, server: RunningServer) -> None:
        self.phone = Phone(server)

    async def send(self, text: str, replies: int) -> list[str]:
        said = await self.phone.text(text)
        assert len(said) >= replies, said
        return said


class Telegram:
    channel = "telegram"

    def __init__(self, server: RunningServer, fake: FakeTelegram) -> None:
        self.user = TelegramUser(server, fake)

    async def send(self, text: str, replies: int) -> list[str]:
        return [call.params["text"] for call in await self.user.say(text, replies)]


@pytest.fixture
async def clients(server: RunningServer, fake_telegram: FakeTelegram) -> AsyncIterator[dict[str, Client]]:
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        yield {"webchat": Web(ws), "sms": Sms(server), "telegram": Telegram(server, fake_telegram)}


@pytest.fixture
async def redis_client(server: RunningServer) -> AsyncIterator[Redis]:
    client = Redis(unix_socket_path=str(server.redis_socket))
    yield client
    await client.close(close_connection_pool=True)


@pytest.fixture
def cases(server: RunningServer, redis_client: Redis) -> CaseStore:
    """The server's cases, read as the console will read them."""
    return CaseStore(redis_client, server.cipher())


@pytest.fixture
async def responder_online(redis_client: Redis) -> AsyncIterator[None]:
    presence = Presence(redis_client)
    await presence.beat("responder-1")
    yield
    await presence.leave("responder-1")


def expected(name: str, code: str, channel: str, **values: str) -> list[str]:
    """The texts a response becomes on ``channel`` (SMS: numbered options, split)."""
    message = RESPONSES.render(name, code, channel, **values)
    return render(Outbound.from_rasa(message, code)) if channel == "sms" else [message["text"]]


async def only_new(cases: CaseStore, before: list[QueueItem]) -> QueueItem:
    known = {item.case_id for item in before}
    (item,) = [item for item in await cases.queue() if item.case_id not in known]
    return item


async def silent(client: Client, text: str, language: str = "en") -> None:
    """Send ``text`` and prove that the bot said nothing: the next thing that comes
    back answers HELP, which is always answered, and messages are taken in order."""
    if client.channel == "sms":
        assert await client.send(text, 0) == []
        return
    await client.send(text, 0)
    (reply,) = await client.send("/help", 1)
    assert reply.startswith(RESPONSES.render("utter_service_help", language, client.channel)["text"][:20])


def test_the_server_hashes_receipt_codes_ahead_on_idle_cpu_only(server: RunningServer) -> None:
    """argon2id for codes runs on a thread of its own at SCHED_IDLE: never in a turn's way."""
    tasks = Path(f"/proc/{server.process.pid}/task")
    eventually(lambda: os.SCHED_IDLE in {os.sched_getscheduler(int(t.name)) for t in tasks.iterdir()})


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("code", LANGUAGES.codes)
async def test_a_p1_pauses_the_bot_tells_what_happens_and_queues_the_case_first(
        clients: dict[str, Client], cases: CaseStore, code: str, channel: str) -> None:
    client = clients[channel]
    before = await cases.queue()
    danger = lines(code)["danger_now"]
    replies = await client.send(danger, 1)
    assert replies[-len(expected("utter_after_hours", code, channel, hours="12")):] == expected(
        "utter_after_hours", code, channel, hours="12")  # nobody online: emergency guidance, when
    item = await only_new(cases, before)
    queue = await cases.queue()
    assert item.priority == "P1"
    position = [i.case_id for i in queue].index(item.case_id)
    assert all(ahead.effective == "P1" for ahead in queue[:position])  # nothing less urgent first
    case = await cases.get(item.case_id)
    assert case is not None and case.paused and case.status == "waiting" and case.channel == channel
    assert case.summary.reasons and case.language == code

    # The bot is paused: neither a restart nor a greeting brings it back.
    await silent(client, "/restart", code)
    await silent(client, lines(code)["greet"], code)
    case = await cases.get(item.case_id)
    assert case is not None and case.status == "waiting"
    said = [entry.text for entry in await cases.transcript(case.id) if entry.sender == "person"]
    assert said[-3:] == [danger, "/restart", lines(code)["greet"]]


@pytest.mark.parametrize("code", LANGUAGES.codes)
async def test_asking_for_a_person_hands_over_in_every_language(clients: dict[str, Client], cases: CaseStore,
                                                                code: str) -> None:
    web = clients["webchat"]
    await web.send(lines(code)["greet"], 2)
    before = await cases.queue()
    assert await web.send(lines(code)["talk_to_human"], 1) == expected(
        "utter_after_hours", code, "webchat", hours="12")
    item = await only_new(cases, before)
    case = await cases.get(item.case_id)
    assert case is not None and case.paused and "a person" in case.summary.asked_for


async def test_with_a_responder_online_the_person_hears_the_expected_wait(
        clients: dict[str, Client], cases: CaseStore, responder_online: None) -> None:
    web = clients["webchat"]
    assert await web.send(lines("es")["danger_now"], 1) == expected(
        "utter_handoff_danger", "es", "webchat", minutes="5")
    sms = clients["sms"]
    await sms.send("hello", 2)
    before = await cases.queue()
    assert await sms.send("I want to talk to a real person", 1) == expected(
        "utter_handoff", "en", "sms", minutes="60")
    item = await only_new(cases, before)
    case = await cases.get(item.case_id)
    assert case is not None and case.priority == "P3" and case.summary.asked_for == ["a person"]
    claimed = await cases.claim(case.id, "responder-1")
    assert claimed.status == "with_responder"
    await silent(sms, "restart")
    assert (await cases.get(case.id)).status == "with_responder"  # type: ignore[union-attr]


async def test_the_case_tells_the_story_once(clients: dict[str, Client], cases: CaseStore) -> None:
    tg = clients["telegram"]
    before = await cases.queue()
    await tg.send("they took my passport and I owe them 3000 dollars", 3)
    item = await only_new(cases, before)
    assert item.priority == "P2"
    for answer in ["cleaning hotels, they pay me nothing", "/skip", "/skip",
                   "no, I cannot leave the farm", "/skip"]:
        await tg.send(answer, 1)
    done, receipt = await tg.send("/skip", 2)
    assert done == expected("utter_help_done", "en", "telegram")[0]
    assert CODE.search(receipt)
    case = await cases.get(item.case_id)
    assert case is not None
    summary = case.summary
    assert {"documents_retained", "debt_bondage"} <= set(summary.indicators)
    assert summary.answers["work"] == "cleaning hotels, they pay me nothing"
    assert summary.answers["movement"] == "no, I cannot leave the farm"
    assert summary.answers["documents"] == "skipped"
    assert "help" in summary.asked_for
    transcript = await cases.transcript(case.id)
    assert transcript[1].text == "they took my passport and I owe them 3000 dollars"  # after the notice
    assert transcript[-1].text == "[receipt code] given"
    assert all(not CODE.search(entry.text) for entry in transcript)


async def test_a_tipster_comes_back_on_another_channel_and_reads_the_reply(
        clients: dict[str, Client], cases: CaseStore, redis_client: Redis) -> None:
    tg, sms = clients["telegram"], clients["sms"]
    before = await cases.queue()
    await tg.send("I want to report something I saw", 3)
    await tg.send("they work at a farm near the river, long hours, no pay, some look under 18", 1)
    for _ in range(3):
        await tg.send("/skip", 1)
    done, receipt = await tg.send("yes", 2)
    assert done == expected("utter_tip_done", "en", "telegram")[0]
    code = CODE.search(receipt)
    assert code is not None
    item = await only_new(cases, before)
    assert item.priority == "P2"  # a tip about minors
    (saved,) = await tg.send("/receipt_saved", 1)
    assert saved == expected("utter_receipt_saved", "en", "telegram")[0]
    await cases.reply(item.case_id, "responder-1", "Thank you. A team is checking the house today.")

    # Another phone, another channel; the code in any grouping.
    assert await sms.send("STATUS " + code.group().replace(" ", "-"), 1) == expected(
        "utter_status_replies", "en", "sms", replies="— Thank you. A team is checking the house today.")
    assert await sms.send("the van is white, it comes on Mondays", 1) == expected(
        "utter_status_added", "en", "sms")
    assert await sms.send("1", 1) == expected("utter_status_done", "en", "sms")  # "1 - Done"
    added = [e for e in await cases.transcript(item.case_id) if e.via == "receipt"]
    assert [e.text for e in added] == ["the van is white, it comes on Mondays"]

    # The code is never kept or echoed: not in Redis, not in the SMS conversation.
    dump = b"".join([await redis_client.dump(key) or b"" for key in await redis_client.keys("*")])
    assert code.group().replace(" ", "").encode() not in dump
    assert code.group().replace(" ", "")[:8].encode() not in dump


async def test_wrong_codes_are_refused_then_limited(clients: dict[str, Client]) -> None:
    web = clients["webchat"]
    for guess in range(5):
        assert await web.send(f"0000 0000 0000 000{guess}", 1) == expected(
            "utter_status_unknown", "en", "webchat")
    assert await web.send("0000 0000 0000 0009", 1) == expected(
        "utter_status_limited", "en", "webchat", minutes="15")


async def test_a_code_typed_in_telegram_is_deleted_from_the_chat(server: RunningServer,
                                                                fake_telegram: FakeTelegram) -> None:
    user = TelegramUser(server, fake_telegram)
    update = message_update(user.chat_id, text="STATUS 4444 5555 6666 7777")
    assert await user.deliver(update) == 200
    assert update["message"]["message_id"] in user.deleted()


async def code_after_the_help_questions(web: Client) -> str:
    """Ask for help, skip every question, and return the receipt code given at the end."""
    await web.send("I need help, my employer keeps my passport", 3)
    for _ in range(5):
        await web.send("/skip", 1)
    _, receipt = await web.send("/skip", 2)
    code = CODE.search(receipt)
    assert code is not None
    return code.group()


async def test_a_code_can_be_refused_and_then_opens_nothing(clients: dict[str, Client]) -> None:
    web = clients["webchat"]
    code = await code_after_the_help_questions(web)
    assert await web.send("/receipt_drop", 1) == expected("utter_receipt_dropped", "en", "webchat")
    assert await clients["sms"].send(f"STATUS {code}", 1) == expected(
        "utter_status_unknown", "en", "sms")


async def test_deleting_ones_data_also_cancels_the_receipt_code(clients: dict[str, Client]) -> None:
    web = clients["webchat"]
    code = await code_after_the_help_questions(web)
    await web.send("/delete", 1)
    assert await clients["sms"].send(f"STATUS {code}", 1) == expected(
        "utter_status_unknown", "en", "sms")


async def test_deleting_leaves_the_responder_a_tombstone(clients: dict[str, Client],
                                                         cases: CaseStore) -> None:
    web = clients["webchat"]
    before = await cases.queue()
    await web.send("help he is hitting me right now", 1)
    item = await only_new(cases, before)
    await web.send("/delete", 1)
    case = await cases.get(item.case_id)
    assert case is not None and case.withdrawn and case.status == "closed"
    assert await cases.transcript(case.id) == [] and case.summary.reasons == []
    assert item.case_id not in {i.case_id for i in await cases.queue()}
