"""Load: N concurrent conversations through all three channels of a real `hotline run`,
side by side with stock `rasa run --enable-api` serving the same model on its REST channel.

Run by `make bench`; writes docs/benchmarks.md. Everything is on loopback: the Twilio
and Telegram APIs are the test suite's fakes (tests/fakes.py), the web chat is the real
WebSocket, SMS is a signed Twilio webhook, Telegram a webhook update. Measured:

- throughput (turns/s) and turn latency (send → first reply) p50/p95/p99;
- alert latency: a P1 typed in the web chat → the `opened` event on a logged-in
  console's WebSocket, while the load runs;
- RSS of each server process, and Redis memory per conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import aiohttp
import pyotp
import redis
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.agent import current_model  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.conftest import (  # noqa: E402
    HOTLINE,
    TELEGRAM_SECRET,
    TWILIO_TOKEN,
    free_port,
    provider_environ,
    server_environ,
    wait_for_banner,
)
from tests.fakes import FakeTelegram, FakeTwilio  # noqa: E402

REPORT = ROOT / "docs" / "benchmarks.md"
# One conversation: the help questions, rights, thanks (no danger: that hands over).
SCRIPT = ["hello", "yes", "I need help, they don't pay me what they promised", "skip", "skip", "skip",
          "skip", "skip", "skip", "what are my rights", "thank you"]
DANGER = "please help me now, he is hitting me and i cant get out"
Turn = Callable[[str], Awaitable[None]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Hotline:
    """`hotline run` with every channel on, a console logged in for the alerts."""

    def __init__(self, twilio: FakeTwilio, telegram: FakeTelegram) -> None:
        self.var = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = server_environ(self.var, HOTLINE_PORT=str(self.port), HOTLINE_PUBLIC_URL=self.url,
                             **provider_environ(twilio, telegram))
        self.env = env
        self.process = subprocess.Popen([str(HOTLINE), "run"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        if not wait_for_banner(self.process, timeout=180):
            raise SystemExit("hotline run did not start")
        added = subprocess.run([str(HOTLINE), "staff", "add", "bench", "--role", "supervisor"], env=env,
                               input="a long bench password\n", capture_output=True, text=True, check=True)
        self.totp = pyotp.TOTP(parse_qs(urlparse(added.stdout.strip().splitlines()[-1]).query)["secret"][0])

    def redis_memory(self) -> int:
        client = redis.Redis(unix_socket_path=str(self.var / "redis.sock"))
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


async def webchat(session: aiohttp.ClientSession, url: str) -> Turn:
    ws = await session.ws_connect(url.replace("http", "ws") + "/chat/ws")

    async def turn(text: str) -> None:
        await ws.send_json({"type": "message", "text": text})
        await ws.receive_json(timeout=60)  # the first reply ends the timed part
        # The turn's other replies are sent back to back: take them before the next turn.
        while True:
            try:
                await ws.receive_json(timeout=0.05)
            except asyncio.TimeoutError:
                break

    return turn


def sms(session: aiohttp.ClientSession, url: str, number: str) -> Turn:
    sids = itertools.count()
    hook = url + "/webhooks/twilio"

    async def turn(text: str) -> None:
        sid = f"SM{number[-7:]}{next(sids):025d}"
        form = {"From": number, "To": "+15005550006", "Body": text, "MessageSid": sid, "NumMedia": "0"}
        headers = {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(hook, form),
                   "Content-Type": "application/x-www-form-urlencoded"}
        async with session.post(hook, data=urlencode(form), headers=headers) as response:
            await response.read()
            assert response.status == 200

    return turn


def telegram(session: aiohttp.ClientSession, url: str, fake: FakeTelegram, chat_id: int,
             updates: itertools.count[int]) -> Turn:
    def sent() -> int:
        return sum(1 for c in fake.of("sendMessage") if int(c.params["chat_id"]) == chat_id)

    async def turn(text: str) -> None:
        before = sent()
        update = {"update_id": next(updates), "message": {
            "message_id": next(updates), "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "A"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A", "language_code": "en"}}}
        async with session.post(url + "/webhooks/telegram", json=update,
                                headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}) as response:
            await response.read()
        while sent() <= before:  # the reply goes out through the outbox to the fake Bot API
            await asyncio.sleep(0.002)

    return turn


async def drive(turns: list[Turn]) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def conversation(turn: Turn) -> None:
        for text in SCRIPT:
            started = time.perf_counter()
            await turn(text)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(conversation(t) for t in turns))
    return latencies, time.perf_counter() - started


async def alerts(session: aiohttp.ClientSession, hotline: Hotline, count: int) -> list[float]:
    """P1s from fresh web chats, one at a time, timed to the console's event."""
    login = await session.post(hotline.url + "/console/api/login", json={
        "name": "bench", "password": "a long bench password", "code": hotline.totp.now()})
    assert login.status == 200, await login.text()
    times: list[float] = []
    async with session.ws_connect(hotline.url.replace("http", "ws") + "/console/ws") as live:
        for _ in range(count):
            async with session.ws_connect(hotline.url.replace("http", "ws") + "/chat/ws") as chat:
                started = time.perf_counter()
                await chat.send_json({"type": "message", "text": DANGER})
                while True:
                    event = json.loads((await live.receive(timeout=60)).data)
                    if event["type"] == "opened" and event["priority"] == "P1":
                        break
                times.append((time.perf_counter() - started) * 1000)
                await chat.receive_json(timeout=60)
            await asyncio.sleep(0.2)
    return times


async def ours(conversations: int, twilio: FakeTwilio, fake_telegram: FakeTelegram) -> dict[str, float]:
    hotline = Hotline(twilio, fake_telegram)
    try:
        memory_before = hotline.redis_memory()
        updates = itertools.count(10_000_000)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            turns: list[Turn] = []
            for n in range(conversations):
                kind = n % 3
                if kind == 0:
                    turns.append(await webchat(session, hotline.url))
                elif kind == 1:
                    turns.append(sms(session, hotline.url, f"+1415{5550000 + n:07d}"))
                else:
                    turns.append(telegram(session, hotline.url, fake_telegram, 80_000_000 + n, updates))
            alert_task = asyncio.create_task(alerts(session, hotline, 20))
            latencies, seconds = await drive(turns)
            alert_times = await alert_task
        return {
            "turns": len(latencies), "seconds": seconds, "throughput": len(latencies) / seconds,
            "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99), "alert_p50": statistics.median(alert_times),
            "alert_p99": percentile(alert_times, 0.99), "rss_mb": rss_mb(hotline.process.pid),
            "redis_kb_per_conversation":
                (hotline.redis_memory() - memory_before) / 1024 / (conversations + 20),
        }
    finally:
        hotline.stop()


async def stock(conversations: int) -> dict[str, float]:
    """`rasa run --enable-api` on the same model: the REST channel, in-memory trackers."""
    port, actions_port = free_port(), free_port()
    model = current_model(load_settings({"HOTLINE_MODEL_DIR": str(ROOT / "models")}))
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    rasa = Path(sys.executable).parent / "rasa"
    endpoints = Path(tempfile.mkdtemp(prefix="stock-rasa-")) / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n")
    # The stock way to run custom actions: rasa_sdk's action server, one HTTP hop per action.
    actions = subprocess.Popen([str(rasa), "run", "actions", "--actions", "bot.actions",
                                "-p", str(actions_port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    process = subprocess.Popen([str(rasa), "run", "--enable-api", "-m", str(model), "--port", str(port),
                                "--endpoints", str(endpoints)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(url + "/status") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)

            def rest(sender: str) -> Turn:
                async def turn(text: str) -> None:
                    async with session.post(url + "/webhooks/rest/webhook",
                                            json={"sender": sender, "message": text}) as response:
                        await response.read()
                        assert response.status == 200

                return turn

            latencies, seconds = await drive([rest(f"stock-{n}") for n in range(conversations)])
        return {"turns": len(latencies), "seconds": seconds, "throughput": len(latencies) / seconds,
                "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                "p99": percentile(latencies, 0.99), "rss_mb": rss_mb(process.pid)}
    finally:
        for running in (process, actions):
            running.terminate()
            running.wait(timeout=60)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory} GB RAM, Python {platform.python_version()}"


def report(conversations: int, us: dict[str, float], them: dict[str, float]) -> str:
    def row(name: str, key: str, unit: str, better: str) -> str:
        ratio = (us[key] / them[key]) if better == "higher" else (them[key] / us[key])
        return f"| {name} | {us[key]:.1f} {unit} | {them[key]:.1f} {unit} | {ratio:.2f} x |"

    return "\n".join([
        "# Benchmarks", "",
        f"Machine: {machine()}. Command: `make bench` (`bench/load.py --conversations {conversations}`).",
        "Everything on loopback; Twilio and Telegram are the test suite's fake APIs.", "",
        f"## {conversations} concurrent conversations, {len(SCRIPT)} turns each", "",
        "Ours: `hotline run` — one third web chat (WebSocket), one third SMS (signed Twilio webhook, TwiML",
        "reply), one third Telegram (webhook, reply through the outbox to the Bot API); every message",
        "triaged, trackers and cases encrypted in Redis. Stock: `rasa run --enable-api` on the same model,",
        "REST channel, in-memory trackers, custom actions on rasa_sdk's action server (the stock setup),",
        "no triage. Turn latency: a message sent → its first reply.", "",
        "| measure | ours | stock Rasa | ours vs stock (>1 is better) |", "| --- | --- | --- | --- |",
        row("throughput", "throughput", "turns/s", "higher"),
        row("turn latency p50", "p50", "ms", "lower"),
        row("turn latency p95", "p95", "ms", "lower"),
        row("turn latency p99", "p99", "ms", "lower"),
        row("RSS per process", "rss_mb", "MB", "lower"), "",
        f"Alert latency (a P1 in the web chat → the console's WebSocket event, 20 P1s during the load): "
        f"p50 {us['alert_p50']:.1f} ms, p99 {us['alert_p99']:.1f} ms.", "",
        f"Redis memory per conversation (ours, {conversations} + 20, with cases): "
        f"{us['redis_kb_per_conversation']:.1f} KB.", "",
    ])


async def main(conversations: int) -> None:
    twilio, fake_telegram = FakeTwilio(), FakeTelegram()
    twilio.start()
    fake_telegram.start()
    try:
        us = await ours(conversations, twilio, fake_telegram)
    finally:
        twilio.stop()
        fake_telegram.stop()
    them = await stock(conversations)
    REPORT.write_text(report(conversations, us, them), encoding="utf-8")
    print(REPORT.read_text(encoding="utf-8"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20)
    asyncio.run(main(parser.parse_args().conversations))
