"""Rasa's tracker store and lock store on Redis, with every tracker encrypted.

Rasa OSS keeps trackers as plain JSON (docs/threat-model.md, "stolen Redis dump"):
here each tracker is sealed with :class:`bot.crypto.Cipher`, bound to its Redis key,
and expires ``HOTLINE_TRACKER_TTL`` seconds after its last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import cast

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    LockStore,
    RedisLockStore,
)
from rasa.core.tracker_store import SerializedTrackerAsText, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.background import running
from bot.crypto import Cipher

__all__ = ["TRACKER_PREFIX", "EncryptedRedisTrackerStore", "Staged", "UrlRedisLockStore"]

TRACKER_PREFIX = "tracker:"
# While a message is handled, the trackers it saves wait here (sealed) and are
# written in the same Redis transaction as its replies and its "answered" mark.
Staged = dict[str, bytes]  # conversation → its sealed tracker
_staged: ContextVar[Staged | None] = ContextVar("staged_trackers", default=None)


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
    def staging(self) -> Iterator[Staged]:
        """Hold back the writes of the trackers saved inside: :meth:`write_staged`
        puts them in the caller's transaction, and if that never runs (a crash, an
        error) the stored trackers are as they were before the message."""
        staged: Staged = {}
        token = _staged.set(staged)
        try:
            yield staged
        finally:
            _staged.reset(token)
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
        staged = _staged.get()
        sealed = staged.get(sender_id) if staged else None
        if sealed is None:
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
        await self._redis.delete(self.key(sender_id))


class UrlRedisLockStore(RedisLockStore):
    """Rasa's Redis ticket locks (first come, first served), connected by URL so
    ``unix://`` sockets work too, and safe between processes.

    Rasa changes a lock by reading it, changing it and writing it back: two processes
    doing that at once can be handed the same ticket (and both run the conversation)
    or erase each other's. Here each change is one optimistic transaction (WATCH,
    MULTI), retried when another process changed the lock in between.

    :meth:`holding` keeps its ticket alive while the holder runs, so a ticket lives
    ``lifetime`` seconds after its process last showed life: a slow turn keeps the
    conversation, a killed process lets it go within ``lifetime``.
    """

    def __init__(self, url: str) -> None:
        self.red = redis.StrictRedis.from_url(url, socket_timeout=DEFAULT_SOCKET_TIMEOUT_IN_SECONDS)
        self.key_prefix = "lock:"
        LockStore.__init__(self)

    def _change(self, conversation_id: str, change: Callable[[TicketLock | None], _Changed]) -> int:
        key = self.key_prefix + conversation_id

        def transaction(pipe: redis.client.Pipeline) -> int:
            raw = cast("bytes | None", pipe.get(key))  # watching: answered at once
            lock, result = change(TicketLock.from_dict(json.loads(raw)) if raw else None)
            pipe.multi()
            if lock is None:
                pipe.delete(key)
            else:
                pipe.set(key, lock.dumps())
            return result

        try:
            return int(self.red.transaction(transaction, key, value_from_callable=True))
        except redis.RedisError as exc:
            raise LockError(f"the conversation's lock is unavailable: {type(exc).__name__}") from exc

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: TicketLock | None) -> _Changed:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._change(conversation_id, issue)

    def update_lock(self, conversation_id: str) -> None:
        def prune(lock: TicketLock | None) -> _Changed:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, 0

        self._change(conversation_id, prune)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        def done(lock: TicketLock | None) -> _Changed:
            if lock is None:
                return None, 0
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), 0

        self._change(conversation_id, done)

    def extend(self, conversation_id: str, ticket_number: int, lifetime: float) -> None:
        def extend(lock: TicketLock | None) -> _Changed:
            for ticket in lock.tickets if lock is not None else ():
                if ticket.number == ticket_number:
                    ticket.expires = time.time() + lifetime
            return lock, 0

        self._change(conversation_id, extend)

    @contextlib.asynccontextmanager
    async def holding(self, conversation_id: str, lifetime: float, poll_seconds: float
                      ) -> AsyncIterator[None]:
        """Wait for the conversation's turn (tickets are served in the order taken),
        hold it while the block runs, and keep the ticket alive meanwhile."""
        ticket = self.issue_ticket(conversation_id, lifetime)

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(lifetime / 3)
                self.extend(conversation_id, ticket, lifetime)

        try:
            async with running(keep_alive()):
                await self._acquire_lock(conversation_id, ticket, poll_seconds)
                yield
        finally:
            self.cleanup(conversation_id, ticket)

    def close(self) -> None:
        self.red.close()


_Changed = tuple["TicketLock | None", int]  # the lock to store (None: delete it), the result
