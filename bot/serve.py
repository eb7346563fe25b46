"""Serving: one process, or ``--workers N`` processes on one port and one Redis.

With workers, this process binds the port (a second server fails at once), starts
the embedded Redis when no ``REDIS_URL`` is set (one Redis for all of them), then
spawns N worker processes. It accepts every connection itself and passes each to the
next ready worker in turn (bot/handoff.py says why). Every piece of a conversation's
state lives in Redis and a conversation's messages are handled one at a time whichever
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
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event

from bot.handoff import HandedSite, hand_over, socket_pair
from bot.settings import Settings

__all__ = ["run_workers", "serve"]

log = logging.getLogger(__name__)

_STOP_SECONDS = 30.0
_BANNER = "Hotline is running{workers}.\n  Web chat: {url}/chat\n  Health:   {url}/healthz"


async def serve(settings: Settings, sock: socket.socket, ready: Callable[[], None] | None = None, *,
                handed: bool = False) -> None:
    """Serve until SIGINT or SIGTERM; print the banner, or call ``ready``. ``sock`` is the
    listening socket, or if ``handed`` a worker's end of its pair with the parent."""
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
        site = HandedSite(runner, sock, stop.set) if handed else web.SockSite(runner, sock)
        await site.start()
        if ready is None:
            print(_BANNER.format(workers="", url=settings.base_url), flush=True)
        else:
            ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def _worker(settings: Settings, channel: socket.socket, ready: Event) -> None:
    from bot.agent import StartupError
    from bot.redis_conn import RedisUnavailable
    from bot.server_keys import ServerKeyError

    try:
        asyncio.run(serve(settings, channel, ready.set, handed=True))
    except (StartupError, RedisUnavailable, ServerKeyError) as exc:
        print(f"hotline: a worker cannot start: {exc}", file=sys.stderr)
        sys.exit(1)


@dataclass
class _Worker:
    process: SpawnProcess
    ready: Event
    channel: socket.socket  # this process's end of the pair the worker's connections go over

    def takes_connections(self) -> bool:
        return self.ready.is_set() and self.process.exitcode is None


class _Workers:
    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        self._context = multiprocessing.get_context("spawn")  # nothing inherited but its channel
        self._settings = settings
        self._sock = sock
        self._sock.setblocking(False)  # connections are accepted as they come, in `watch`
        self._turn = 0
        self.workers = [self._start(index) for index in range(count)]

    def _start(self, index: int) -> _Worker:
        # Only one process may long-poll Telegram (a second getUpdates is refused).
        settings = replace(self._settings, telegram_polling=self._settings.telegram_polling and index == 0)
        ready = self._context.Event()
        ours, theirs = socket_pair()
        process = self._context.Process(target=_worker, args=(settings, theirs, ready),
                                        name=f"hotline-worker-{index}", daemon=False)
        process.start()
        theirs.close()  # the worker has its own copy; when ours closes, it sees the parent gone
        return _Worker(process, ready, ours)

    def all_ready(self, stopping: Callable[[], bool]) -> bool:
        """Wait until every worker serves; False if one died first or a stop came."""
        while not all(worker.ready.is_set() for worker in self.workers):
            if stopping() or any(worker.process.exitcode is not None for worker in self.workers):
                return False
            time.sleep(0.1)
        return True

    def watch(self, stopping: Callable[[], bool]) -> None:
        """Pass each new connection to a worker, and start again any worker that dies,
        until a stop is asked for."""
        while not stopping():
            waiting_for: list[socket.socket | int] = [worker.process.sentinel for worker in self.workers]
            if self._anyone_takes():
                waiting_for.append(self._sock)  # otherwise connections wait in the backlog
            if self._sock in wait(waiting_for, timeout=0.5):
                self._pass_on()
            for index, worker in enumerate(self.workers):
                if worker.process.exitcode is not None and not stopping():
                    log.warning("worker died; starting it again",
                                extra={"worker": index, "exitcode": worker.process.exitcode})
                    worker.channel.close()
                    self.workers[index] = self._start(index)

    def _anyone_takes(self) -> bool:
        return any(worker.takes_connections() for worker in self.workers)

    def _pass_on(self) -> None:
        """Accept every connection waiting and pass each to the next worker in turn,
        while one takes them; the rest wait in the backlog."""
        while self._anyone_takes():
            try:
                connection, _ = self._sock.accept()
            except BlockingIOError:
                return
            with connection:  # this process's copy: the worker holds its own
                for _ in self.workers:
                    worker = self.workers[self._turn]
                    self._turn = (self._turn + 1) % len(self.workers)
                    if worker.takes_connections() and hand_over(worker.channel, connection):
                        break
                # Taken by none (its worker died just now): closing it tells the client to retry.

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process.exitcode is None:
                worker.process.terminate()  # SIGTERM: each finishes its requests and closes
        deadline = time.monotonic() + _STOP_SECONDS
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.channel.close()


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
