"""The path of one inbound message, after its channel has checked and parsed it.

Pseudonymise the address → drop provider re-deliveries → numbered options → the
conversation's language → service commands (delete, STOP/START, HELP, a language
asked for) → the Rasa agent, speaking that language. Replies go back inline or, for
channels that cannot answer in the request, through the durable outbox.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

from aiohttp import web
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from redis.asyncio import Redis

from bot.addresses import AddressBook
from bot.background import running
from bot.identity import conversation_id
from bot.keys import (
    AGENT,
    CONVERSATIONS,
    LANGUAGES,
    METRICS,
    OUTBOX,
    REDIS,
    RESPONSES,
    SENDERS,
    SERVER_KEYS,
    SETTINGS,
    TRACKERS,
)
from bot.languages import Detection, LanguageRequest, Languages
from bot.messages import Button, Command, Inbound, Outbound, Sender
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.responses import DEFAULT_LANGUAGE, Responses, speaking
from bot.tracker_store import EncryptedRedisTrackerStore

__all__ = ["Conversations", "conversations_ctx"]

SEEN = "seen:"
OPTIONS = "options:"
LANGUAGE = "lang:"
# How sure the conversation is of its language: a guess (from channel hints or an
# unsure reading) is replaced by the next sure reading; a reading of what the person
# wrote is replaced only by a long message that is even surer; a language the person
# chose is kept until they choose another.
_GUESSED, _READ, _CHOSEN = "?", "", "!"
_SWITCH_SCORE = 0.8
_SWITCH_WORDS = 4
_PENDING_SECONDS = 300  # a delivery still being answered; a crash lets a retry through
_SEEN_SECONDS = 3 * 86400  # providers retry for at most a day
# Button payloads and typed words that ask the service, not the bot.
SERVICE_PAYLOADS: dict[str, Command] = {"/delete": "delete", "delete": "delete", "/help": "help"}
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


class Conversations:
    def __init__(self, agent: Agent, trackers: EncryptedRedisTrackerStore, client: Redis,
                 addresses: AddressBook, outbox: Outbox, senders: Mapping[str, Sender],
                 pseudonym_key: bytes, metrics: Metrics, ttl_seconds: int,
                 languages: Languages, responses: Responses) -> None:
        self._agent = agent
        self._languages = languages
        self._responses = responses
        self._trackers = trackers
        self._redis = client
        self._addresses = addresses
        self._outbox = outbox
        self._senders = senders
        self._pseudonym_key = pseudonym_key
        self._metrics = metrics
        self._ttl = ttl_seconds

    async def handle(self, inbound: Inbound, *, inline: bool) -> list[Outbound]:
        """Answer ``inbound``. With ``inline`` the replies are returned for the
        channel to send in its response; otherwise they are queued in the outbox,
        except a deletion's confirmation: nothing is left to queue it with, so it
        is returned for the channel to send at once."""
        conversation = conversation_id(self._pseudonym_key, inbound.channel, inbound.address)
        seen = _seen_key(inbound)
        if seen and not await self._redis.set(seen, "pending", nx=True, ex=_PENDING_SECONDS):
            self._metrics.duplicates.labels(inbound.channel).inc()
            return []
        try:
            self._metrics.messages.labels(inbound.channel).inc()
            text = await self._option_payload(conversation, inbound.text) or inbound.text
            command = inbound.command or SERVICE_PAYLOADS.get(text.strip().lower())
            request = self._languages.request(text) if text and not command else None
            language = await self._language(conversation, inbound, "" if request else text)
            if command == "delete":
                replies = await self._erase(conversation, inbound, language)
            else:
                await self._addresses.remember(conversation, inbound.address)
                if inbound.message_ref:
                    await self._addresses.add_ref(conversation, inbound.message_ref)
                if request is not None:
                    replies = await self._choose_language(conversation, inbound, request, language)
                else:
                    replies = await self._answer(conversation, inbound, command, text, language)
                await self._offer(conversation, replies)
                if not inline:
                    await self._outbox.enqueue(conversation, inbound.channel, replies)
                    replies = []
        except BaseException:
            if seen:
                await self._redis.delete(seen)  # not answered: the provider's retry must be
            raise
        if seen:
            await self._redis.set(seen, "done", ex=_SEEN_SECONDS)
        return replies

    async def _answer(self, conversation: str, inbound: Inbound, command: Command | None,
                      text: str, language: str) -> list[Outbound]:
        if command == "opt_out":
            await self._outbox.stop(conversation)
            return []  # the carrier confirms STOP itself; we send nothing more
        if command == "opt_in":
            await self._outbox.resume(conversation)
            return [self._response("utter_opted_in", language, inbound.channel)]
        if command == "help":
            return [self._response("utter_service_help", language, inbound.channel)]
        if await self._outbox.is_stopped(conversation):
            # After STOP nothing is sent, not even a reply; the words are still heard.
            if text:
                await self._turn(conversation, inbound, text, language)
            return []
        notes = ([self._response("utter_media_not_kept", language, inbound.channel)]
                 if inbound.hints.get("media") else [])
        if not text:
            return notes
        return notes + await self._turn(conversation, inbound, text, language)

    async def _turn(self, conversation: str, inbound: Inbound, text: str, language: str) -> list[Outbound]:
        """One turn of the Rasa agent, uttered in ``language``."""
        started = time.perf_counter()
        collector = _ChannelCollector(inbound.channel)
        with speaking(language):
            await self._agent.handle_message(UserMessage(
                text=text, output_channel=collector, sender_id=conversation,
                input_channel=inbound.channel, metadata=dict(inbound.hints),
            ))
        self._metrics.turn_seconds.labels(inbound.channel).observe(time.perf_counter() - started)
        direction = self._languages.direction(language)
        return [Outbound.from_rasa(message, language, direction) for message in collector.messages]

    async def _language(self, conversation: str, inbound: Inbound, text: str) -> str:
        """The language to answer in, read from what the person wrote and remembered."""
        raw = await self._redis.get(LANGUAGE + conversation)
        stored = raw.decode() if raw else ""
        sureness = stored[-1:] if stored[-1:] in (_GUESSED, _CHOSEN) else _READ
        code = stored[:-1] if sureness else stored
        if code and sureness == _CHOSEN:
            return code
        reading = self._languages.detect(text, inbound.hints) if text else None
        if reading is not None and reading.confident and (not code or sureness == _GUESSED
                                                          or _overrides(reading, text)):
            code, sureness = reading.code, _READ
        elif not code:
            code = (self._languages.from_hints(inbound.hints)
                    or (reading.code if reading else DEFAULT_LANGUAGE))
            sureness = _GUESSED
        await self._redis.set(LANGUAGE + conversation, code + sureness, ex=self._ttl)
        return code

    async def _choose_language(self, conversation: str, inbound: Inbound, request: LanguageRequest,
                               language: str) -> list[Outbound]:
        """Switch to the language asked for, or offer the menu of all of them."""
        if request.code is not None:
            await self._redis.set(LANGUAGE + conversation, request.code + _CHOSEN, ex=self._ttl)
            return [self._response("utter_language_set", request.code, inbound.channel)]
        menu = self._response("utter_language_menu", language, inbound.channel)
        buttons = tuple(Button(self._languages[code].name, f"/lang {code}") for code in self._languages.codes)
        return [replace(menu, buttons=buttons)]

    async def _offer(self, conversation: str, replies: list[Outbound]) -> None:
        """Remember the buttons just offered, so that a typed number can choose one."""
        offered = [b.payload for reply in replies for b in reply.buttons]
        if offered:
            await self._redis.set(OPTIONS + conversation, json.dumps(offered), ex=self._ttl)

    async def _option_payload(self, conversation: str, text: str) -> str | None:
        """"2" answers the second button last offered (SMS shows buttons as numbers)."""
        match = _NUMBER.match(text)
        if match is None:
            return None
        raw = await self._redis.get(OPTIONS + conversation)
        offered: list[str] = json.loads(raw) if raw else []
        number = int(match.group(1))
        return offered[number - 1] if 1 <= number <= len(offered) else None

    async def _erase(self, conversation: str, inbound: Inbound, language: str) -> list[Outbound]:
        """Delete my data: the device's messages where possible, then everything here."""
        async with self._outbox.holding(conversation):
            refs = await self._addresses.refs(conversation)
            sender = self._senders.get(inbound.channel)
            if refs and sender is not None:
                await sender.unsend(inbound.address, refs)
            await self._trackers.delete(conversation)
            await self._addresses.forget(conversation)
            await self._outbox.forget(conversation)
            await self._redis.delete(OPTIONS + conversation, LANGUAGE + conversation)
        self._metrics.erasures.labels(inbound.channel).inc()
        return [self._response("utter_erased", language, inbound.channel)]

    def _response(self, name: str, language: str, channel: str) -> Outbound:
        """A service message, translated with the rest of the responses."""
        message = self._responses.render(name, language, channel)
        return Outbound.from_rasa(message, language, self._languages.direction(language))


class _ChannelCollector(CollectingOutputChannel):
    """Rasa's collector, named after the channel so channel-specific responses apply
    (what SMS and Telegram reveal differs from the web chat)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self._channel = channel

    def name(self) -> str:
        return self._channel


def _overrides(reading: Detection, text: str) -> bool:
    """A long message, surely in another language, outweighs an earlier reading."""
    return reading.score >= _SWITCH_SCORE and len(text.split()) >= _SWITCH_WORDS


def _seen_key(inbound: Inbound) -> str | None:
    """The key that marks a provider delivery as answered; None if it has no id."""
    if not inbound.delivery_id:
        return None
    return SEEN + inbound.channel + ":" + hashlib.sha256(inbound.delivery_id.encode()).hexdigest()


async def conversations_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, client = app[SETTINGS], app[REDIS]
    cipher = app[SERVER_KEYS].cipher()
    addresses = AddressBook(client, cipher, settings.tracker_ttl_seconds)
    outbox = Outbox(client, cipher, addresses, app[SENDERS], app[METRICS], settings.tracker_ttl_seconds)
    app[OUTBOX] = outbox
    app[CONVERSATIONS] = Conversations(
        app[AGENT], app[TRACKERS], client, addresses, outbox, app[SENDERS],
        app[SERVER_KEYS].pseudonym_key, app[METRICS], settings.tracker_ttl_seconds,
        app[LANGUAGES], app[RESPONSES],
    )
    async with running(outbox.run()):
        yield
