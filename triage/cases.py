"""Cases: everything a responder needs to help one person, encrypted, and the queue.

A case opens when a conversation reaches P3 or above, or the person asks for a
person. It holds the triage record (the highest priority seen, never lowered here:
only staff may lower one), a summary so that nobody asks the person to repeat
their story, the transcript, a status and timestamps.

In Redis (docs/triage.md, "Cases and the queue"):

- ``case:<id>``: a hash. Plain fields are what the queue needs and say nothing a
  person wrote (status, priority, kind, language, channel, times, the pseudonymous
  conversation id); ``sealed`` is the encrypted summary (indicators, categories,
  reasons with the words that led to them, requests, answers).
- ``case:<id>:transcript``: a list, one encrypted entry per message.
- ``case-of:<conversation>``: the conversation's case.
- ``queue``: a sorted set of the cases waiting for a responder, by waiting time.
- ``cases:events`` (stream) and ``cases`` (pub/sub): what happened to which case,
  for the console; ids and priorities only.

Threat (docs/threat-model.md, "stolen Redis dump"): the sealed fields and the
transcript are AES-GCM bound to their key name, like the trackers.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.crypto import Cipher
from triage.assess import Kind, Priority, TriageRecord

__all__ = [
    "PAUSED", "WAIT_TARGETS", "Case", "CaseStore", "Entry", "QueueItem", "Status", "Summary", "Taken", "rank",
]

Status = Literal["new", "waiting", "with_responder", "closed"]
Sender = Literal["person", "bot", "staff"]
# A human owns the conversation, or is about to: the bot stays silent.
PAUSED: frozenset[Status] = frozenset({"waiting", "with_responder"})
QUEUED: frozenset[Status] = frozenset({"new", "waiting"})
# How long a case may wait for a responder before it rises one level (and what the
# person is told to expect).
WAIT_TARGETS: dict[Priority, int] = {"P1": 5 * 60, "P2": 30 * 60, "P3": 3600, "P4": 24 * 3600}
CASE = "case:"
BY_CONVERSATION = "case-of:"
QUEUE = "queue"
HELD = "held"  # the cases a responder holds
ALL = "cases"  # every case by opening time, for supervisors
EVENTS = "cases:events"
CHANNEL = "cases"
_EVENTS_KEPT = 10_000
# One change to a case, written only if the case is still the version it was made from:
# its fields, its place in the queue and among the held, and new transcript lines.
# KEYS: the case, the queue, the held set, the transcript. ARGV: the version changed, the
# case id, its queue score ("" if it leaves the queue), "1" if a responder holds it, the
# number of field pairs, the pairs, then the transcript lines. Returns 1 if written, 0 if
# the case changed meanwhile, -1 if it is gone.
_WRITE_CHANGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], unpack(ARGV, 6, 5 + 2 * n))
if ARGV[3] == '' then redis.call('ZREM', KEYS[2], ARGV[2])
else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) end
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[2]) else redis.call('SREM', KEYS[3], ARGV[2]) end
if #ARGV > 5 + 2 * n then redis.call('RPUSH', KEYS[4], unpack(ARGV, 6 + 2 * n)) end
return 1
"""
# A conversation's case, in one round trip: its id (KEYS[1]), then the hash under the
# prefix ARGV[1]. The hash's key is not declared, which Redis allows but Cluster would
# refuse (Cluster is not supported: docs/operations.md). Returns {id, fields} or nil.
_OF_CONVERSATION = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('HGETALL', ARGV[1] .. id)}
"""
# Anonymous counts for the dashboard: cases opened per day by priority, language,
# channel and category; and the waits before a responder took a case.
STATS_DAY = "stats:day:"
STATS_WAIT = "stats:wait:"
_WAITS_KEPT = 1000
_KIND_WEIGHT = {"other": 0, "information": 1, "tip": 2, "help_request": 3}


class Taken(Exception):
    """Another responder holds the case."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"held by {owner}")
        self.owner = owner


def rank(priority: str) -> int:
    """1 for P1 (most urgent) to 4 for P4."""
    return int(priority[1])


@dataclass(frozen=True)
class Summary:
    """What the person has said so far, so that the responder need not ask again."""

    indicators: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    asked_for: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)

    def merged(self, record: TriageRecord | None, asked_for: Iterable[str] = (),
               answers: Mapping[str, str] | None = None) -> Summary:
        def union(old: list[str], new: Iterable[str]) -> list[str]:
            return old + [item for item in dict.fromkeys(new) if item not in old]

        return Summary(
            indicators=sorted(set(self.indicators) | set(record.indicators if record else ())),
            categories=sorted(set(self.categories) | set(record.categories if record else ())),
            reasons=union(self.reasons, record.reasons if record else ()),
            asked_for=union(self.asked_for, asked_for),
            answers={**self.answers, **(answers or {})},
        )


@dataclass(frozen=True)
class Case:
    id: str
    conversation: str
    channel: str
    language: str
    priority: Priority
    kind: Kind
    status: Status
    opened_at: float
    updated_at: float
    waiting_since: float
    summary: Summary
    owner: str = ""
    receipt: str = ""  # the key of its receipt code, if one was given
    withdrawn: bool = False
    escalated: bool = False
    legal_hold: bool = False  # kept whatever the retention rules say, until lifted
    delivery: str = ""  # what became of the last staff message: "sent", or why it failed
    version: int = 0  # how many times it was changed: a change is written only onto the one it read

    @property
    def paused(self) -> bool:
        return self.status in PAUSED


@dataclass(frozen=True)
class Entry:
    """One line of a transcript. ``via`` says how it came when not the usual way
    (``receipt``: added with a receipt code, from wherever the person was)."""

    at: float
    sender: Sender
    text: str
    via: str = ""


@dataclass(frozen=True)
class QueueItem:
    case_id: str
    priority: Priority
    effective: Priority  # after aging
    waiting_seconds: float
    overdue: bool


def aged(priority: Priority, waited: float) -> Priority:
    """A case that waits past its level's target rises one level, and so on."""
    level = rank(priority)
    while level > 1 and waited > WAIT_TARGETS[_priority(level)]:
        waited -= WAIT_TARGETS[_priority(level)]
        level -= 1
    return _priority(level)


class CaseStore:
    def __init__(self, client: Redis, cipher: Cipher, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._cipher = cipher
        self._clock = clock

    async def of_conversation(self, conversation: str) -> Case | None:
        return self.of_conversation_read(
            await self._redis.eval(_OF_CONVERSATION, 1, BY_CONVERSATION + conversation, CASE))

    @staticmethod
    def of_conversation_in(pipe: Pipeline, conversation: str) -> None:
        """Queue the read of the conversation's case in ``pipe`` (read with other keys);
        :meth:`of_conversation_read` makes its reply a case."""
        pipe.eval(_OF_CONVERSATION, 1, BY_CONVERSATION + conversation, CASE)

    def of_conversation_read(self, reply: list[Any] | None) -> Case | None:
        if not reply:
            return None
        case_id, flat = reply
        return self._read(case_id.decode(), dict(zip(flat[::2], flat[1::2], strict=True))) if flat else None

    async def get(self, case_id: str) -> Case | None:
        fields = await self._redis.hgetall(CASE + case_id)
        return self._read(case_id, fields) if fields else None

    async def open(self, conversation: str, channel: str, language: str, record: TriageRecord,
                   history: list[Entry]) -> Case:
        """The conversation's case, opened now with ``history`` as its first
        transcript lines if it has none."""
        case_id = secrets.token_hex(8)
        if not await self._redis.set(BY_CONVERSATION + conversation, case_id, nx=True):
            existing = await self.of_conversation(conversation)
            if existing is not None:
                return existing
            await self._redis.set(BY_CONVERSATION + conversation, case_id)
        now = self._clock()
        case = Case(id=case_id, conversation=conversation, channel=channel, language=language,
                    priority=record.priority, kind=record.kind, status="new", opened_at=now,
                    updated_at=now, waiting_since=now, summary=Summary().merged(record))
        day = STATS_DAY + time.strftime("%Y-%m-%d", time.gmtime(now))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(CASE + case_id, mapping=self._fields(case))
            pipe.zadd(QUEUE, {case_id: now})
            pipe.zadd(ALL, {case_id: now})
            for field in (f"priority:{case.priority}", f"language:{language}", f"channel:{channel}",
                          *(f"category:{c}" for c in record.categories)):
                pipe.hincrby(day, field, 1)
            pipe.expire(day, 400 * 86400)
            await pipe.execute()
        await self.append(case_id, history)
        await self._publish("opened", case)
        return case

    async def note(self, case_id: str, record: TriageRecord | None, *, asked_for: Iterable[str] = (),
                   answers: Mapping[str, str] | None = None, reopen: bool = False,
                   said: Iterable[Entry] = (), known: Case | None = None) -> Case:
        """Add what a message showed, and what was ``said`` to the transcript in the
        same write (``known``: the case as the caller read it, see :meth:`_update`).
        The priority only ever rises; a closed case goes back to the queue when a
        message would have opened one (P3 or above), or with ``reopen``, while the bot
        goes on talking."""
        asked = list(asked_for)
        reopens = reopen or (record is not None and rank(record.priority) <= 3)

        def change(case: Case) -> Case:
            priority = case.priority
            kind = case.kind
            if record is not None:
                priority = min(case.priority, record.priority, key=rank)
                kind = max(case.kind, record.kind, key=_KIND_WEIGHT.__getitem__)
            status: Status = "new" if case.status == "closed" and reopens else case.status
            return replace(case, priority=priority, kind=kind, status=status,
                           summary=case.summary.merged(record, asked, answers))

        before, after = await self._update(case_id, change, said, known)
        if after.priority != before.priority or after.status != before.status:
            await self._publish("updated", after)
        return after

    async def hand_off(self, case_id: str) -> Case:
        """The bot steps back: the case waits for a responder, who owns it next."""
        def change(case: Case) -> Case:
            return case if case.paused else replace(case, status="waiting")

        before, after = await self._update(case_id, change)
        if after.status != before.status:
            await self._publish("handoff", after)
        return after

    async def claim(self, case_id: str, staff: str, *, reassign: bool = False) -> Case:
        """A responder takes the case: it leaves the queue and the bot stays silent.
        Raises :class:`Taken` if another responder holds it (unless ``reassign``)."""
        def change(case: Case) -> Case:
            if case.status == "with_responder" and case.owner != staff and not reassign:
                raise Taken(case.owner)
            return replace(case, status="with_responder", owner=staff)

        before, after = await self._update(case_id, change)
        if before.status in QUEUED:  # how long people wait, by priority (anonymous)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.rpush(STATS_WAIT + before.priority, round(self._clock() - before.waiting_since, 1))
                pipe.ltrim(STATS_WAIT + before.priority, -_WAITS_KEPT, -1)
                await pipe.execute()
        await self._publish("claimed", after)
        return after

    async def escalate(self, case_id: str) -> Case:
        _, after = await self._update(case_id, lambda case: replace(case, escalated=True))
        await self._publish("escalated", after)
        return after

    async def hold(self, case_id: str, held: bool) -> Case:
        """A legal hold: retention never erases the case while it lasts."""
        _, after = await self._update(case_id, lambda case: replace(case, legal_hold=held))
        return after

    async def erase(self, case: Case) -> None:
        """Everything of a case, for retention: what is left are the anonymous counts."""
        key = CASE + case.id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key, key + ":transcript", key + ":ledger", *([case.receipt] if case.receipt else []))
            pipe.zrem(QUEUE, case.id)
            pipe.zrem(ALL, case.id)
            pipe.srem(HELD, case.id)
            await pipe.execute()
        mapping = BY_CONVERSATION + case.conversation
        if case.conversation and await self._redis.get(mapping) == case.id.encode():
            await self._redis.delete(mapping)

    async def delivered(self, conversation: str, status: str) -> None:
        """What became of a staff message: shown on the case page."""
        case = await self.of_conversation(conversation)
        if case is not None:
            _, after = await self._update(case.id, lambda now: replace(now, delivery=status), known=case)
            await self._publish("delivery", after)

    async def close(self, case_id: str) -> Case:
        """The responder is done: the conversation goes back to the bot."""
        _, after = await self._update(case_id, lambda case: replace(case, status="closed", owner=""))
        await self._publish("closed", after)
        return after

    async def reply(self, case_id: str, staff: str, text: str) -> Entry:
        """A responder's answer, kept for the transcript and for a receipt code."""
        entry = Entry(at=self._clock(), sender="staff", text=text)
        await self.append(case_id, [entry])
        await self._publish("message", await self._required(case_id))
        return entry

    async def set_receipt(self, case_id: str, receipt: str, known: Case | None = None) -> None:
        await self._update(case_id, lambda case: replace(case, receipt=receipt), known=known)

    async def relay(self, case_id: str, entries: list[Entry]) -> None:
        """Messages for the responder: kept, and announced to the console."""
        await self.append(case_id, entries)
        await self._publish("message", await self._required(case_id))

    async def append(self, case_id: str, entries: Iterable[Entry]) -> None:
        if sealed := self._sealed_lines(case_id, entries):
            await self._redis.rpush(CASE + case_id + ":transcript", *sealed)

    def _sealed_lines(self, case_id: str, entries: Iterable[Entry]) -> list[bytes]:
        key = CASE + case_id + ":transcript"
        return [self._cipher.encrypt(json.dumps(asdict(e)).encode(), key.encode()) for e in entries]

    async def transcript(self, case_id: str) -> list[Entry]:
        key = CASE + case_id + ":transcript"
        return [Entry(**json.loads(self._cipher.decrypt(blob, key.encode())))
                for blob in await self._redis.lrange(key, 0, -1)]

    async def withdraw(self, conversation: str) -> Case | None:
        """The person deleted their data: the content goes, a tombstone stays so that
        a responder learns that they withdrew (and nobody waits for them)."""
        case_id = await self._redis.get(BY_CONVERSATION + conversation)
        if case_id is None:
            return None

        def change(case: Case) -> Case:
            status: Status = "closed" if case.status in QUEUED else case.status
            return replace(case, status=status, summary=Summary(), withdrawn=True, receipt="")

        _, after = await self._update(case_id.decode(), change)
        await self._redis.delete(CASE + after.id + ":transcript", CASE + after.id + ":ledger",
                                 BY_CONVERSATION + conversation)
        await self._publish("withdrawn", after)
        return after

    async def queue(self) -> list[QueueItem]:
        """Cases waiting for a responder, the most urgent first (after aging), then
        the longest waiting."""
        now = self._clock()
        waiting = await self._redis.zrange(QUEUE, 0, -1, withscores=True)
        async with self._redis.pipeline(transaction=False) as pipe:
            for member, _ in waiting:
                pipe.hget(CASE + member.decode(), "priority")
            priorities = await pipe.execute()
        items = []
        for (member, since), raw in zip(waiting, priorities, strict=True):
            if raw is None:
                continue  # expired
            priority: Priority = raw.decode()
            waited = now - since
            items.append(QueueItem(member.decode(), priority, aged(priority, waited), waited,
                                   waited > WAIT_TARGETS[priority]))
        return sorted(items, key=lambda item: (rank(item.effective), -item.waiting_seconds))

    async def stats(self, days: int) -> tuple[dict[str, dict[str, int]], dict[str, list[float]]]:
        """Cases opened per day (the last ``days``), and the waits by priority."""
        now = self._clock()
        dates = [time.strftime("%Y-%m-%d", time.gmtime(now - d * 86400)) for d in range(days - 1, -1, -1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for date in dates:
                pipe.hgetall(STATS_DAY + date)
            for priority in WAIT_TARGETS:
                pipe.lrange(STATS_WAIT + priority, 0, -1)
            results = await pipe.execute()
        per_day: dict[str, dict[str, int]] = {date: {k.decode(): int(v) for k, v in counts.items()}
                   for date, counts in zip(dates, results[:days], strict=True)}
        waits: dict[str, list[float]] = {p: [float(w) for w in ws]
                                         for p, ws in zip(WAIT_TARGETS, results[days:], strict=True)}
        return per_day, waits

    async def recent(self, limit: int) -> list[Case]:
        """The latest cases opened, newest first (expired ones are dropped from the index)."""
        cases = []
        for member in await self._redis.zrevrange(ALL, 0, limit - 1):
            case = await self.get(member.decode())
            if case is None:
                await self._redis.zrem(ALL, member)
            else:
                cases.append(case)
        return cases

    async def held(self) -> list[str]:
        return sorted(member.decode() for member in await self._redis.smembers(HELD))

    async def _required(self, case_id: str) -> Case:
        case = await self.get(case_id)
        if case is None:
            raise KeyError(case_id)
        return case

    async def _update(self, case_id: str, change: Callable[[Case], Case], said: Iterable[Entry] = (),
                      known: Case | None = None) -> tuple[Case, Case]:
        """Change one case and append what was ``said`` to its transcript, atomically.
        Optimistic: the change is made to the case as read (``known``, if the caller
        has just read it, saves the read) and written only if no one (another message,
        a responder) wrote the case since; otherwise it is read again and made again."""
        lines = self._sealed_lines(case_id, said)
        before = known
        while True:
            if before is None:
                before = await self._required(case_id)
            now = self._clock()
            after = replace(change(before), updated_at=now, version=before.version + 1)
            if after.status in QUEUED and before.status not in QUEUED:
                after = replace(after, waiting_since=now)  # back in the queue: waits anew
            fields = [item for pair in self._fields(after).items() for item in pair]
            written = await self._redis.eval(
                _WRITE_CHANGE, 4, CASE + case_id, QUEUE, HELD, CASE + case_id + ":transcript",
                before.version, case_id, repr(after.waiting_since) if after.status in QUEUED else "",
                "1" if after.status == "with_responder" else "", len(fields) // 2, *fields, *lines)
            if written == 1:
                return before, after
            if written == -1:
                raise KeyError(case_id)
            before = None

    def _fields(self, case: Case) -> dict[str | bytes, bytes | float | int | str]:
        key = CASE + case.id
        summary = self._cipher.encrypt(json.dumps(asdict(case.summary)).encode(), key.encode())
        return {
            "conversation": case.conversation, "channel": case.channel, "language": case.language,
            "priority": case.priority, "kind": case.kind, "status": case.status,
            "opened_at": repr(case.opened_at), "updated_at": repr(case.updated_at),
            "waiting_since": repr(case.waiting_since), "owner": case.owner, "receipt": case.receipt,
            "withdrawn": "1" if case.withdrawn else "", "escalated": "1" if case.escalated else "",
            "delivery": case.delivery, "legal_hold": "1" if case.legal_hold else "", "sealed": summary,
            "v": case.version,
        }

    def _read(self, case_id: str, fields: Mapping[bytes, bytes]) -> Case:
        def text(name: str) -> str:
            return fields.get(name.encode(), b"").decode()

        key = CASE + case_id
        summary = Summary(**json.loads(self._cipher.decrypt(fields[b"sealed"], key.encode())))
        return Case(
            id=case_id, conversation=text("conversation"), channel=text("channel"),
            language=text("language"), priority=text("priority"),  # type: ignore[arg-type]
            kind=text("kind"), status=text("status"),  # type: ignore[arg-type]
            opened_at=float(text("opened_at")), updated_at=float(text("updated_at")),
            waiting_since=float(text("waiting_since")), summary=summary, owner=text("owner"),
            receipt=text("receipt"), withdrawn=bool(text("withdrawn")),
            escalated=bool(text("escalated")), delivery=text("delivery"), legal_hold=bool(text("legal_hold")),
            version=int(text("v") or 0),
        )

    async def _publish(self, event: str, case: Case) -> None:
        payload = {"type": event, "case": case.id, "priority": case.priority, "status": case.status}
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(EVENTS, payload, maxlen=_EVENTS_KEPT, approximate=True)
            pipe.publish(CHANNEL, json.dumps(payload))
            await pipe.execute()


def _priority(level: int) -> Priority:
    return f"P{level}"  # type: ignore[return-value]
