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

Wrong codes are counted per conversation and overall, and past a limit no code is
checked at all for a while: guessing is slower than the retention of any case.

Threat (docs/threat-model.md, "trafficker holding the phone"): the code is shown
once and never echoed. :func:`redact` takes every code-shaped number out of a
message before anything else (language reading, the bot, the transcript) sees it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from redis.asyncio import Redis

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


@dataclass(frozen=True)
class Check:
    case_id: str | None
    limited: bool = False


class Receipts:
    def __init__(self, client: Redis, cipher: Cipher, lookup_key: bytes,
                 hasher: PasswordHasher | None = None) -> None:
        self._redis = client
        self._cipher = cipher
        self._lookup_key = lookup_key
        self._hasher = hasher or CODE_HASHER

    async def issue(self, case_id: str) -> tuple[str, str]:
        """A new code for ``case_id``: (the code, to show once; its record's key)."""
        while True:
            code = "".join(secrets.choice("0123456789") for _ in range(DIGITS))
            key = self._key(code)
            digest = await asyncio.to_thread(self._hasher.hash, code)
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

    async def attached(self, conversation: str) -> str | None:
        key = ATTACHED + conversation
        sealed = await self._redis.getex(key, ex=ATTACH_SECONDS)
        return None if sealed is None else self._cipher.decrypt(sealed, key.encode()).decode()

    async def detach(self, conversation: str) -> None:
        await self._redis.delete(ATTACHED + conversation)

    def _key(self, code: str) -> str:
        return keyed_id(self._lookup_key, "receipt", code[:_SELECTOR])

    def _verifies(self, digest: str, code: str) -> bool:
        try:
            return self._hasher.verify(digest, code)
        except VerificationError:
            return False
