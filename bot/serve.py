"""Serving: one process, or ``--workers N`` processes on one socket and one Redis.

With workers, this process binds the port (a second server fails at once), starts
the embedded Redis when no ``REDIS_URL`` is set (one Redis for all of them), then
spawns N worker processes that accept on the same listening socket: the kernel
hands each new connection to one of them. Every piece of a conversation's state
lives in Redis and a conversation's messages are handled one at a time whichever
worker takes them (bot/conversation.py), so any worker can answer any message.
A worker that dies is started again; SIGTERM or SIGINT stops them all, then Redis.
See docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event

from bot.settings import Settings

__all__ = ["run_workers", "serve"]

log = logging.getLogger(__name__)

_STOP_SECONDS = 30.0
_BANNER = "Hotline is running{workers}.\n  Web chat: {url}/chat\n  Health:   {url}/healthz"


async def serve(settings: Settings, sock: socket.socket, ready: Callable[[], None] | None = None) -> None:
    """Serve on ``sock`` until SIGINT or SIGTERM; print the banner, or call ``ready``."""
    from aiohttp import web

    from bot.app import create_app
    from bot.logs import AccessLogger, setup_logging

    setup_logging(settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the banner: a stop is never lost
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLogger, handle_signals=False)
    try:
        await runner.setup()  # if the app fails to start, what did start (Redis) stops below
        await web.SockSite(runner, sock).start()
        if ready is None:
            print(_BANNER.format(workers="", url=settings.base_url), flush=True)
        else:
            ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def _worker(settings: Settings, sock: socket.socket, ready: Event) -> None:
    from bot.agent import StartupError
    from bot.redis_conn import RedisUnavailable
    from bot.server_keys import ServerKeyError

    try:
        asyncio.run(serve(settings, sock, ready.set))
    except (StartupError, RedisUnavailable, ServerKeyError) as exc:
        print(f"hotline: a worker cannot start: {exc}", file=sys.stderr)
        sys.exit(1)


class _Workers:
    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        self._context = multiprocessing.get_context("spawn")  # nothing inherited but the socket
        self._settings = settings
        self._sock = sock
        self.processes: list[SpawnProcess] = []
        self.ready: list[Event] = []
        for index in range(count):
            self.processes.append(self._start(index))

    def _start(self, index: int) -> SpawnProcess:
        # Only one process may long-poll Telegram (a second getUpdates is refused).
        settings = replace(self._settings, telegram_polling=self._settings.telegram_polling and index == 0)
        ready = self._context.Event()
        process = self._context.Process(target=_worker, args=(settings, self._sock, ready),
                                        name=f"hotline-worker-{index}", daemon=False)
        process.start()
        if index < len(self.ready):
            self.ready[index] = ready
        else:
            self.ready.append(ready)
        return process

    def all_ready(self, stopping: Callable[[], bool]) -> bool:
        """Wait until every worker serves; False if one died first or a stop came."""
        while not all(event.is_set() for event in self.ready):
            if stopping() or any(p.exitcode is not None for p in self.processes):
                return False
            time.sleep(0.1)
        return True

    def watch(self, stopping: Callable[[], bool]) -> None:
        """Start again any worker that dies, until a stop is asked for."""
        while not stopping():
            wait([p.sentinel for p in self.processes], timeout=0.5)
            for index, process in enumerate(self.processes):
                if process.exitcode is not None and not stopping():
                    log.warning("worker died; starting it again",
                                extra={"worker": index, "exitcode": process.exitcode})
                    self.processes[index] = self._start(index)

    def stop(self) -> None:
        for process in self.processes:
            if process.exitcode is None:
                process.terminate()  # SIGTERM: each finishes its requests and closes
        deadline = time.monotonic() + _STOP_SECONDS
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()


def run_workers(settings: Settings, sock: socket.socket, count: int) -> int:
    from bot.logs import setup_logging
    from bot.redis_conn import RedisUnavailable, start_shared

    setup_logging(settings.log_level)
    stop_asked: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _: stop_asked.append(number))
    try:
        embedded = start_shared(settings)
    except RedisUnavailable as exc:
        print(f"hotline: cannot start: {exc}", file=sys.stderr)
        return 1
    workers = _Workers(settings, sock, count)
    try:
        if not workers.all_ready(lambda: bool(stop_asked)):
            if stop_asked:
                return 0
            print("hotline: cannot start: a worker exited while starting (its error is above)",
                  file=sys.stderr)
            return 1
        print(_BANNER.format(workers=f" ({count} workers)", url=settings.base_url), flush=True)
        workers.watch(lambda: bool(stop_asked))
        return 0
    finally:
        workers.stop()
        if embedded is not None:
            embedded.shutdown()
