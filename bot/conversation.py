"""The path of one inbound message, after its channel has checked and parsed it.

Pseudonymise the address → drop provider re-deliveries → numbered options → take
out any receipt code → one read of what the rest needs (rate limits, tracker,
language, opt-out, case, attached report) → the conversation's language → service commands (delete,
STOP/START, HELP, a language asked for) → the NLU reading and triage → the desk
(:mod:`triage.desk`: a person owns the conversation, or it is handed to one) or
else the Rasa agent, speaking that language, and the desk again to keep the case.
Replies go back inline or, for channels that cannot answer in the request, through
the durable outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from aiohttp import web
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.addresses import AddressBook
from bot.background import resilient, running
from bot.crypto import Cipher
from bot.identity import conversation_id
from bot.keys import (
    AGENT,
    CONVERSATIONS,
    DESK,
    LANGUAGES,
    LOCKS,
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
from bot.messages import Button, Command, Inbound, InProgress, Outbound, Sender
from bot.metrics import Metrics
from bot.outbox import Outbox, dump_messages, load_messages
from bot.ratelimit import Bucket, RateLimiter
from bot.responses import DEFAULT_LANGUAGE, Responses, speaking
from bot.tracker_store import EncryptedRedisTrackerStore, Held, Staged, UrlRedisLockStore
from triage.assess import Triage
from triage.cases import Case, CaseStore, Entry
from triage.desk import RECEIPT_BUTTONS, Desk, Say
from triage.lexicon import Lexicon
from triage.presence import Presence
from triage.receipts import Receipts, redact
from triage.retention import Retention, purging

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
# A delivery being answered is marked "pending", and its conversation locked, for
# this long after its process last renewed them: a process killed mid-turn lets the
# provider's retry through within seconds (Twilio gives up after 15 s in all).
_PENDING, _DONE = b"pending", b"done"
_LEASE_SECONDS = 6.0
# An inline answer (SMS TwiML) is kept, sealed, for the provider's retry of a request
# whose response was lost: minutes, not days, since it may carry a receipt code.
_ANSWER = "answer:"
_ANSWER_SECONDS = 600
_LOCK_POLL_SECONDS = 0.02
_SEEN_SECONDS = 3 * 86400  # providers retry for at most a day
# Button payloads and typed words that ask the service, not the bot.
SERVICE_PAYLOADS: dict[str, Command] = {"/delete": "delete", "delete": "delete", "/help": "help"}
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")
# Token buckets (per second, burst): a person typing fast in short bursts stays
# well inside; a script does not. Shared by every process through Redis. Overall,
# HOTLINE_MESSAGES_PER_SECOND with ten seconds of it in a burst; each channel half.
PER_CONVERSATION = (0.5, 20)
BURST_SECONDS = 10
SLOWED = "slowed:"


class Conversations:
    def __init__(self, agent: Agent, trackers: EncryptedRedisTrackerStore, locks: UrlRedisLockStore,
                 client: Redis, cipher: Cipher, addresses: AddressBook, outbox: Outbox,
                 senders: Mapping[str, Sender], pseudonym_key: bytes, metrics: Metrics, ttl_seconds: int,
                 languages: Languages, responses: Responses, desk: Desk, *, messages_per_second: int) -> None:
        self._agent = agent
        self._locks = locks
        self._cipher = cipher
        self._desk = desk
        self._limiter = RateLimiter(client)
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
        self._overall = Bucket("all", messages_per_second, messages_per_second * BURST_SECONDS)
        self._per_channel = (messages_per_second / 2, messages_per_second * BURST_SECONDS // 2)

    async def handle(self, inbound: Inbound, *, inline: bool) -> list[Outbound]:
        """Answer ``inbound``. With ``inline`` the replies are returned for the
        channel to send in its response; otherwise they are queued in the outbox,
        except a deletion's confirmation: nothing is left to queue it with, so it
        is returned for the channel to send at once.

        Exactly once, across processes and crashes: a conversation's messages are
        handled one at a time (Rasa's Redis ticket lock, in arrival order), and
        everything a message changes in the conversation (its tracker, its queued
        replies, the mark that it was answered) is written in one transaction at
        the end. A process that dies before that leaves no trace of the turn, and
        the provider's retry runs it afresh; a retry after it finds the mark and
        gets the same answer again, without a second turn."""
        conversation = conversation_id(self._pseudonym_key, inbound.channel, inbound.address)
        seen = _seen_key(inbound)
        if seen and not await self._redis.set(seen, _PENDING, nx=True, ex=int(_LEASE_SECONDS)):
            self._metrics.duplicates.labels(inbound.channel).inc()
            return await self._answered(conversation, seen, inline)
        # What the message says, and so whether it asks the service, is known before the
        # lock, and its reads go with the ticket's taking; unless it is a number (a button
        # by its number: the buttons offered last are read holding the lock).
        read = None if _NUMBER.match(inbound.text) else _read_as(inbound.text, inbound.command)
        reads = None if read is None else partial(self._reads_in, conversation, inbound, seen, not read[2])
        try:
            async with (running(self._keep_pending(seen)),
                        self._locks.holding(conversation, _LEASE_SECONDS, _LOCK_POLL_SECONDS, reads)
                        as held):
                if read is None:
                    read = _read_as(await self._option_payload(conversation, inbound.text) or inbound.text,
                                    inbound.command)
                text, code, command = read
                early = self._known(conversation, held.replies, seen, not command) if reads else None
                if early is not None and held.fresh:
                    known = early
                else:  # read (again) holding the lock; tokens taken with the ticket stay taken
                    known = await self._read_ahead(conversation, inbound, seen, not command and early is None)
                    if early is not None:
                        known = replace(known, under_limits=early.under_limits)
                if seen and known.answered:
                    return await self._answered(conversation, seen, inline)  # answered meanwhile
                with self._trackers.staging(read={conversation: known.tracker}) as staged:
                    self._metrics.messages.labels(inbound.channel).inc()
                    replies, erased = await self._respond(conversation, inbound, text, code, command, known)
                    now = replies if inline or erased else []
                    # Kept for a retry where the answer goes back in the response (SMS),
                    # never after an erasure: nothing of the conversation may remain.
                    await self._commit(conversation, inbound, None if code else inbound.message_ref, staged,
                                       replies, now, seen, erased,
                                       inline_answer=bool(inline and now and not erased), held=held)
        except BaseException:
            if seen and await self._redis.get(seen) == _PENDING:
                await self._redis.delete(seen)  # not answered: the provider's retry must be
            raise
        if not now:
            self._outbox.wake()
        return now

    async def _commit(self, conversation: str, inbound: Inbound, ref: str | None, staged: Staged,
                      replies: list[Outbound], now: list[Outbound], seen: str | None, erased: bool,
                      inline_answer: bool, held: Held) -> None:
        """One transaction: the trackers the turn saved, the person's address, the
        message's ``ref`` on their device (to delete it on request) and the buttons
        offered (unless the message erased the conversation), the replies not sent
        ``now`` (queued), the mark (and inline answer) a retried delivery will get,
        and the conversation's turn given back (``held``)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self._trackers.write_staged(staged, pipe)
            if not erased:
                self._addresses.remember_in(pipe, conversation, inbound.address)
                if ref:
                    self._addresses.add_ref_in(pipe, conversation, ref)
                self._offer_in(pipe, conversation, replies)
            if not now:
                self._outbox.enqueue_in(pipe, conversation, inbound.channel, replies)
            if seen:
                pipe.set(seen, _DONE, ex=_SEEN_SECONDS)
                if inline_answer:
                    sealed = self._cipher.encrypt(dump_messages(now), seen.encode())
                    pipe.set(_answer_key(conversation, seen), sealed, ex=_ANSWER_SECONDS)
            held.give_back_in(pipe)
            await pipe.execute()

    async def _keep_pending(self, seen: str | None) -> None:
        """Renew this delivery's "pending" mark while it is handled: it lapses
        ``_LEASE_SECONDS`` after this process stops (dies), not while it works."""
        while seen:
            await asyncio.sleep(_LEASE_SECONDS / 3)
            await self._redis.set(seen, _PENDING, xx=True, ex=int(_LEASE_SECONDS))

    async def _answered(self, conversation: str, seen: str, inline: bool) -> list[Outbound]:
        """A delivery seen before: the answer it was given, or a retry-later while
        it is still being answered."""
        if await self._redis.get(seen) != _DONE:
            raise InProgress()
        answer = await self._redis.get(_answer_key(conversation, seen)) if inline else None
        return load_messages(self._cipher.decrypt(answer, seen.encode())) if answer else []

    async def _read_ahead(self, conversation: str, inbound: Inbound, seen: str | None,
                          limited: bool) -> _Known:
        """Everything a message's handling reads before its turn, in one round trip:
        under load each round trip waits a pass of the event loop behind the other
        conversations' work. With ``limited``, a token is taken from each rate limit."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self._reads_in(conversation, inbound, seen, limited, pipe)
            return self._known(conversation, await pipe.execute(), seen, limited)

    def _reads_in(self, conversation: str, inbound: Inbound, seen: str | None, limited: bool,
                  pipe: Pipeline) -> None:
        """Queue :meth:`_read_ahead`'s reads (and token takes) in ``pipe``."""
        pipe.get(self._trackers.key(conversation))
        pipe.getex(LANGUAGE + conversation, ex=self._ttl)  # kept while in use
        self._outbox.stopped_in(pipe, conversation)
        self._desk.cases.of_conversation_in(pipe, conversation)
        self._desk.receipts.attached_in(pipe, conversation)
        if seen:
            pipe.get(seen)
        if limited:
            self._limiter.allow_in(pipe, _conversation_bucket(conversation),
                                   Bucket(f"channel:{inbound.channel}", *self._per_channel),
                                   self._overall)

    def _known(self, conversation: str, replies: list[Any], seen: str | None, limited: bool) -> _Known:
        """The replies to :meth:`_reads_in`'s reads."""
        tracker, language, stopped, case, attached, *rest = replies
        return _Known(tracker=tracker, answered=bool(seen) and rest.pop(0) == _DONE,
                      under_limits=not limited or bool(rest.pop(0)),
                      language=language.decode() if language else "", stopped=bool(stopped),
                      case=self._desk.cases.of_conversation_read(case),
                      attached=self._desk.receipts.unseal_attached(conversation, attached))

    async def _respond(self, conversation: str, inbound: Inbound, text: str, code: str | None,
                       command: Command | None, known: _Known) -> tuple[list[Outbound], bool]:
        """The replies to one message, and whether it erased the conversation (then
        nothing is left to queue the confirmation with)."""
        # Over a rate limit: flooded, unless urgent (a cry for help in a flood gets through).
        if not known.under_limits and self._desk.assess(text, "", {}).priority != "P1":
            return await self._flooded(conversation, inbound, text, known), False
        request = self._languages.request(text) if text and not command and not code else None
        if request is not None and known.case is not None and known.case.paused:
            request = None  # a person owns the conversation: they read it, the bot says nothing
        language = await self._language(conversation, inbound, "" if request or code else text, known)
        if command == "delete":
            return await self._erase(conversation, inbound, language), True
        if request is not None:
            replies = await self._choose_language(conversation, inbound, request, language)
        else:
            replies = await self._answer(conversation, inbound, command, text, code, language, known)
        if code and inbound.message_ref:
            await self._unsend(inbound, inbound.message_ref)
        return replies, False

    async def _flooded(self, conversation: str, inbound: Inbound, text: str, known: _Known) -> list[Outbound]:
        """Over a limit: no NLU, no bot. A responder still gets the words of a case;
        the person hears once a minute to slow down."""
        self._metrics.rate_limited.labels(inbound.channel).inc()
        if known.case is not None and text:
            await self._desk.cases.relay(known.case.id, [Entry(time.time(), "person", text)])
        if not await self._redis.set(SLOWED + conversation, 1, nx=True, ex=60):
            return []
        language = await self._language(conversation, inbound, "", known)
        return [self._response("utter_slow_down", language, inbound.channel)]

    async def _answer(self, conversation: str, inbound: Inbound, command: Command | None,
                      text: str, code: str | None, language: str, known: _Known) -> list[Outbound]:
        if command == "opt_out":
            await self._outbox.stop(conversation)
            return []  # the carrier confirms STOP itself; we send nothing more
        if command == "opt_in":
            await self._outbox.resume(conversation)
            return [self._response("utter_opted_in", language, inbound.channel)]
        if command == "help":
            return [self._response("utter_service_help", language, inbound.channel)]
        if known.stopped:
            # After STOP nothing is sent, not even a reply; the words are still heard.
            if text:
                await self._converse(conversation, inbound, text, code, language, known)
            return []
        notes = ([self._response("utter_media_not_kept", language, inbound.channel)]
                 if inbound.hints.get("media") else [])
        if not text:
            return notes
        return notes + await self._converse(conversation, inbound, text, code, language, known)

    async def _converse(self, conversation: str, inbound: Inbound, text: str, code: str | None,
                        language: str, known: _Known) -> list[Outbound]:
        """Triage the message; the desk answers, or the bot does and the desk follows."""
        desk, channel = self._desk, inbound.channel
        if text.strip() in RECEIPT_BUTTONS:
            return self._say(await desk.receipt_button(conversation, text.strip()), language, channel)
        parse = await self._agent.parse_message(text)
        record = desk.assess(text, language, parse)
        if code:
            return self._say(await desk.enter_code(conversation, code, text, record), language, channel)
        case = known.case
        says = await desk.before_bot(conversation, case, known.attached, channel, language, text, record,
                                     parse, _TrackerView(self._trackers, conversation))
        if says is not None:
            return self._say(says, language, channel)
        try:
            replies = await self._turn(conversation, inbound, text, language, parse)
        finally:
            saved = self._trackers.take_saved(conversation)
        view = _TrackerView(self._trackers, conversation, saved)
        says = await desk.after_bot(conversation, case, channel, language, record, parse, view)
        return replies + self._say(says, language, channel)

    async def _turn(self, conversation: str, inbound: Inbound, text: str, language: str,
                    parse: dict[str, Any]) -> list[Outbound]:
        """One turn of the Rasa agent, on the reading already made, uttered in ``language``."""
        started = time.perf_counter()
        collector = _ChannelCollector(inbound.channel)
        with speaking(language):
            await self._agent.processor.handle_message(UserMessage(  # handle() holds the lock
                text=text, output_channel=collector, sender_id=conversation, parse_data=parse,
                input_channel=inbound.channel, metadata=dict(inbound.hints),
            ))
        self._metrics.turn_seconds.labels(inbound.channel).observe(time.perf_counter() - started)
        direction = self._languages.direction(language)
        return [Outbound.from_rasa(message, language, direction) for message in collector.messages]

    async def _language(self, conversation: str, inbound: Inbound, text: str, known: _Known) -> str:
        """The language to answer in, read from what the person wrote and remembered."""
        stored = known.language
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
        if code + sureness != stored:
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

    def _offer_in(self, pipe: Pipeline, conversation: str, replies: list[Outbound]) -> None:
        """Remember the buttons just offered, so that a typed number can choose one."""
        offered = [b.payload for reply in replies for b in reply.buttons]
        if offered:
            pipe.set(OPTIONS + conversation, json.dumps(offered), ex=self._ttl)

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
            await self._unsend(inbound, *await self._addresses.refs(conversation))
            await self._desk.withdraw(conversation)
            await self._trackers.delete(conversation)
            await self._addresses.forget(conversation)
            await self._outbox.forget(conversation)
            await self._redis.delete(OPTIONS + conversation, LANGUAGE + conversation, SLOWED + conversation,
                                     self._limiter.key(_conversation_bucket(conversation)))
            async for answer in self._redis.scan_iter(match=f"{_ANSWER}{conversation}:*", count=1000):
                await self._redis.delete(answer)
        self._metrics.erasures.labels(inbound.channel).inc()
        return [self._response("utter_erased", language, inbound.channel)]

    async def _unsend(self, inbound: Inbound, *refs: str) -> None:
        """Take these messages off the person's device, where the channel can."""
        sender = self._senders.get(inbound.channel)
        if refs and sender is not None:
            await sender.unsend(inbound.address, refs)

    def _response(self, name: str, language: str, channel: str) -> Outbound:
        """A service message, translated with the rest of the responses."""
        return self._say([Say(name)], language, channel)[0]

    def _say(self, says: list[Say], language: str, channel: str) -> list[Outbound]:
        direction = self._languages.direction(language)
        return [Outbound.from_rasa(self._desk.render(say, language, channel), language, direction)
                for say in says]


@dataclass(frozen=True)
class _Known:
    """What :meth:`Conversations._read_ahead` found."""

    tracker: bytes | None  # sealed, as stored; for Rasa's read of it (bot/tracker_store.py)
    answered: bool  # the delivery was answered while this one waited for the lock
    under_limits: bool  # a token was taken from every rate limit (or none was asked)
    language: str  # as stored: the code and how sure it is, or ""
    stopped: bool  # the person opted out (SMS STOP)
    case: Case | None  # the conversation's own case
    attached: str | None  # the case a receipt code opened


class _TrackerView:
    """The desk's view of the Rasa conversation, read once, when first asked."""

    def __init__(self, trackers: EncryptedRedisTrackerStore, conversation: str,
                 tracker: DialogueStateTracker | None = None) -> None:
        self._trackers = trackers
        self._conversation = conversation
        self._tracker = tracker  # the one the turn just saved, when there was a turn

    async def _read(self) -> DialogueStateTracker:
        if self._tracker is None:
            self._tracker = (await self._trackers.retrieve(self._conversation)
                             or DialogueStateTracker(self._conversation, []))
        return self._tracker

    async def history(self) -> list[tuple[str, str, float]]:
        return [("person" if isinstance(event, UserUttered) else "bot", event.text, event.timestamp)
                for event in (await self._read()).events
                if isinstance(event, (UserUttered, BotUttered)) and event.text]

    async def slots(self) -> Mapping[str, Any]:
        return (await self._read()).current_slot_values()

    async def last_actions(self) -> set[str]:
        actions: set[str] = set()
        for event in reversed((await self._read()).events):
            if isinstance(event, UserUttered):
                break
            if isinstance(event, ActionExecuted) and event.action_name:
                actions.add(event.action_name)
        return actions


class _ChannelCollector(CollectingOutputChannel):
    """Rasa's collector, named after the channel so channel-specific responses apply
    (what SMS and Telegram reveal differs from the web chat)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self._channel = channel

    def name(self) -> str:
        return self._channel


def _read_as(text: str, command: Command | None) -> tuple[str, str | None, Command | None]:
    """The text as the bot reads it, the receipt code taken out of it (a code goes no
    further than the desk), and the service command it is, if any."""
    text, code = redact(_well_formed(text))
    return text, code, command or SERVICE_PAYLOADS.get(text.strip().lower())


def _well_formed(text: str) -> str:
    """The message as it reads. Lone surrogates (JSON can carry them: "\\ud800")
    cannot be stored or encoded: each becomes U+FFFD. Invisible format characters
    (zero-width spaces and joiners, bidi overrides, BOM) go: they split words so that
    neither the language reading nor the lexicons see "help", and a bidi override can
    make a responder read a message backwards."""
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _conversation_bucket(conversation: str) -> Bucket:
    return Bucket(f"conversation:{conversation}", *PER_CONVERSATION)


def _overrides(reading: Detection, text: str) -> bool:
    """A long message, surely in another language, outweighs an earlier reading."""
    return reading.score >= _SWITCH_SCORE and len(text.split()) >= _SWITCH_WORDS


def _answer_key(conversation: str, seen: str) -> str:
    return f"{_ANSWER}{conversation}:{seen.rsplit(':', 1)[1]}"


def _seen_key(inbound: Inbound) -> str | None:
    """The key that marks a provider delivery as answered; None if it has no id."""
    if not inbound.delivery_id:
        return None
    return SEEN + inbound.channel + ":" + hashlib.sha256(inbound.delivery_id.encode()).hexdigest()


async def conversations_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, client = app[SETTINGS], app[REDIS]
    cipher = app[SERVER_KEYS].cipher()
    addresses = AddressBook(client, cipher, settings.tracker_ttl_seconds)
    pseudonym_key = app[SERVER_KEYS].pseudonym_key
    cases = CaseStore(client, cipher)
    app[DESK] = desk = Desk(
        Triage(Lexicon.load(), app[LANGUAGES]), cases, Receipts(client, cipher, pseudonym_key),
        Presence(client), app[RESPONSES], follow_up_hours=settings.follow_up_hours,
    )
    app[OUTBOX] = outbox = Outbox(client, cipher, addresses, app[SENDERS], app[METRICS],
                                  settings.tracker_ttl_seconds, on_staff_delivery=cases.delivered)
    app[CONVERSATIONS] = Conversations(
        app[AGENT], app[TRACKERS], app[LOCKS], client, cipher, addresses, outbox, app[SENDERS], pseudonym_key,
        app[METRICS], settings.tracker_ttl_seconds, app[LANGUAGES], app[RESPONSES], desk,
        messages_per_second=settings.messages_per_second,
    )
    retention = Retention.from_settings(settings)
    with desk.receipts.ready.filling():
        async with (running(resilient("outbox", outbox.run)),
                    running(resilient("purge", lambda: purging(cases, retention)))):
            yield
