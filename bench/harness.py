"""What the benchmarks share: servers on loopback, a person's turn on each channel,
the numbers, and the report (docs/benchmarks.md, one section per script).

Everything is real but the providers: `hotline run` (one process or `--workers N`),
stock `rasa run`, Redis, the model. Twilio and Telegram are the test suite's fake
APIs (tests/fakes.py); the turns send what they send: signed Twilio webhooks, Telegram
webhook updates, web chat WebSocket frames.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis
from twilio.request_validator import RequestValidator

from bot.server_keys import load_server_keys
from bot.settings import PROJECT_ROOT as ROOT
from bot.settings import load_settings
from tests.conftest import (
    HOTLINE,
    TELEGRAM_SECRET,
    TWILIO_TOKEN,
    RunningServer,
    conversation_of,
    free_port,
    provider_environ,
    server_environ,
    told,
    wait_for_banner,
    worker_pids,
)
from tests.fakes import Call, FakeTelegram, FakeTwilio
from tests.integration.test_sms import messages

REPORT = ROOT / "docs" / "benchmarks.md"
RASA = Path(sys.executable).parent / "rasa"
# One conversation: the help questions, rights, thanks (no danger: that hands over).
SCRIPT = ["hello", "yes", "I need help, they don't pay me what they promised", "skip", "skip", "skip",
          "skip", "skip", "skip", "what are my rights", "thank you"]
DANGER = "please help me now, he is hitting me and i cant get out"
# Above any load here, so that every turn measured is the bot's: past the flood limit a
# message gets a cheap "please slow down" (docs/operations.md says how to size it).
FLOOD_LIMIT = 10_000
Turn = Callable[[str], Awaitable[list[str]]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_TICKS = os.sysconf("SC_CLK_TCK")
_SCHED_IDLE = 5
_SETTLED_SECONDS = 0.3  # idle-priority threads that used no CPU this long have finished


def _stat(path: Path) -> list[str]:
    """The fields of a /proc stat file after the command name; [] once it is gone."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return []


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """CPU time the processes have used, as (normal, idle): idle is their threads at
    the lowest priority (receipt codes, docs/triage.md), which only take a core that
    nothing else wants."""
    normal = idle = 0.0
    for pid in pids:
        if fields := _stat(Path(f"/proc/{pid}/stat")):  # ended threads included
            normal += (int(fields[11]) + int(fields[12])) / _TICKS
        for thread in Path(f"/proc/{pid}/task").glob("*/stat"):
            if (fields := _stat(thread)) and int(fields[38]) == _SCHED_IDLE:
                seconds = (int(fields[11]) + int(fields[12])) / _TICKS
                normal, idle = normal - seconds, idle + seconds
    return normal, idle


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory} GB RAM, Python {platform.python_version()}"


def write_section(name: str, markdown: str) -> None:
    """Replace this script's section of docs/benchmarks.md, keeping the others."""
    block = f"<!-- {name} -->\n{markdown.strip()}\n<!-- /{name} -->"
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name} -->.*?<!-- /{name} -->", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    REPORT.write_text(text.rstrip() + "\n", encoding="utf-8")


class Providers:
    """The fake Twilio and Telegram APIs, and a count of what reached each chat."""

    def __init__(self) -> None:
        self.twilio, self.telegram = FakeTwilio(), FakeTelegram()
        self.sent: dict[int, int] = defaultdict(int)  # Telegram chat → messages the Bot API took
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self.telegram.listeners.append(self._heard)

    def _heard(self, call: Call) -> None:
        if call.method == "sendMessage":
            self._loop.call_soon_threadsafe(self._count, int(call.params["chat_id"]))

    def _count(self, chat_id: int) -> None:
        self.sent[chat_id] += 1
        self._arrived.set()

    async def arrived(self) -> None:
        """Until the next message reaches any Telegram chat."""
        self._arrived.clear()
        await self._arrived.wait()

    def __enter__(self) -> Providers:
        self.twilio.start()
        self.telegram.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.twilio.stop()
        self.telegram.stop()


class Hotline:
    """`hotline run [--workers N]` with every channel on, as an operator starts it."""

    def __init__(self, providers: Providers, workers: int = 1, var: Path | None = None,
                 **env: str) -> None:
        self.var = var or Path(tempfile.mkdtemp(prefix="hotline-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = server_environ(self.var, HOTLINE_PORT=str(self.port), HOTLINE_PUBLIC_URL=self.url,
                                  HOTLINE_MESSAGES_PER_SECOND=str(FLOOD_LIMIT),
                                  **provider_environ(providers.twilio, providers.telegram), **env)
        log = self.var / "server.log"
        with log.open("w") as stderr:
            self.process = subprocess.Popen([str(HOTLINE), "run", "--workers", str(workers)],
                                            env=self.env, stdout=subprocess.PIPE, stderr=stderr,
                                            text=True, cwd=ROOT)
        if not wait_for_banner(self.process, timeout=300):
            raise SystemExit(f"hotline run did not start:\n{log.read_text()[-3000:]}")
        self.workers = workers
        self.providers = providers
        self.server = RunningServer(self.url, self.var, log, self.process)
        self._people, self._updates = itertools.count(), itertools.count(10_000_000)
        self._webchat_replies: dict[tuple[int, str], int] = {}  # a script step → its replies

    def pids(self) -> list[int]:
        """The processes that serve: the workers, or the one server."""
        return worker_pids(self.process.pid) if self.workers > 1 else [self.process.pid]

    async def someone(self, session: aiohttp.ClientSession, seat: int
                      ) -> tuple[Turn, aiohttp.ClientWebSocketResponse | None]:
        """A new person writing on channel ``seat % 3`` (web chat, SMS, Telegram), and
        the web chat's socket, to close when they are done."""
        serial = next(self._people)
        if seat % 3 == 0:
            ws = await session.ws_connect(self.url.replace("http", "ws") + "/chat/ws")
            return webchat_turn(ws, self._webchat_replies), ws
        if seat % 3 == 1:
            return sms_turn(session, self.url, f"+1415{5_000_000 + serial:07d}"), None
        return telegram_turn(session, self.url, self.providers, 80_000_000 + serial, self._updates), None

    def rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in self.pids()]

    def all_pids(self) -> list[int]:
        """Every process that serves: the parent, the workers, and Redis."""
        client = self.redis()
        try:
            redis_pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        return sorted({self.process.pid, *self.pids(), redis_pid})

    async def codes_made(self) -> None:
        """Until it has made up the receipt codes it gave out (docs/triage.md). It makes
        them at idle priority, during a round on CPU the round leaves free and after it;
        left to go on, they would take CPU from the next side's round (stock Rasa's, or
        its own). Made: its idle-priority threads have stopped using CPU."""
        pids = self.all_pids()
        used = cpu_seconds(pids)[1]
        while True:
            await asyncio.sleep(_SETTLED_SECONDS)
            if (now := cpu_seconds(pids)[1]) == used:
                return
            used = now

    def redis(self) -> redis.Redis:
        url = self.env.get("REDIS_URL") or f"unix://{self.var / 'redis.sock'}"
        return redis.Redis.from_url(url)

    def redis_memory(self) -> int:
        client = self.redis()
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    def said(self, channel: str, address: str) -> list[str]:
        """What the person said, one entry per bot turn, from the stored tracker."""
        client = self.redis()
        try:
            return told(client, load_server_keys(load_settings({"HOTLINE_VAR_DIR": str(self.var)})).cipher(),
                        conversation_of(self.var, channel, address))
        finally:
            client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=90)


class StockRasa:
    """`rasa run --enable-api` on a model, its custom actions on rasa_sdk's action
    server (one HTTP hop per action: the stock setup), trackers in memory."""

    def __init__(self, model: Path) -> None:
        self.port, actions_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
        endpoints = Path(tempfile.mkdtemp(prefix="stock-rasa-")) / "endpoints.yml"
        endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n")
        self.actions = subprocess.Popen([str(RASA), "run", "actions", "--actions", "bot.actions",
                                         "-p", str(actions_port)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, cwd=ROOT)
        self.process = subprocess.Popen([str(RASA), "run", "--enable-api", "-m", str(model), "--port",
                                         str(self.port), "--endpoints", str(endpoints)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                async with session.get(self.url + "/status") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        raise SystemExit("rasa run did not start")

    def turn(self, session: aiohttp.ClientSession, sender: str) -> Turn:
        async def turn(text: str) -> list[str]:
            async with session.post(self.url + "/webhooks/rest/webhook",
                                    json={"sender": sender, "message": text}) as response:
                assert response.status == 200
                return [m.get("text", "") for m in await response.json()]

        return turn

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def all_pids(self) -> list[int]:
        return [self.process.pid, self.actions.pid]

    def stop(self) -> None:
        for running in (self.process, self.actions):
            running.terminate()
            running.wait(timeout=60)


def webchat_turn(ws: aiohttp.ClientWebSocketResponse, replies_at: dict[tuple[int, str], int]) -> Turn:
    """A web chat turn ends with its last reply; the server sends a turn's replies back
    to back. The web chat does not say which reply is the last, so the first turn at
    each step of the script waits 50 ms for more and records how many came
    (``replies_at``); later turns at that step read exactly that many, so no turn
    includes a wait of the load generator's own."""
    steps = itertools.count()

    async def turn(text: str) -> list[str]:
        step = (next(steps), text)
        await ws.send_json({"type": "message", "text": text})
        replies = [(await ws.receive_json(timeout=120))["text"]]
        if step in replies_at:
            for _ in range(replies_at[step] - 1):
                replies.append((await ws.receive_json(timeout=120))["text"])
            return replies
        while True:
            try:
                replies.append((await ws.receive_json(timeout=0.05))["text"])
            except asyncio.TimeoutError:
                replies_at[step] = len(replies)
                return replies

    return turn


def sms_turn(session: aiohttp.ClientSession, url: str, number: str) -> Turn:
    """A signed Twilio webhook per message; like Twilio with connection overrides
    (docs/operations.md), a broken connection or a 503 is delivered again."""
    sids = itertools.count()
    hook = url + "/webhooks/twilio"

    async def turn(text: str) -> list[str]:
        sid = f"SM{number[-7:]}{next(sids):025d}"
        form = {"From": number, "To": "+15005550006", "Body": text, "MessageSid": sid, "NumMedia": "0"}
        headers = {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(hook, form),
                   "Content-Type": "application/x-www-form-urlencoded"}
        return messages(await deliver(session, hook, urlencode(form), headers))

    return turn


def telegram_turn(session: aiohttp.ClientSession, url: str, providers: Providers, chat_id: int,
                  updates: itertools.count[int], wait: bool = True) -> Turn:
    """A webhook update per message, delivered until it gets a 200 as Telegram does;
    with ``wait``, until the first reply reaches the Bot API (through the outbox)."""

    async def turn(text: str) -> list[str]:
        before = providers.sent[chat_id]
        update = {"update_id": next(updates), "message": {
            "message_id": next(updates), "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "A"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A", "language_code": "en"}}}
        await deliver(session, url + "/webhooks/telegram", update,
                      {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        while wait and providers.sent[chat_id] <= before:
            await providers.arrived()
        return []

    return turn


# Deliveries made again, by reason: what a fault cost the providers.
REDELIVERIES: Counter[str] = Counter()


async def deliver(session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> str:
    """POST until the server takes it: a provider's retry on a broken connection or a 503."""
    while True:
        try:
            kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"data": body}
            async with session.post(url, headers=headers, **kwargs) as response:
                text = await response.text()
                if response.status == 200:
                    return text
                assert response.status == 503, (response.status, text)
                REDELIVERIES[json.loads(text)["error"]] += 1
        except aiohttp.ClientError:
            REDELIVERIES["connection lost"] += 1
        await asyncio.sleep(0.5)
