"""Receipt codes: a way back to one's report from any phone or app, linking nothing.

A code is 16 digits shown in groups of four (easy on a phone keypad, ~53 bits).
It is never stored: its first six digits find the record through a keyed hash
(HMAC under the server's pseudonym key), and the whole code is checked against an
argon2id hash. Whoever steals Redis learns no code; whoever steals Redis and the
key still faces argon2id for the other ten digits of each one: with OWASP's
argon2id parameters (19 MiB, 2 passes, 1 lane; ~45 ms of one core), 10^10 guesses
are about 14 core-years for each code. RFC 9106's profile (64 MiB, 4 lanes) is for
passwords people choose; here it cost ~300 ms of CPU per code, a turn's worth ten
times over under load (docs/benchmarks.md), and bought nothing a random code needs.

Codes are drawn and hashed ahead of need (:class:`ReadyCodes`), by one thread at
the lowest CPU priority, so that a burst of new cases spends the CPU on answering
people and not on argon2id; when a burst outruns them, codes are hashed as they
are issued. Unissued codes live only in the process's memory.

Wrong codes are counted per conversation and overall, and past a limit no code is
checked at all for a while: guessing is slower than the retention of any case.

Threat (docs/threat-model.md, "trafficker holding the phone"): the code is shown
once and never echoed. :func:`redact` takes every code-shaped number out of a
message before anything else (language reading, the bot, the transcript) sees it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.crypto import Cipher
from bot.identity import keyed_id

__all__ = ["CODE_SHOWN", "Check", "Receipts", "formatted", "redact"]

DIGITS = 16
_SELECTOR = 6
_CODE = re.compile(r"(?<!\d)\d{4}(?:[ \-.]?\d{4}){3}(?!\d)")
CODE_SHOWN = "[receipt code]"  # what transcripts and the bot see instead of a code
ATTACHED = "attached:"
# A person who came back with a code may add to their report for this long.
ATTACH_SECONDS = 30 * 60
WRONG = "receipt-wrong:"
WRONG_ALL = "receipt-wrong"
WRONG_WINDOW_SECONDS = 15 * 60
WRONG_PER_CONVERSATION = 5
WRONG_OVERALL = 200


def redact(text: str) -> tuple[str, str | None]:
    """``text`` with every code-shaped number replaced, and the first one's digits."""
    found = _CODE.search(text)
    if found is None:
        return text, None
    return _CODE.sub(CODE_SHOWN, text), re.sub(r"\D", "", found.group())


def formatted(code: str) -> str:
    """``1234 5678 9012 3456``."""
    return " ".join(code[i:i + 4] for i in range(0, DIGITS, 4))


CODE_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)  # argon2id
# Codes hashed ahead, per process: more than a burst of new cases in a few seconds
# (docs/benchmarks.md), ~3 s of one idle core to refill; a code and its hash are ~120 bytes.
READY_CODES = 64


@dataclass(frozen=True)
class Check:
    case_id: str | None
    limited: bool = False


def _new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(DIGITS))


class ReadyCodes:
    """Codes and their argon2id hashes, made ahead by one thread at ``SCHED_IDLE``.

    At that priority the thread runs only on CPU nothing else wants (Linux; elsewhere
    at normal priority). argon2 releases the GIL while it hashes, so the event loop
    goes on meanwhile. The codes exist only here until issued, never in Redis.
    """

    def __init__(self, hasher: PasswordHasher, size: int = READY_CODES) -> None:
        self._hasher = hasher
        self._size = size
        self._codes: collections.deque[tuple[str, str]] = collections.deque()
        self._wanted = threading.Event()
        self.full = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._fill, name="receipt-codes", daemon=True)

    def take(self) -> tuple[str, str] | None:
        """A code and its hash, or None if none is ready."""
        try:
            ready = self._codes.popleft()
        except IndexError:
            return None
        self.full.clear()
        self._wanted.set()
        return ready

    @contextmanager
    def filling(self) -> Iterator[None]:
        """Keep the codes topped up while the block runs."""
        self._thread.start()
        try:
            yield
        finally:
            self._stopping = True
            self._wanted.set()
            # A hash in progress ends on its own; at idle priority on a busy machine
            # that can take a while, and the thread holds nothing worth waiting for.
            self._thread.join(timeout=1)

    def _fill(self) -> None:
        if hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
        while not self._stopping:
            self._wanted.clear()
            while len(self._codes) < self._size and not self._stopping:
                code = _new_code()
                self._codes.append((code, self._hasher.hash(code)))
            if len(self._codes) >= self._size:
                self.full.set()
            self._wanted.wait()


class Receipts:
    def __init__(self, client: Redis, cipher: Cipher, lookup_key: bytes,
                 hasher: PasswordHasher | None = None) -> None:
        self._redis = client
        self._cipher = cipher
        self._lookup_key = lookup_key
        self._hasher = hasher or CODE_HASHER
        self.ready = ReadyCodes(self._hasher)

    async def issue(self, case_id: str) -> tuple[str, str]:
        """A new code for ``case_id``: (the code, to show once; its record's key)."""
        while True:
            code, digest = await self._next_code()
            key = self._key(code)
            sealed = self._cipher.encrypt(case_id.encode(), key.encode())
            if await self._redis.hsetnx(key, "hash", digest):
                await self._redis.hset(key, "case", sealed)  # erased with its case (retention)
                return code, key
            # Another code already begins with these six digits: draw again.

    async def check(self, conversation: str, code: str) -> Check:
        """The case this code opens, unless it is wrong or too many were wrong."""
        counts = await self._redis.mget(WRONG + conversation, WRONG_ALL)
        per_conversation, overall = (int(c or 0) for c in counts)
        if per_conversation >= WRONG_PER_CONVERSATION or overall >= WRONG_OVERALL:
            return Check(None, limited=True)
        key = self._key(code)
        digest, sealed = await self._redis.hmget(key, "hash", "case")
        if digest and sealed and await asyncio.to_thread(self._verifies, digest.decode(), code):
            return Check(self._cipher.decrypt(sealed, key.encode()).decode())
        async with self._redis.pipeline(transaction=True) as pipe:
            for counter in (WRONG + conversation, WRONG_ALL):
                pipe.set(counter, 0, ex=WRONG_WINDOW_SECONDS, nx=True)  # the window opens
                pipe.incr(counter)
            await pipe.execute()
        return Check(None)

    async def revoke(self, key: str) -> None:
        if key:
            await self._redis.delete(key)

    async def attach(self, conversation: str, case_id: str) -> None:
        """For a while, what this conversation writes goes to that case. Only the
        encrypted link is kept, and only for :data:`ATTACH_SECONDS`."""
        key = ATTACHED + conversation
        await self._redis.set(key, self._cipher.encrypt(case_id.encode(), key.encode()), ex=ATTACH_SECONDS)

    @staticmethod
    def attached_in(pipe: Pipeline, conversation: str) -> None:
        """Queue the read of the case this conversation writes to, if any, in ``pipe``
        (read with other keys); the link lives on while it is used. Its result goes
        to :meth:`unseal_attached`."""
        pipe.getex(ATTACHED + conversation, ex=ATTACH_SECONDS)

    def unseal_attached(self, conversation: str, sealed: bytes | None) -> str | None:
        key = ATTACHED + conversation
        return None if sealed is None else self._cipher.decrypt(sealed, key.encode()).decode()

    async def detach(self, conversation: str) -> None:
        await self._redis.delete(ATTACHED + conversation)

    def _key(self, code: str) -> str:
        return keyed_id(self._lookup_key, "receipt", code[:_SELECTOR])

    async def _next_code(self) -> tuple[str, str]:
        """A code and its hash: one made ahead, or else one hashed now."""
        ready = self.ready.take()
        if ready is None:
            code = _new_code()
            ready = code, await asyncio.to_thread(self._hasher.hash, code)
        return ready

    def _verifies(self, digest: str, code: str) -> bool:
        try:
            return self._hasher.verify(digest, code)
        except VerificationError:
            return False
