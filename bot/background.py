"""Background tasks that live exactly as long as the application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

__all__ = ["running"]


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
