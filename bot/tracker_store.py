"""Rasa's tracker store and lock store on Redis, with every tracker encrypted.

Rasa OSS keeps trackers as plain JSON (docs/threat-model.md, "stolen Redis dump"):
here each tracker is sealed with :class:`bot.crypto.Cipher`, bound to its Redis key,
and expires ``HOTLINE_TRACKER_TTL`` seconds after its last write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import redis
from rasa.core.lock_store import DEFAULT_SOCKET_TIMEOUT_IN_SECONDS, LockStore, RedisLockStore
from rasa.core.tracker_store import SerializedTrackerAsText, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.crypto import Cipher

__all__ = ["TRACKER_PREFIX", "EncryptedRedisTrackerStore", "UrlRedisLockStore"]

TRACKER_PREFIX = "tracker:"
# While a message is handled, the trackers it saves wait here (sealed) and are
# written in the same Redis transaction as its replies and its "answered" mark.
_staged: ContextVar[dict[str, bytes] | None] = ContextVar("staged_trackers", default=None)


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
    def staging(self) -> Iterator[dict[str, bytes]]:
        """Hold back the writes of the trackers saved inside: :meth:`write_staged`
        puts them in the caller's transaction, and if that never runs (a crash, an
        error) the stored trackers are as they were before the message."""
        staged: dict[str, bytes] = {}
        token = _staged.set(staged)
        try:
            yield staged
        finally:
            _staged.reset(token)
            for sender_id in staged:
                self._saved.pop(sender_id, None)

    def write_staged(self, staged: dict[str, bytes], pipe: Pipeline) -> None:
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
    """Rasa's Redis ticket locks, connected by URL so ``unix://`` sockets work too.

    Rasa's own constructor takes only host and port; the locking logic is unchanged.
    """

    def __init__(self, url: str) -> None:
        self.red = redis.StrictRedis.from_url(url, socket_timeout=DEFAULT_SOCKET_TIMEOUT_IN_SECONDS)
        self.key_prefix = "lock:"
        LockStore.__init__(self)

    def close(self) -> None:
        self.red.close()
