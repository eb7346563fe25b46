"""Token buckets in a real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot.ratelimit import Bucket, RateLimiter
from tests.conftest import Clock


@pytest.fixture
def limiter(empty_redis: Redis) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(empty_redis, clock=clock), clock


async def test_a_burst_then_a_refusal_then_a_refill(limiter: tuple[RateLimiter, Clock]) -> None:
    rate, clock = limiter
    person = Bucket("conversation:a", 0.5, 3)
    assert [await rate.allow(person) for _ in range(4)] == [True, True, True, False]
    clock.now += 1.9  # not quite one token yet
    assert not await rate.allow(person)
    clock.now += 0.2
    assert await rate.allow(person)
    assert await rate.allow(Bucket("conversation:b", 0.5, 3))  # others are untouched


async def test_a_message_refused_by_one_bucket_costs_the_others_nothing(
        limiter: tuple[RateLimiter, Clock]) -> None:
    rate, _ = limiter
    channel = Bucket("channel:sms", 10, 2)
    assert await rate.allow(Bucket("conversation:x", 0.1, 1), channel)
    assert not await rate.allow(Bucket("conversation:x", 0.1, 1), channel)  # x is empty
    assert await rate.allow(Bucket("conversation:y", 0.1, 1), channel)  # the channel still had one
