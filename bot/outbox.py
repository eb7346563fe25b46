"""The durable outbox: every message not sent as a synchronous reply goes here.

Each conversation has its own Redis stream, so its messages leave in order and a
message that fails blocks only the ones behind it. A sorted set says when each
conversation is next due. The head of a stream is removed only after the provider
accepted it: a provider outage, a crash or a restart delays messages, never loses
them. A permanent refusal (a blocked bot, an unsubscribed number) is recorded in
``outbox:failed`` and counted in the metrics. Workers in several processes share
the work through a per-conversation lock. A lock names the process that holds it, so
a process that sees the holder has died on the same machine (kill -9, a crash) frees
it at once instead of waiting out its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict
from typing import Any

import redis
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.addresses import AddressBook
from bot.crypto import Cipher
from bot.messages import Button, DeliveryError, Outbound, Sender
from bot.metrics import Metrics

__all__ = ["FAILED_STREAM", "Outbox", "dump_messages", "load_messages"]

log = logging.getLogger(__name__)

QUEUE = "outbox:q:"
DUE = "outbox:due"
ATTEMPTS = "outbox:attempts:"
LOCK = "outbox:lock:"
STOPPED = "outbox:stopped:"
FAILED_STREAM = "outbox:failed"
MAX_BACKOFF_SECONDS = 60.0
LOCK_MS = 60_000  # a delivery lock's lease, for a holder nothing can tell is dead
FREE_DEAD_SECONDS = 2.0  # how often the locks of due conversations are looked at for dead holders
OUTAGE_SECONDS = 30.0  # how long a delivery's bookkeeping waits for Redis to come back
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _this_process() -> str:
    """This process as a lock's holder: its machine, its process namespace and its pid,
    so that a process of the same machine and namespace can tell whether it lives."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux: no other process can tell; the lease applies
        namespace = ""
    return f"{socket.gethostname()}|{namespace}|{os.getpid()}"


def _died(holder: str, here: str) -> bool:
    """Whether a lock's holder (``machine|namespace|pid|random``) was a process of this
    machine and namespace (``here``, :func:`_this_process`) that no longer runs. A pid
    taken again by a new process reads as alive: that lock waits out its lease."""
    parts = holder.split("|")
    if len(parts) != 4:  # a lock taken before locks named their holder
        return False
    machine, namespace, pid, _ = parts
    if not namespace or [machine, namespace] != here.split("|")[:2]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


class Outbox:
    def __init__(self, client: Redis, cipher: Cipher, addresses: AddressBook,
                 senders: Mapping[str, Sender], metrics: Metrics, retention_seconds: int,
                 poll_seconds: float = 0.25, concurrency: int = 8,
                 on_staff_delivery: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self._redis = client
        # Told what became of each staff message ("sent", "retrying: …", "failed: …"),
        # so that the responder sees it.
        self._on_staff_delivery = on_staff_delivery
        self._cipher = cipher
        self._addresses = addresses
        self._senders = senders
        self._metrics = metrics
        self._retention = retention_seconds
        self._poll = poll_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._release = client.register_script(_RELEASE)
        self._holder = _this_process()

    async def enqueue(self, conversation: str, channel: str, messages: list[Outbound]) -> None:
        if not messages:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            self.enqueue_in(pipe, conversation, channel, messages)
            await pipe.execute()
        self.wake()

    def enqueue_in(self, pipe: Pipeline, conversation: str, channel: str, messages: list[Outbound]) -> None:
        """Queue the messages within the caller's transaction; :meth:`wake` once it ran."""
        if not messages:
            return
        for message in messages:
            sealed = self._cipher.encrypt(json.dumps(asdict(message)).encode(), conversation.encode())
            pipe.xadd(QUEUE + conversation, {"ch": channel, "m": sealed, "t": _now_ms()})
        pipe.expire(QUEUE + conversation, self._retention)
        pipe.zadd(DUE, {conversation: _now_ms()}, nx=True)

    def wake(self) -> None:
        """Look for due messages now rather than at the next poll."""
        self._wake.set()

    async def stop(self, conversation: str) -> None:
        """The person opted out (SMS STOP): nothing more is sent until they opt in."""
        await self._redis.set(STOPPED + conversation, 1, ex=self._retention)

    @staticmethod
    def stopped_in(pipe: Pipeline, conversation: str) -> None:
        """Queue the look at the opt-out mark in ``pipe``: its result is 1 while the
        person has opted out, else 0."""
        pipe.exists(STOPPED + conversation)

    async def resume(self, conversation: str) -> None:
        await self._redis.delete(STOPPED + conversation)

    @contextlib.asynccontextmanager
    async def holding(self, conversation: str, wait_seconds: float = 20.0) -> AsyncIterator[None]:
        """Hold the conversation's delivery lock: a send in flight finishes first and
        no other starts (an erasure then sees every message that reached the device)."""
        deadline = time.monotonic() + wait_seconds
        while (token := await self._try_lock(conversation)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the conversation's delivery lock is held")
            await asyncio.sleep(0.02)
        try:
            yield
        finally:
            await self._release(keys=[LOCK + conversation], args=[token])

    async def _try_lock(self, conversation: str) -> str | None:
        """Take the conversation's delivery lock; its token, or None if it is held."""
        token = f"{self._holder}|{secrets.token_hex(8)}"
        return token if await self._redis.set(LOCK + conversation, token, nx=True, px=LOCK_MS) else None

    async def free_locks_of_dead(self, conversations: list[str]) -> int:
        """Free these conversations' delivery locks whose holder was a process of this
        machine that has died: its send in flight ended with it, so its messages need not
        wait out the lock's 60 s lease. How many were freed."""
        keys = [LOCK + conversation for conversation in conversations]
        freed = 0
        for key, holder in zip(keys, await self._redis.mget(keys), strict=True):
            if holder is not None and _died(holder.decode(), self._holder):
                freed += await self._release(keys=[key], args=[holder])  # only if still the same
        if freed:
            log.warning("freed the delivery locks of a process that died", extra={"locks": freed})
        return freed

    async def forget(self, conversation: str) -> None:
        """Erase the conversation's pending messages (delete my data); call it
        while :meth:`holding` the conversation."""
        await self._redis.delete(QUEUE + conversation, ATTEMPTS + conversation, STOPPED + conversation)
        await self._redis.zrem(DUE, conversation)

    async def run(self) -> None:
        """Deliver due messages until cancelled (a cancelled delivery stays queued),
        through Redis outages.

        A conversation stays due while it is delivered: it is started once here, and
        one another process holds is left to it (its lock), until a delivery ends, an
        enqueue wakes this loop, or the poll interval passes. Looking again at once
        would spin on the conversations in flight (a tenth of a busy worker's time)."""
        drains: dict[str, asyncio.Task[None]] = {}  # by conversation
        next_look_for_dead = 0.0

        def done(conversation: str, _: asyncio.Task[None]) -> None:
            del drains[conversation]
            self._slots.release()

        try:
            while True:
                self._wake.clear()  # a wake from now on is seen by the nap below
                try:
                    due = [raw.decode() for raw in
                           await self._redis.zrangebyscore(DUE, "-inf", _now_ms(), start=0, num=50)]
                    if due and time.monotonic() >= next_look_for_dead:
                        next_look_for_dead = time.monotonic() + FREE_DEAD_SECONDS
                        await self.free_locks_of_dead(due)
                except redis.RedisError:
                    # Redis is away (restarting, failing over). Look again after a nap, and
                    # never end the loop for it: ending it would cancel the deliveries in
                    # flight, and one cancelled after its provider took the message would
                    # send it again once Redis is back.
                    due = []
                for conversation in due:
                    if conversation in drains:
                        continue
                    await self._slots.acquire()
                    drains[conversation] = asyncio.create_task(self._drain(conversation))
                    drains[conversation].add_done_callback(functools.partial(done, conversation))
                await self._nap()
        finally:
            for task in drains.values():
                task.cancel()
            await asyncio.gather(*drains.values(), return_exceptions=True)

    async def _nap(self) -> None:
        """Wait for a wake or the poll interval, whichever is first.

        Not ``asyncio.wait_for``: on Python 3.10 it can swallow a cancellation that
        arrives as the wait ends (CPython gh-86296), and the worker would never stop.
        """
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=self._poll)
        finally:
            waiter.cancel()

    async def _drain(self, conversation: str) -> None:
        try:
            token = await self._try_lock(conversation)
        except redis.RedisError:
            return  # Redis away: the conversation stays due and is looked at again
        if token is None:
            return  # another worker has it
        try:
            while await self._deliver_head(conversation):
                pass
        except Exception as exc:  # Redis trouble: the conversation stays due and is retried
            log.error("outbox drain failed", extra={"error": type(exc).__name__})
        finally:
            await _through_outage(lambda: self._release(keys=[LOCK + conversation], args=[token]))
            self.wake()  # what was enqueued meanwhile is due: look again

    async def _deliver_head(self, conversation: str) -> bool:
        """Send the oldest message; True if the next one may follow at once."""
        queue = QUEUE + conversation
        async with self._redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.xrange(queue, count=1)
            self.stopped_in(pipe, conversation)
            pipe.get(self._addresses.key(conversation))
            head, stopped, sealed_address = await pipe.execute()
        if not head:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(DUE, conversation)
                pipe.xlen(queue)
                _, left = await pipe.execute()
            if left:  # enqueued since the look above (its own ZADD NX found it still due)
                await self._redis.zadd(DUE, {conversation: _now_ms()})
            return False
        entry_id, fields = head[0]
        channel = fields[b"ch"].decode()
        message = _outbound(json.loads(self._cipher.decrypt(fields[b"m"], conversation.encode())))
        if stopped:
            return await self._discard(queue, entry_id, conversation, channel, "opted_out", message,
                                       "suppressed")
        address = self._addresses.unseal(conversation, sealed_address)
        sender = self._senders.get(channel)
        if address is None or sender is None:
            return await self._discard(queue, entry_id, conversation, channel, "no_address", message)
        try:
            ref = await sender.send(address, message)
        except DeliveryError as exc:
            if exc.permanent:
                return await self._discard(queue, entry_id, conversation, channel, exc.reason, message)
            return await self._back_off(conversation, channel, exc.reason, message)
        except Exception as exc:  # an unexpected client error is treated as passing
            return await self._back_off(conversation, channel, type(exc).__name__, message)
        # The provider has it: this must be recorded even if Redis is away for a moment,
        # or the message would be sent again once it is back.
        await _through_outage(lambda: self._sent(queue, entry_id, conversation, ref))
        self._metrics.outbox.labels(channel, "sent").inc()
        await self._tell(conversation, message, "sent")
        return True

    async def _sent(self, queue: str, entry_id: bytes, conversation: str, ref: str | None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xdel(queue, entry_id)
            pipe.delete(ATTEMPTS + conversation)
            if ref is not None:
                self._addresses.add_ref_in(pipe, conversation, ref)
            await pipe.execute()

    async def _tell(self, conversation: str, message: Outbound, status: str) -> None:
        if message.sender == "staff" and self._on_staff_delivery is not None:
            await self._on_staff_delivery(conversation, status)

    async def _back_off(self, conversation: str, channel: str, reason: str, message: Outbound) -> bool:
        attempts = await self._redis.incr(ATTEMPTS + conversation)
        await self._redis.expire(ATTEMPTS + conversation, self._retention)
        delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (attempts - 1))
        await self._redis.zadd(DUE, {conversation: _now_ms() + int(delay * 1000)})
        self._metrics.outbox.labels(channel, "retry").inc()
        log.warning("delivery deferred", extra={"channel": channel, "reason": reason,
                                                "attempt": attempts, "retry_in_s": delay})
        await self._tell(conversation, message, f"retrying: {reason}")
        return False

    async def _discard(self, queue: str, entry_id: bytes, conversation: str, channel: str,
                       reason: str, message: Outbound, status: str = "failed") -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xdel(queue, entry_id)
            pipe.delete(ATTEMPTS + conversation)
            pipe.xadd(FAILED_STREAM, {"conversation": conversation, "channel": channel,
                                      "reason": reason, "t": _now_ms()}, maxlen=10_000, approximate=True)
            await pipe.execute()
        self._metrics.outbox.labels(channel, status).inc()
        log.warning("delivery dropped", extra={"channel": channel, "reason": reason, "status": status})
        await self._tell(conversation, message, f"{status}: {reason}")
        return True


async def _through_outage(write: Callable[[], Awaitable[Any]]) -> None:
    """Retry a write that must not be lost while Redis restarts or fails over."""
    deadline = time.monotonic() + OUTAGE_SECONDS
    while True:
        try:
            await write()
            return
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def dump_messages(messages: list[Outbound]) -> bytes:
    return json.dumps([asdict(message) for message in messages]).encode()


def load_messages(raw: bytes) -> list[Outbound]:
    return [_outbound(data) for data in json.loads(raw)]


def _outbound(data: dict[str, Any]) -> Outbound:
    data["buttons"] = tuple(Button(**b) for b in data["buttons"])
    return Outbound(**data)
