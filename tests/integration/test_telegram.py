"""Telegram as the Bot API delivers it: webhook updates in, the fake Bot API out."""

from __future__ import annotations

import itertools
import time
from typing import Any

import aiohttp
import pytest
import redis

from bot.responses import Responses
from channels.telegram import GROUP_NOTICE
from tests.conftest import TELEGRAM_SECRET, RunningServer
from tests.fakes import Call, FakeTelegram

_update_ids = itertools.count(900_000)
_message_ids = itertools.count(1)
_chat_ids = itertools.count(70_000_001)


RESPONSES = Responses.load()


def user(chat_id: int, lang: str = "en") -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "A", "language_code": lang}


def message_update(chat_id: int, chat_type: str = "private", lang: str = "en",
                   **content: Any) -> dict[str, Any]:
    chat = {"id": chat_id, "type": chat_type}
    chat.update({"first_name": "A"} if chat_type == "private" else {"title": "Group"})
    return {"update_id": next(_update_ids), "message": {
        "message_id": next(_message_ids), "date": int(time.time()), "chat": chat,
        "from": user(chat_id if chat_type == "private" else 5, lang), **content}}


def button_press(chat_id: int, data: str, message_id: int, query_id: str) -> dict[str, Any]:
    """The update Telegram sends when a person presses an inline button."""
    return {"update_id": next(_update_ids), "callback_query": {
        "id": query_id, "from": user(chat_id), "chat_instance": "ci", "data": data,
        "message": {"message_id": message_id, "date": int(time.time()), "text": "...",
                    "chat": {"id": chat_id, "type": "private", "first_name": "A"}}}}


class TelegramUser:
    def __init__(self, server: RunningServer, fake: FakeTelegram) -> None:
        self.server = server
        self.fake = fake
        self.chat_id = next(_chat_ids)

    async def deliver(self, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as session, session.post(
                self.server.url + "/webhooks/telegram", json=update, headers=headers) as response:
            return response.status

    def sent(self) -> list[Call]:
        return [c for c in self.fake.of("sendMessage") if int(c.params["chat_id"]) == self.chat_id]

    def deleted(self) -> set[int]:
        """The message ids Hotline asked Telegram to delete in this chat (waits for the call)."""
        def mine(call: Call) -> bool:
            return call.method == "deleteMessages" and int(call.params["chat_id"]) == self.chat_id

        calls = self.fake.wait_for(lambda calls: any(mine(c) for c in calls))
        return {int(i) for c in calls if mine(c) for i in c.params["message_ids"]}

    async def say(self, text: str, replies: int, lang: str = "en") -> list[Call]:
        before = len(self.sent())
        assert await self.deliver(message_update(self.chat_id, lang=lang, text=text)) == 200
        self.fake.wait_for(lambda _: len(self.sent()) >= before + replies)
        return self.sent()[before:]


@pytest.fixture
def person(server: RunningServer, fake_telegram: FakeTelegram) -> TelegramUser:
    return TelegramUser(server, fake_telegram)


def keyboard(call: Call) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def test_nothing_is_registered_at_start_up(server: RunningServer, fake_telegram: FakeTelegram) -> None:
    assert fake_telegram.of("setWebhook") == [] and fake_telegram.of("getUpdates") == []


async def test_a_message_is_answered_with_an_inline_keyboard(person: TelegramUser) -> None:
    notice, question = await person.say("hello", replies=2)
    assert "don't need to give your name" in notice.params["text"]
    assert keyboard(question) == [("Yes, I can talk", "/affirm"), ("No, not now", "/not_safe")]


async def test_the_apps_language_decides_a_greeting_that_could_be_several(person: TelegramUser) -> None:
    """"привіт" is Ukrainian or Russian; a Telegram app set to Ukrainian tips it."""
    notice, question = await person.say("привіт", replies=2, lang="uk")
    assert notice.params["text"] == RESPONSES.render("utter_greet", "uk", "telegram")["text"]
    expected = RESPONSES.render("utter_ask_safe", "uk", "telegram")
    assert question.params["text"] == expected["text"]
    assert keyboard(question) == [(b["title"], b["payload"]) for b in expected["buttons"]]


async def test_a_button_press_is_acknowledged_and_answered(person: TelegramUser,
                                                           fake_telegram: FakeTelegram) -> None:
    await person.say("hello", replies=2)
    update = button_press(person.chat_id, "/affirm", message_id=5, query_id="cbq-1")
    before = len(person.sent())
    assert await person.deliver(update) == 200
    fake_telegram.wait_for(lambda _: len(person.sent()) > before)
    assert person.sent()[-1].params["text"].startswith("Thank you. What would you like to do?")
    assert any(c.params.get("callback_query_id") == "cbq-1" for c in fake_telegram.of("answerCallbackQuery"))


async def test_the_same_update_twice_is_one_turn(server: RunningServer, person: TelegramUser) -> None:
    update = message_update(person.chat_id, text="hello")
    assert await person.deliver(update) == 200
    assert await person.deliver(update) == 200  # Telegram resends until it gets a 200
    # A conversation's messages leave in order: once the answer to "thanks" is out,
    # whatever the two deliveries of "hello" caused has been sent before it.
    assert await person.deliver(message_update(person.chat_id, text="thanks")) == 200
    person.fake.wait_for(lambda _: any(c.params["text"].startswith("You're welcome") for c in person.sent()))
    texts = [c.params["text"] for c in person.sent()]
    assert len(texts) == 3 and texts[2].startswith("You're welcome")


@pytest.mark.parametrize("secret", [None, "wrong-secret", ""])
async def test_a_missing_or_wrong_secret_gets_403(person: TelegramUser, secret: str | None) -> None:
    assert await person.deliver(message_update(person.chat_id, text="hello"), secret=secret) == 403


async def test_malformed_updates_are_a_clear_400(person: TelegramUser) -> None:
    assert await person.deliver({"not": "an update"}) == 400  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as session, session.post(
            person.server.url + "/webhooks/telegram", data=b"{oops",
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}) as response:
        assert response.status == 400


async def test_edits_and_unknown_updates_start_no_turn(person: TelegramUser) -> None:
    edited = message_update(person.chat_id, text="edited hello")
    edited["edited_message"] = {**edited.pop("message"), "edit_date": int(time.time())}
    unknown = {"update_id": next(_update_ids), "a_future_update_kind": {"id": 1}}
    poll = {"update_id": next(_update_ids), "poll": {"id": "1", "question": "?", "options": []}}
    assert await person.deliver(edited) == 200
    assert await person.deliver(unknown) == 200
    assert await person.deliver(poll) == 200  # one the library cannot parse: still no retry loop
    notice, reply = await person.say("thanks", replies=2)
    assert len(person.sent()) == 2 and reply.params["text"].startswith("You're welcome")
    assert "don't need to give your name" in notice.params["text"]


async def test_stickers_and_photos_are_not_kept(person: TelegramUser, fake_telegram: FakeTelegram) -> None:
    sticker = {"file_id": "CAAC", "file_unique_id": "u1", "type": "regular", "width": 512, "height": 512,
               "is_animated": False, "is_video": False}
    photo = [{"file_id": "AgAC", "file_unique_id": "u2", "width": 90, "height": 90}]
    for content in ({"sticker": sticker}, {"photo": photo, "caption": "hello"}):
        before = len(person.sent())
        assert await person.deliver(message_update(person.chat_id, **content)) == 200
        fake_telegram.wait_for(lambda _, n=before: len(person.sent()) > n)
    texts = [c.params["text"] for c in person.sent()]
    assert texts[0].startswith("I can only read text") and texts[1].startswith("I can only read text")
    assert fake_telegram.of("getFile") == []


async def test_a_group_gets_one_line_and_nothing_is_stored(server: RunningServer, person: TelegramUser,
                                                           fake_telegram: FakeTelegram) -> None:
    group_id = -1000000000 - person.chat_id
    update = message_update(group_id, chat_type="group", text="my boss took my passport")
    assert await person.deliver(update) == 200
    calls = fake_telegram.wait_for(lambda calls: any(c.method == "leaveChat" and int(c.params["chat_id"])
                                                     == group_id for c in calls))
    notices = [c for c in calls if c.method == "sendMessage" and int(c.params["chat_id"]) == group_id]
    assert [c.params["text"] for c in notices] == [GROUP_NOTICE]
    conversation = server.conversation("telegram", str(group_id))
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        assert list(client.scan_iter(match=f"*{conversation}*")) == []
    finally:
        client.close()


async def test_delete_removes_both_sides_of_the_chat_and_our_copy(
        server: RunningServer, person: TelegramUser, fake_telegram: FakeTelegram) -> None:
    first = message_update(person.chat_id, text="hello")
    assert await person.deliver(first) == 200
    fake_telegram.wait_for(lambda _: len(person.sent()) >= 2)
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    conversation = server.conversation("telegram", str(person.chat_id))
    try:
        bot_message_ids = {c.params["_sent_id"] for c in person.sent()}
        delete = message_update(person.chat_id, text="/delete")
        assert await person.deliver(delete) == 200
        deleted = person.deleted()
        assert first["message"]["message_id"] in deleted and bot_message_ids <= deleted
        fake_telegram.wait_for(lambda _: "has been deleted" in person.sent()[-1].params["text"])
        assert list(client.scan_iter(match=f"*{conversation}*")) == []
    finally:
        client.close()


async def test_the_delete_button_works_like_the_command(server: RunningServer, person: TelegramUser,
                                                        fake_telegram: FakeTelegram) -> None:
    await person.say("hello", replies=2)
    stop = await person.say("stop", replies=1)
    assert keyboard(stop[0]) == [("Delete this conversation", "/delete")]
    press = button_press(person.chat_id, "/delete", message_id=stop[0].params["_sent_id"], query_id="cbq-del")
    assert await person.deliver(press) == 200
    assert stop[0].params["_sent_id"] in person.deleted()
    fake_telegram.wait_for(lambda _: "has been deleted" in person.sent()[-1].params["text"])
