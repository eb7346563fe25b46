"""Rasa's tracker store and lock store on Redis, with every tracker encrypted.

Rasa OSS keeps trackers as plain JSON (docs/threat-model.md, "stolen Redis dump"):
here each tracker is sealed with :class:`bot.crypto.Cipher`, bound to its Redis key,
and expires ``HOTLINE_TRACKER_TTL`` seconds after its last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
import redis
from rasa.core.lock_store import (
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    LockStore,
    RedisLockStore,
)
from rasa.core.tracker_store import SerializedTrackerAsText, TrackerStore
from rasa.shared.core.conversation import Dialogue
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from bot.background import running
from bot.crypto import Cipher

__all__ = ["TRACKER_PREFIX", "EncryptedRedisTrackerStore", "Held", "Staged", "UrlRedisLockStore"]

TRACKER_PREFIX = "tracker:"
# While a message is handled, the trackers it saves wait here (sealed) and are
# written in the same Redis transaction as its replies and its "answered" mark.
Staged = dict[str, bytes]  # conversation → its sealed tracker
_staged: ContextVar[Staged | None] = ContextVar("staged_trackers", default=None)
# The trackers a message read with its other keys before its turn (sealed; None: it has
# none yet), so that Rasa's read of them costs no round trip of its own.
_read_ahead: ContextVar[dict[str, bytes | None] | None] = ContextVar("read_trackers", default=None)
# What json.dumps accepts in a tracker and orjson does not by default: numpy numbers
# (written as numbers) and keys that are not text (written as text).
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class EncryptedRedisTrackerStore(TrackerStore, SerializedTrackerAsText):
    """One encrypted blob per conversation, on the asyncio Redis client."""

    def __init__(self, domain: Domain | None, client: Redis, cipher: Cipher, ttl_seconds: int) -> None:
        super().__init__(domain)
        self._redis = client
        self._cipher = cipher
        self._ttl = ttl_seconds
        self._saved: dict[str, DialogueStateTracker] = {}

    @staticmethod
    def key(sender_id: str) -> str:
        return TRACKER_PREFIX + sender_id

    # Rasa's two, with orjson in place of json: a conversation's whole tracker is written
    # and read at every turn. A 50 KB tracker here: 0.47 → 0.08 ms to write, 0.27 → 0.14 to read.
    @staticmethod
    def serialise_tracker(tracker: DialogueStateTracker) -> str:
        return orjson.dumps(tracker.as_dialogue().as_dict(), option=_JSON_OPTIONS).decode()

    def deserialise_tracker(self, sender_id: str, serialised_tracker: str | bytes) -> DialogueStateTracker:
        tracker = self.init_tracker(sender_id)
        tracker.recreate_from_dialogue(Dialogue.from_parameters(orjson.loads(serialised_tracker)))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        key = self.key(tracker.sender_id)
        sealed = self._cipher.encrypt(self.serialise_tracker(tracker).encode(), key.encode())
        staged = _staged.get()
        if staged is not None:
            staged[tracker.sender_id] = sealed
        else:
            await self._redis.set(key, sealed, ex=self._ttl)
        self._saved[tracker.sender_id] = tracker

    @contextlib.contextmanager
    def staging(self, read: dict[str, bytes | None] | None = None) -> Iterator[Staged]:
        """Hold back the writes of the trackers saved inside: :meth:`write_staged`
        puts them in the caller's transaction, and if that never runs (a crash, an
        error) the stored trackers are as they were before the message. ``read``:
        trackers the caller has just read, as stored at :meth:`key` (the caller holds
        their conversations' locks, so they cannot change meanwhile but by this block)."""
        staged: Staged = {}
        token, read_token = _staged.set(staged), _read_ahead.set(read)
        try:
            yield staged
        finally:
            _staged.reset(token)
            _read_ahead.reset(read_token)
            for sender_id in staged:
                self._saved.pop(sender_id, None)

    def write_staged(self, staged: Staged, pipe: Pipeline) -> None:
        for sender_id, sealed in staged.items():
            pipe.set(self.key(sender_id), sealed, ex=self._ttl)
        staged.clear()

    def take_saved(self, sender_id: str) -> DialogueStateTracker | None:
        """The tracker this process just saved for the conversation, once: the code
        that follows the turn need not read, decrypt and replay it again."""
        return self._saved.pop(sender_id, None)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        key = self.key(sender_id)
        staged, read = _staged.get() or {}, _read_ahead.get() or {}
        if sender_id in staged:
            sealed: bytes | None = staged[sender_id]
        elif sender_id in read:
            sealed = read[sender_id]
        else:
            sealed = await self._redis.get(key)
        if sealed is None:
            return None
        return self.deserialise_tracker(sender_id, self._cipher.decrypt(sealed, key.encode()))

    async def keys(self) -> Iterable[str]:
        return [
            key.decode()[len(TRACKER_PREFIX) :]
            async for key in self._redis.scan_iter(match=TRACKER_PREFIX + "*", count=500)
        ]

    async def delete(self, sender_id: str) -> None:
        self._saved.pop(sender_id, None)
        if (staged := _staged.get()) is not None:
            staged.pop(sender_id, None)
        if (read := _read_ahead.get()) is not None:
            read.pop(sender_id, None)
        await self._redis.delete(self.key(sender_id))


class UrlRedisLockStore(RedisLockStore):
    """Rasa's Redis ticket locks (first come, first served), connected by URL so
    ``unix://`` sockets work too, and safe between processes.

    Rasa changes a lock by reading it, changing it and writing it back: two processes
    doing that at once can be handed the same ticket (and both run the conversation)
    or erase each other's. Here each change is one Lua script (:data:`_TICKETS`),
    atomic in Redis, on the lock as Rasa stores it.

    :meth:`holding` is what a message uses, on the server's asyncio client: a ticket,
    the wait for its turn, the ticket kept alive meanwhile, and its return, in two
    round trips when no one is ahead (taking a ticket also tells whose turn it is).
    Its ticket lives ``lifetime`` seconds after its process last showed life: a slow
    turn keeps the conversation, a killed process lets it go within ``lifetime``.
    Rasa's own interface (``issue_ticket``, ``cleanup``…) runs the same script, blocking.
    """

    def __init__(self, url: str, client: Redis) -> None:
        self.red = redis.StrictRedis.from_url(url, socket_timeout=DEFAULT_SOCKET_TIMEOUT_IN_SECONDS)
        self.key_prefix = "lock:"
        LockStore.__init__(self)
        self._client = client
        self._script = client.register_script(_TICKETS)
        self._blocking_script = self.red.register_script(_TICKETS)

    def _arguments(self, change: str, conversation_id: str, ticket: int, lifetime: float
                   ) -> tuple[list[str], list[str | float]]:
        return [self.key_prefix + conversation_id], [change, repr(time.time()), conversation_id, ticket,
                                                     lifetime]

    async def _change(self, change: str, conversation_id: str, ticket: int = -1, lifetime: float = 0
                      ) -> int:
        keys, args = self._arguments(change, conversation_id, ticket, lifetime)
        with _unavailable():
            return int(await self._script(keys=keys, args=args))

    def _change_in(self, pipe: Pipeline, change: str, conversation_id: str, ticket: int = -1,
                   lifetime: float = 0) -> None:
        """Queue a change in ``pipe``, as a plain EVAL: a Script would add SCRIPT EXISTS to a
        pipeline, and EVALSHA inside MULTI fails on a Redis whose script cache was emptied."""
        keys, args = self._arguments(change, conversation_id, ticket, lifetime)
        pipe.eval(_TICKETS, len(keys), *keys, *args)

    async def _take(self, conversation_id: str, lifetime: float, reads: Callable[[Pipeline], None] | None
                    ) -> tuple[int, int, list[Any]]:
        """A new ticket, the ticket served now (the same one when no one is ahead),
        and the replies to the ``reads`` queued after it in the same round trip."""
        with _unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                self._change_in(pipe, "take", conversation_id, -1, lifetime)
                if reads is not None:
                    reads(pipe)
                (ticket, serving), *replies = await pipe.execute()
        return int(ticket), int(serving), replies

    def _change_blocking(self, change: str, conversation_id: str, ticket: int = -1, lifetime: float = 0
                         ) -> int:
        keys, args = self._arguments(change, conversation_id, ticket, lifetime)
        with _unavailable():
            return int(self._blocking_script(keys=keys, args=args))

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self._change_blocking("issue", conversation_id, lifetime=lock_lifetime)

    def update_lock(self, conversation_id: str) -> None:
        self._change_blocking("prune", conversation_id)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        self._change_blocking("done", conversation_id, ticket_number)

    @contextlib.asynccontextmanager
    async def holding(self, conversation_id: str, lifetime: float, poll_seconds: float,
                      reads: Callable[[Pipeline], None] | None = None) -> AsyncIterator[Held]:
        """Wait for the conversation's turn (tickets are served in the order taken),
        hold it while the block runs, and keep the ticket alive meanwhile; give it
        back after, unless the block did in its own transaction (:meth:`Held.give_back_in`).

        ``reads`` queues commands sent with the ticket's taking, in its round trip.
        Yields their replies, and whether they were read holding the lock: true when
        the turn was this ticket's at once; after a wait they may be stale (the
        caller reads again; any change they made stays made)."""
        ticket, serving, replies = await self._take(conversation_id, lifetime, reads)
        held = Held(replies, serving == ticket, partial(self._change_in, change="done",
                                                        conversation_id=conversation_id, ticket=ticket))

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(lifetime / 3)
                await self._change("extend", conversation_id, ticket, lifetime)

        try:
            async with running(keep_alive()):
                while serving != ticket:
                    if serving < 0:  # every ticket expired, this one too
                        raise LockError("the conversation's lock expired while waiting")
                    await asyncio.sleep(poll_seconds)
                    serving = await self._change("serving", conversation_id)
                yield held
        except BaseException:
            await self._change("done", conversation_id, ticket)  # again if it was queued: a no-op
            raise
        if not held.given_back:
            await self._change("done", conversation_id, ticket)

    def close(self) -> None:
        self.red.close()


@dataclass
class Held:
    """A conversation's turn, while :meth:`UrlRedisLockStore.holding` runs."""

    replies: list[Any]  # to the reads sent with the ticket's taking
    fresh: bool  # read holding the turn: no one was ahead
    _done_in: Callable[[Pipeline], None]  # queues the lock's "done" for this ticket
    given_back: bool = False

    def give_back_in(self, pipe: Pipeline) -> None:
        """Give the turn back in ``pipe``'s transaction, with what it commits: one round
        trip fewer than after it. If the block then fails, :meth:`~UrlRedisLockStore.holding`
        gives it back again (a no-op once done)."""
        self._done_in(pipe)
        self.given_back = True


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Redis trouble while changing a lock, as the lock error callers handle."""
    try:
        yield
    except RedisError as exc:
        raise LockError(f"the conversation's lock is unavailable: {type(exc).__name__}") from exc


# One change to a conversation's ticket lock, kept as Rasa's TicketLock keeps it:
# {"conversation_id": …, "tickets": ["{\"number\": n, \"expires\": t}", …]}.
# ARGV: the change ("issue", "take", "serving", "extend", "done" or "prune"), the time
# now, the conversation, a ticket, a lifetime. As in Rasa, expired tickets are dropped
# first, a new ticket follows the last one (0 if none), and the lock is deleted when no
# ticket is left. Returns the new ticket ("issue"), the new ticket and the one now served
# ("take"), the ticket now served or -1 without a lock ("serving"), or 0.
_TICKETS = """
local change, now = ARGV[1], tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
if not raw and change ~= 'issue' and change ~= 'take' then
  return -1
end
local tickets, expired = {}, false
if raw then
  for _, encoded in ipairs(cjson.decode(raw).tickets) do
    local ticket = cjson.decode(encoded)
    if ticket.expires >= now then tickets[#tickets + 1] = ticket else expired = true end
  end
end
local result = 0
if change == 'issue' or change == 'take' then
  result = tickets[#tickets] and tickets[#tickets].number + 1 or 0
  tickets[#tickets + 1] = {number = result, expires = now + tonumber(ARGV[5])}
elseif change == 'serving' then
  result = tickets[1] and tickets[1].number or -1
  if not expired then return result end  -- nothing changed: nothing to write
elseif change == 'extend' then
  for _, ticket in ipairs(tickets) do
    if ticket.number == tonumber(ARGV[4]) then ticket.expires = now + tonumber(ARGV[5]) end
  end
elseif change == 'done' then
  local kept = {}
  for _, ticket in ipairs(tickets) do
    if ticket.number ~= tonumber(ARGV[4]) then kept[#kept + 1] = ticket end
  end
  tickets = kept
end
if #tickets == 0 then
  redis.call('DEL', KEYS[1])
  return result
end
local encoded = {}
for i, ticket in ipairs(tickets) do encoded[i] = cjson.encode(ticket) end
redis.call('SET', KEYS[1], cjson.encode({conversation_id = ARGV[3], tickets = encoded}))
if change == 'take' then return {result, tickets[1].number} end
return result
"""
