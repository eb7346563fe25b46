"""Background tasks that live exactly as long as the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import redis

__all__ = ["resilient", "running"]

log = logging.getLogger(__name__)

RESTART_SECONDS = 1.0


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` while the block runs; on the way out, cancel it until it ends.

    One cancel is not always enough: redis-py 4.6 checks each pooled connection
    under ``async_timeout(0)``, which on Python 3.10 can turn a cancellation that
    arrives at that instant into a timeout it then swallows. Rasa 3.6 pins
    redis < 5, so the request is repeated until the task has really stopped.
    """
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()


async def resilient(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``work()``; when Redis fails under it (a restart, a failover), start it
    again a moment later instead of letting the task end with the error, so that
    deliveries, live events and the purge come back with Redis."""
    while True:
        try:
            await work()
            return
        except (redis.RedisError, OSError) as exc:
            log.warning("background work interrupted; starting it again",
                        extra={"work": name, "error": type(exc).__name__})
            await asyncio.sleep(RESTART_SECONDS)
