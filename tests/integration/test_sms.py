"""SMS as Twilio delivers it: signed form posts to the real server, TwiML back."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import aiohttp
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from twilio.request_validator import RequestValidator

from bot.conversation import LANGUAGE
from bot.messages import Outbound
from bot.responses import Responses
from bot.tracker_store import UrlRedisLockStore
from channels.sms_text import render
from tests.conftest import TWILIO_NUMBER, TWILIO_SID, TWILIO_TOKEN, RunningServer, until
from tests.fakes import FakeTwilio
from tests.integration.test_languages import LANGUAGES

RESPONSES = Responses.load()
_sids = itertools.count(1)
_numbers = itertools.count(5550100)


def new_number() -> str:
    return f"+1415{next(_numbers):07d}"


def twilio_form(sender: str, body: str, **extra: str) -> dict[str, str]:
    """The fields Twilio posts for an incoming SMS (the three sids are one id)."""
    sid = f"SM{next(_sids):032x}"
    return {"ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "MessageSid": sid, "SmsSid": sid,
            "NumMedia": "0", "ToCity": "", "FromZip": "", "FromState": "CA",
            "SmsStatus": "received", "FromCity": "", "Body": body, "FromCountry": "US",
            "To": TWILIO_NUMBER, "ToZip": "", "NumSegments": "1", "AccountSid": TWILIO_SID,
            "From": sender, "ApiVersion": "2010-04-01", **extra}


def sign(url: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


class Phone:
    """A person's phone number texting the hotline through Twilio."""

    def __init__(self, server: RunningServer, number: str | None = None) -> None:
        self.server = server
        self.number = number or new_number()
        self.url = server.url + "/webhooks/twilio"

    async def post(self, form: dict[str, str], signature: str | None = None,
                   headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        if signature is not None:
            all_headers["X-Twilio-Signature"] = signature
        async with aiohttp.ClientSession() as session:
            response = await session.post(self.url, data=urlencode(form), headers=all_headers)
            await response.read()
            return response

    async def text(self, body: str, **extra: str) -> list[str]:
        """Send a signed SMS; the reply messages in the TwiML answer."""
        form = twilio_form(self.number, body, **extra)
        return await self.deliver(form)

    async def deliver(self, form: dict[str, str]) -> list[str]:
        response = await self.post(form, sign(self.url, form))
        assert response.status == 200 and response.content_type == "text/xml"
        return messages(await response.text())


def messages(twiml: str) -> list[str]:
    """The SMS messages a TwiML answer sends."""
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


@pytest.fixture
def phone(server: RunningServer) -> Phone:
    return Phone(server)


async def test_a_mexican_number_saying_hola_is_answered_in_spanish(server: RunningServer) -> None:
    """"hola" alone is not sure to be Spanish; the number's country tips it."""
    mexico = Phone(server, "+5215512345678")
    expected = [part for name in ("utter_greet", "utter_ask_safe")
                for part in render(Outbound.from_rasa(RESPONSES.render(name, "es", "sms"), "es"))]
    assert await mexico.text("hola") == expected
    assert expected[-1].endswith("1 - Sí, puedo hablar\n2 - No, ahora no")


async def test_a_chosen_language_lasts_as_long_as_the_conversation(server: RunningServer,
                                                                 phone: Phone) -> None:
    """Kept while the person keeps writing, not for one tracker lifetime from the choice."""
    ukrainian = LANGUAGES["uk"].name
    assert await phone.text(ukrainian) == render(Outbound.from_rasa(
        RESPONSES.render("utter_language_set", "uk", "sms"), "uk"))
    key = LANGUAGE + server.conversation("sms", phone.number)
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        client.expire(key, 5)  # as if the choice was made a day ago
        greeting = render(Outbound.from_rasa(RESPONSES.render("utter_greet", "uk", "sms"), "uk"))
        assert (await phone.text("hello"))[:len(greeting)] == greeting
        assert client.ttl(key) > 5
    finally:
        client.close()


async def test_a_text_is_answered_in_twiml_with_numbered_options(phone: Phone) -> None:
    notice, question = await phone.text("hello")
    assert "don't need to give your name" in notice
    assert question.endswith("1 - Yes, I can talk\n2 - No, not now")
    (menu,) = await phone.text("1")
    assert menu.startswith("Thank you. What would you like to do?")
    assert "5 - Talk to a person" in menu
    (handoff,) = await phone.text(" 5 ")
    assert handoff.startswith("Our team is not online right now.")


async def test_a_number_with_no_options_offered_is_just_text(phone: Phone) -> None:
    notice, reply = await phone.text("7")
    assert "don't need to give your name" in notice and "didn't understand" in reply


@pytest.mark.parametrize("case", ["missing", "bad", "other_token", "other_url", "tampered", "json"])
async def test_unsigned_or_forged_requests_get_a_bare_403(server: RunningServer, phone: Phone,
                                                           case: str) -> None:
    form = twilio_form(phone.number, "Marisol forged this")
    signature = {
        "missing": None,
        "bad": "c2lnbmF0dXJl",
        "other_token": sign(phone.url, form, token="someone-elses-token"),
        "other_url": sign("https://evil.example/webhooks/twilio", form),
        "tampered": sign(phone.url, form),
        "json": sign(phone.url, form),
    }[case]
    if case == "tampered":
        form = {**form, "Body": "changed after signing"}
    headers = {"Content-Type": "application/json"} if case == "json" else None
    response = await phone.post(form, signature, headers)
    assert response.status == 403
    assert "forged" not in await response.text() and "Marisol" not in server.logs()


async def test_a_replayed_delivery_gets_one_bot_turn(server: RunningServer, phone: Phone) -> None:
    form = twilio_form(phone.number, "hello")
    first = await phone.deliver(form)
    # The same signed request again: Twilio retries when our answer did not reach it,
    # so it gets the same answer, and the bot does not take a second turn.
    replay = await phone.deliver(form)
    assert len(first) == 2 and replay == first
    assert server.said("sms", phone.number) == ["hello"]
    async with aiohttp.ClientSession() as session, session.get(server.url + "/metrics") as response:
        assert 'hotline_duplicates_total{channel="sms"}' in await response.text()


async def test_a_delivery_still_being_answered_is_told_to_come_back(server: RunningServer,
                                                                   phone: Phone) -> None:
    """A process that took this delivery died mid-turn (or is still on it): its mark
    says "pending" for a while. The retry is refused with 503, never a 200 that would
    make Twilio drop the message; once the mark lapses the retry is answered."""
    form = twilio_form(phone.number, "hello")
    seen = "seen:sms:" + hashlib.sha256(form["MessageSid"].encode()).hexdigest()
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        client.set(seen, "pending", ex=30)  # as the server marks a delivery it takes
        early = await phone.post(form, sign(phone.url, form))
        assert early.status == 503 and early.headers["Retry-After"] == "5"
        assert (await early.json())["error"] == "in_progress"
        assert server.said("sms", phone.number) == []
        client.delete(seen)  # the dead process's mark lapses (after 30 s)
    finally:
        client.close()
    notice, _ = await phone.deliver(form)
    assert "don't need to give your name" in notice
    assert server.said("sms", phone.number) == ["hello"]


async def test_a_retry_that_waited_behind_its_first_delivery_gets_that_answer(server: RunningServer,
                                                                             phone: Phone) -> None:
    """The first delivery waits for the conversation (another message holds it) and
    its "pending" mark lapses meanwhile (a stalled process), so Twilio's retry gets
    past the mark and waits too. The first is answered; the retry, when its turn
    comes, finds it answered and gets the same answer: no second turn."""
    form = twilio_form(phone.number, "hello")
    seen = "seen:sms:" + hashlib.sha256(form["MessageSid"].encode()).hexdigest()
    conversation = server.conversation("sms", phone.number)
    socket = str(server.redis_socket)
    client = redis.Redis(unix_socket_path=socket)
    locks = UrlRedisLockStore(f"unix://{socket}", AsyncRedis(unix_socket_path=socket))  # used blocking

    async def waiting(count: int, marked: bool = False) -> bool:
        """``count`` deliveries wait behind the held lock (and the first is marked pending)."""
        raw = client.get("lock:" + conversation)
        queued = len(json.loads(raw)["tickets"]) - 1 if raw else 0
        return queued == count and (not marked or client.get(seen) == b"pending")

    try:
        ahead = locks.issue_ticket(conversation, 60)  # another message's turn
        first = asyncio.create_task(phone.deliver(form))
        await until(lambda: waiting(1, marked=True))
        client.delete(seen)  # the first delivery's mark lapses while it waits
        retry = asyncio.create_task(phone.deliver(form))
        await until(lambda: waiting(2))
        locks.cleanup(conversation, ahead)
        answer, again = await first, await retry
    finally:
        locks.close()
        client.close()
    assert len(answer) == 2 and again == answer
    assert server.said("sms", phone.number) == ["hello"]


async def test_media_is_acknowledged_and_never_fetched(phone: Phone, fake_twilio: FakeTwilio) -> None:
    media_url = fake_twilio.url + "/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    replies = await phone.text("", NumMedia="1", MediaUrl0=media_url, MediaContentType0="image/jpeg")
    assert replies == ["I can only read text. We did not open or keep your picture or file; if you "
                       "can, please tell me in words."]
    with_text = await phone.text("hello", NumMedia="1", MediaUrl0=media_url, MediaContentType0="image/jpeg")
    assert "did not open or keep" in with_text[0] and "don't need to give your name" in with_text[1]
    assert all("Media" not in str(call.params) for call in fake_twilio.calls)


async def test_stop_silences_everything_until_start(phone: Phone) -> None:
    await phone.text("hello")
    assert await phone.text("STOP") == []  # Twilio confirms opt-out itself
    assert await phone.text("hello again") == []
    (back,) = await phone.text("start")
    assert "You will get our messages again" in back
    (question,) = await phone.text("hello")  # same session: the notice is not repeated
    assert "safe for you to talk" in question


async def test_help_explains_the_service_and_offers_deletion(phone: Phone) -> None:
    (reply,) = await phone.text("HELP")
    assert "free, confidential helpline" in reply and "STOP" in reply and "DELETE" in reply
    assert reply.endswith("1 - Delete this conversation")
    (confirmation,) = await phone.text("1")
    assert "has been deleted" in confirmation


async def test_delete_erases_the_conversation_and_its_address(server: RunningServer, phone: Phone) -> None:
    await phone.text("hello")
    conversation = server.conversation("sms", phone.number)
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        assert client.exists(f"tracker:{conversation}", f"address:{conversation}") == 2
        (confirmation,) = await phone.text("Delete")
        assert "has been deleted" in confirmation
        assert client.exists(f"tracker:{conversation}", f"address:{conversation}",
                             f"options:{conversation}") == 0
    finally:
        client.close()


async def test_missing_fields_are_a_clear_400(phone: Phone) -> None:
    form = {"Body": "hello", "AccountSid": TWILIO_SID}
    response = await phone.post(form, sign(phone.url, form))
    assert response.status == 400


async def test_no_phone_number_in_redis_or_logs(server: RunningServer, phone: Phone) -> None:
    await phone.text("hello, my name is Marisol")
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        dumped = b"".join(k + (client.dump(k) or b"") for k in client.scan_iter(count=1000))
    finally:
        client.close()
    digits = phone.number.lstrip("+").encode()
    assert digits not in dumped and b"Marisol" not in dumped
    assert phone.number.lstrip("+") not in server.logs() and "Marisol" not in server.logs()


async def test_deleting_erases_the_answers_kept_for_twilios_retries(server: RunningServer,
                                                                   phone: Phone) -> None:
    hello, delete = twilio_form(phone.number, "hello"), twilio_form(phone.number, "delete")
    conversation = server.conversation("sms", phone.number)

    def kept(form: dict[str, str]) -> bool:
        key = f"answer:{conversation}:{hashlib.sha256(form['MessageSid'].encode()).hexdigest()}"
        client = redis.Redis(unix_socket_path=str(server.redis_socket))
        try:
            return bool(client.exists(key))
        finally:
            client.close()

    await phone.deliver(hello)
    assert kept(hello)  # sealed, for ten minutes: it may hold a receipt code
    (confirmation,) = await phone.deliver(delete)
    assert "deleted" in confirmation
    assert not kept(hello) and not kept(delete)  # nothing of the conversation is left
