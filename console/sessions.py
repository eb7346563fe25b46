"""Console sessions in Redis, login throttling, and the one-time setup link.

A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure behind
TLS); Redis keeps only its SHA-256, with the staff name, role and the CSRF token
every state-changing request must send back. It ends after ``IDLE_SECONDS``
without a request, or at logout. Failed logins for a name slow down (each
failure doubles the wait before the next try) and lock the name for
``LOCK_SECONDS`` after ``MAX_FAILURES``: per name, not per address, since
shelters and carrier NAT share addresses.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

__all__ = ["IDLE_SECONDS", "Session", "Sessions", "Throttle"]

SESSION = "session:"
IDLE_SECONDS = 30 * 60
FAILURES = "login-failures:"
NEXT_TRY = "login-next:"
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
SETUP = "setup-token"
SETUP_SECONDS = 3600


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, client: Redis) -> None:
        self._redis = client

    async def start(self, name: str, role: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(name, role, secrets.token_urlsafe(24))
        key = SESSION + _digest(token)
        await self._redis.hset(key, mapping={"name": name, "role": role, "csrf": session.csrf})
        await self._redis.expire(key, IDLE_SECONDS)
        return token, session

    async def get(self, token: str) -> Session | None:
        """The session of this token, kept alive by the request."""
        key = SESSION + _digest(token)
        fields = await self._redis.hmget(key, "name", "role", "csrf")
        if fields[0] is None:
            return None
        await self._redis.expire(key, IDLE_SECONDS)
        name, role, csrf = (f.decode() if f else "" for f in fields)
        return Session(name, role, csrf)

    async def end(self, token: str) -> None:
        await self._redis.delete(SESSION + _digest(token))

    async def new_setup_token(self) -> str:
        """A one-time token to create the first admin (printed at start-up)."""
        token = secrets.token_urlsafe(24)
        await self._redis.set(SETUP, _digest(token), ex=SETUP_SECONDS)
        return token

    async def use_setup_token(self, token: str) -> bool:
        stored = await self._redis.get(SETUP)
        if stored is None or not secrets.compare_digest(stored.decode(), _digest(token)):
            return False
        return bool(await self._redis.delete(SETUP))  # once: a second use finds nothing


class Throttle:
    def __init__(self, client: Redis) -> None:
        self._redis = client

    async def wait_seconds(self, name: str) -> int:
        """How long ``name`` must wait before another try (0: go ahead)."""
        failures = int(await self._redis.get(FAILURES + name) or 0)
        if failures >= MAX_FAILURES:
            return max(1, int(await self._redis.ttl(FAILURES + name)))
        return max(0, int(await self._redis.ttl(NEXT_TRY + name)))

    async def failed(self, name: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(FAILURES + name)
            pipe.expire(FAILURES + name, LOCK_SECONDS)
            failures, _ = await pipe.execute()
        await self._redis.set(NEXT_TRY + name, 1, ex=2 ** min(int(failures) - 1, 8))

    async def succeeded(self, name: str) -> None:
        await self._redis.delete(FAILURES + name, NEXT_TRY + name)
