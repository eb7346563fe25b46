"""Token buckets in Redis, shared by every process: per conversation, per channel and
overall. Not per IP address: shelters, carrier NAT and Tor share addresses, and the
people we serve must not pay for a flood from their neighbour's address.

Threat (docs/threat-model.md, "trafficker flooding, probing or impersonating"):
a flood of messages must not drown the bot, the NLU or the responders' queue.
What happens to a message over a limit is the caller's decision
(:mod:`bot.conversation`: urgent ones still go through).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

__all__ = ["Bucket", "RateLimiter"]

PREFIX = "rate:"
# All buckets or none: a message refused by one bucket takes no token from the others.
_TAKE = """
local now, ok, state = tonumber(ARGV[1]), 1, {}
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local saved = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(saved[1]) or burst
  local at = tonumber(saved[2]) or now
  tokens = math.min(burst, tokens + (now - at) / 1000 * rate)
  state[i] = tokens
  if tokens < 1 then ok = 0 end
end
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  redis.call('HSET', key, 'tokens', state[i] - ok, 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return ok
"""


@dataclass(frozen=True)
class Bucket:
    name: str
    rate: float  # tokens added per second
    burst: int  # the most a bucket holds


class RateLimiter:
    def __init__(self, client: Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._clock = clock

    async def allow(self, *buckets: Bucket) -> bool:
        """Take one token from every bucket, if every bucket has one."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.allow_in(pipe, *buckets)
            (taken,) = await pipe.execute()
        return bool(taken)

    def allow_in(self, pipe: Pipeline, *buckets: Bucket) -> None:
        """Queue :meth:`allow` in ``pipe``, read with other keys; its result is 1 if
        the tokens were taken, else 0. EVAL, not EVALSHA: Redis keeps the compiled
        script by its digest, and a restarted Redis needs no reload first."""
        args: list[float | int] = [int(self._clock() * 1000)]
        for bucket in buckets:
            args += [bucket.rate, bucket.burst]
        pipe.eval(_TAKE, len(buckets), *(self.key(b) for b in buckets), *args)

    @staticmethod
    def key(bucket: Bucket) -> str:
        return PREFIX + bucket.name
