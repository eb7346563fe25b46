"""Connections passed from the parent process to a worker over a Unix socket pair.

With ``--workers N`` the parent accepts every connection and passes each to the next
ready worker in turn (bot/serve.py), as Node's cluster module does. Workers sharing one
listening socket do not share the load: the event loop that wakes first accepts every
connection pending, so under light load one worker took all of them, and a web chat
page stays with the worker that accepted it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from aiohttp import web

__all__ = ["HandedSite", "hand_over", "socket_pair"]

log = logging.getLogger(__name__)

_MARK = b"c"  # one byte carries each descriptor: a message is never empty unless the pair closed
_SEND_SECONDS = 1.0


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(the parent's end, the worker's end); datagram-like, so one message is one connection."""
    parent, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent.settimeout(_SEND_SECONDS)  # a stuck worker does not hold up the others' connections
    return parent, worker


def hand_over(channel: socket.socket, connection: socket.socket) -> bool:
    """Pass ``connection`` to the worker at the other end; False if it cannot take it."""
    try:
        socket.send_fds(channel, [_MARK], [connection.fileno()])
    except OSError:  # the worker died (EPIPE) or is stuck (timeout)
        return False
    return True


class HandedSite(web.BaseSite):
    """Serves the connections the parent passes over ``channel`` (and closes it when
    stopped); calls ``parent_gone`` when the parent closes it, since no new connection
    can come after that."""

    __slots__ = ("_channel", "_opening", "_parent_gone")

    def __init__(self, runner: web.BaseRunner, channel: socket.socket,
                 parent_gone: Callable[[], None]) -> None:
        super().__init__(runner)
        self._channel = channel
        self._parent_gone = parent_gone
        self._opening: set[asyncio.Task[object]] = set()

    @property
    def name(self) -> str:
        return "connections handed over by the parent process"

    async def start(self) -> None:
        await super().start()
        self._channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self._channel.fileno(), self._take)

    async def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self._channel.fileno())
        self._channel.close()  # connections passed but not taken yet are closed with it
        await super().stop()

    def _take(self) -> None:
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None  # BaseSite requires a runner that is set up
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._channel, len(_MARK), 1)
            except BlockingIOError:
                return
            if not data:
                loop.remove_reader(self._channel.fileno())
                log.warning("the parent process is gone; stopping")
                self._parent_gone()
                return
            for fd in fds:
                task = loop.create_task(loop.connect_accepted_socket(server, socket.socket(fileno=fd)))
                self._opening.add(task)  # the loop keeps only a weak reference to a task
                task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[object]) -> None:
        self._opening.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a handed-over connection could not be served", exc_info=task.exception())
