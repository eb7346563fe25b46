"""Whether any responder is online, from the heartbeats of their console sessions.

The handoff message depends on it: with someone online the person hears the
expected wait; with nobody, the after-hours message (emergency guidance and when
someone will follow up). Shared by every process through Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.asyncio import Redis

__all__ = ["Presence"]

ONLINE = "responders:online"
# A console beats every 30 s; a responder is gone after missing three.
STALE_SECONDS = 90


class Presence:
    def __init__(self, client: Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._clock = clock

    async def beat(self, staff: str) -> None:
        await self._redis.zadd(ONLINE, {staff: self._clock()})

    async def leave(self, staff: str) -> None:
        await self._redis.zrem(ONLINE, staff)

    async def anyone_online(self) -> bool:
        cutoff = self._clock() - STALE_SECONDS
        await self._redis.zremrangebyscore(ONLINE, "-inf", cutoff)
        return bool(await self._redis.zcard(ONLINE))
