"""Load: N concurrent conversations through all three channels of a real `hotline run`,
with 1 and 2 worker processes, side by side with stock `rasa run --enable-api` serving
the same model; then the `rasa init` config against ours on the same data.

Run by `make bench`; writes its sections of docs/benchmarks.md. Measured:

- throughput (turns/s) and turn latency (send → first reply) p50/p95/p99;
- alert latency: a P1 typed in the web chat → the `opened` event on a logged-in
  console's WebSocket, 20 of them while the load runs;
- RSS of each server process, and Redis memory per conversation;
- for the two configs: serving speed and memory on stock Rasa, held-out accuracy
  (the same evaluation as `hotline eval`), training time when trained here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.harness import (
    DANGER,
    ROOT,
    SCRIPT,
    Hotline,
    Providers,
    StockRasa,
    Turn,
    machine,
    percentile,
    write_section,
)
from bot.settings import load_settings
from bot.training import CONFIG, model_path, train
from tests.conftest import StaffAccount, add_staff

RASA_INIT = ROOT / "bench" / "rasa-init.yml"
ALERTS = 20
ROUNDS = 3  # timed rounds of all the conversations, after one to warm up


async def drive(people: Callable[[int], Awaitable[list[Turn]]]) -> tuple[list[float], float]:
    """A warm-up round (each process's first messages load lazy parts of the model),
    then ``ROUNDS`` timed rounds; in each, every conversation says the script, a turn
    after its previous turn's first reply. ``people(r)``: round r's conversations."""

    async def one_round(turns: list[Turn], latencies: list[float]) -> None:
        async def conversation(turn: Turn) -> None:
            for text in SCRIPT:
                started = time.perf_counter()
                await turn(text)
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(conversation(t) for t in turns))

    await one_round(await people(0), [])
    latencies: list[float] = []
    started = time.perf_counter()
    for number in range(1, ROUNDS + 1):
        await one_round(await people(number), latencies)
    return latencies, time.perf_counter() - started


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    return {"turns": len(latencies), "seconds": seconds, "throughput": len(latencies) / seconds,
            "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99)}


async def alerts(session: aiohttp.ClientSession, hotline: Hotline, supervisor: StaffAccount) -> list[float]:
    """P1s from fresh web chats, one at a time, timed to the console's event."""
    login = await session.post(hotline.url + "/console/api/login", json={
        "name": supervisor.name, "password": supervisor.password, "code": supervisor.code()})
    assert login.status == 200, await login.text()
    times: list[float] = []
    ws_url = hotline.url.replace("http", "ws")
    async with session.ws_connect(ws_url + "/console/ws") as live:
        for _ in range(ALERTS):
            async with session.ws_connect(ws_url + "/chat/ws") as chat:
                started = time.perf_counter()
                await chat.send_json({"type": "message", "text": DANGER})
                while True:
                    event = json.loads((await live.receive(timeout=120)).data)
                    if event["type"] == "opened" and event["priority"] == "P1":
                        break
                times.append((time.perf_counter() - started) * 1000)
                await chat.receive_json(timeout=120)
            await asyncio.sleep(0.2)  # alerts come one by one, among the conversations
    return times


async def ours(conversations: int, workers: int) -> dict[str, float]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        with Providers() as providers:
            hotline = Hotline(providers, workers)
            try:
                supervisor = add_staff(hotline.server, "bench", "supervisor")
                memory_before = hotline.redis_memory()

                async def with_alerts(number: int) -> list[Turn]:
                    if number == 1:  # the alerts run during the timed rounds
                        alert_task.append(asyncio.create_task(alerts(session, hotline, supervisor)))
                    return [(await hotline.someone(session, seat))[0] for seat in range(conversations)]

                alert_task: list[asyncio.Task[list[float]]] = []
                latencies, seconds = await drive(with_alerts)
                alert_times = await alert_task[0]
                return {
                    **summary(latencies, seconds), "workers": workers,
                    "alert_p50": statistics.median(alert_times), "alert_p99": percentile(alert_times, 0.99),
                    "rss_mb": max(hotline.rss_mb()),
                    "redis_kb_per_conversation":
                        (hotline.redis_memory() - memory_before) / 1024 / (conversations + ALERTS),
                }
            finally:
                hotline.stop()


async def stock(model: Path, conversations: int) -> dict[str, float]:
    rasa = StockRasa(model)
    try:
        async with aiohttp.ClientSession() as session:
            await rasa.ready(session)
            async def round_of(number: int) -> list[Turn]:
                return [rasa.turn(session, f"stock-{number}-{n}") for n in range(conversations)]

            latencies, seconds = await drive(round_of)
        return {**summary(latencies, seconds), "rss_mb": rasa.rss_mb()}
    finally:
        rasa.stop()


def accuracy(model: Path) -> dict[str, float]:
    """Held-out intent macro-F1 and story tests, as `hotline eval` measures them."""
    from bot.evaluation import OFF_TOPIC, evaluate

    evaluation = asyncio.run(evaluate(model))
    languages = [r for r in evaluation.languages if r.code != OFF_TOPIC]
    return {"f1_mean": statistics.mean(r.macro_f1 for r in languages),
            "f1_min": min(r.macro_f1 for r in languages),
            "stories": sum(r.stories_passed for r in languages),
            "stories_all": sum(r.stories for r in languages)}


def load_section(conversations: int, one: dict[str, float], two: dict[str, float],
                 them: dict[str, float]) -> str:
    def row(name: str, key: str, unit: str, higher: bool) -> str:
        def ratio(us: dict[str, float]) -> str:
            return f"{(us[key] / them[key]) if higher else (them[key] / us[key]):.2f} x"

        return (f"| {name} | {one[key]:.1f} {unit} | {two[key]:.1f} {unit} | {them[key]:.1f} {unit} | "
                f"{ratio(one)} | {ratio(two)} |")

    return "\n".join([
        f"## Load: {conversations} concurrent conversations, {len(SCRIPT)} turns each", "",
        f"{ROUNDS} timed rounds of {conversations} new conversations ({ROUNDS * conversations * len(SCRIPT)} "
        "turns) after one round to warm up, for each side.", "",
        f"Machine: {machine()}. Command: `make bench` (`bench/load.py --conversations {conversations}`).",
        "Everything on loopback; Twilio and Telegram are the test suite's fake APIs.", "",
        "Ours: `hotline run` and `hotline run --workers 2` — one third web chat (WebSocket), one third",
        "SMS (signed Twilio webhook, TwiML reply), one third Telegram (webhook, reply through the outbox",
        "to the Bot API); every message triaged, trackers and cases encrypted in Redis, each message",
        "committed exactly once. Stock: `rasa run --enable-api` on the same model, REST channel,",
        "in-memory trackers, custom actions on rasa_sdk's action server (the stock setup), no triage.",
        "Turn latency: a message sent → its first reply. Ratios: ours against stock, above 1 is better.", "",
        "| measure | ours, 1 process | ours, 2 workers | stock Rasa | 1 process vs stock "
        "| 2 workers vs stock |",
        "| --- | --- | --- | --- | --- | --- |",
        row("throughput", "throughput", "turns/s", True),
        row("turn latency p50", "p50", "ms", False),
        row("turn latency p95", "p95", "ms", False),
        row("turn latency p99", "p99", "ms", False),
        row("RSS per process (largest)", "rss_mb", "MB", False), "",
        f"Scale-out: 2 workers give {two['throughput'] / one['throughput']:.2f} x the throughput of one.", "",
        f"Alert latency (a P1 in the web chat → the console's WebSocket event, {ALERTS} P1s during the "
        f"load): 1 process p50 {one['alert_p50']:.1f} ms, p99 {one['alert_p99']:.1f} ms; 2 workers p50 "
        f"{two['alert_p50']:.1f} ms, p99 {two['alert_p99']:.1f} ms.", "",
        f"Redis memory per conversation (2 workers, {conversations} + {ALERTS}, with cases): "
        f"{two['redis_kb_per_conversation']:.1f} KB.",
    ])


def configs_section(conversations: int, ours_speed: dict[str, float], init_speed: dict[str, float],
                    ours_accuracy: dict[str, float], init_accuracy: dict[str, float],
                    trained: str) -> str:
    def row(name: str, a: str, b: str) -> str:
        return f"| {name} | {a} | {b} |"

    def speed(d: dict[str, float]) -> list[str]:
        return [f"{d['throughput']:.1f} turns/s", f"{d['p95']:.0f} ms", f"{d['rss_mb']:.0f} MB"]

    def quality(d: dict[str, float]) -> list[str]:
        return [f"{d['f1_mean']:.3f}", f"{d['f1_min']:.3f}", f"{d['stories']:.0f}/{d['stories_all']:.0f}"]

    names = ["throughput (stock `rasa run`, " f"{conversations} conversations)", "turn latency p95",
             "RSS", "held-out intent macro-F1, mean of 12 languages", "worst language's macro-F1",
             "test stories passed"]
    values = list(zip(speed(ours_speed) + quality(ours_accuracy), speed(init_speed) + quality(init_accuracy),
                      strict=True))
    return "\n".join([
        "## Our config against `rasa init`'s, same data", "",
        "Both models are trained from the same domain and the same 25,000 examples in 12 languages and",
        "served the same way (stock `rasa run --enable-api`), so only the config differs. `rasa init`'s",
        "is `bench/rasa-init.yml` (DIET, TED, UnexpecTED, ResponseSelector) with 2 epochs instead of 100:",
        "DIET takes ~6 minutes an epoch on these examples here, so 100 would be ~10 hours. Epochs do not",
        "change serving cost; its accuracy below is a lower bound. Accuracy is `hotline eval`'s.", "",
        "| measure | ours (`config.yml`) | `rasa init` (`bench/rasa-init.yml`) |", "| --- | --- | --- |",
        *(row(name, a, b) for name, (a, b) in zip(names, values, strict=True)), "",
        f"Training: {trained}.",
    ])


async def run(conversations: int) -> None:
    one = await ours(conversations, workers=1)
    two = await ours(conversations, workers=2)
    settings = load_settings({"HOTLINE_MODEL_DIR": str(ROOT / "models")})
    ours_model = model_path(settings, CONFIG)
    them = await stock(ours_model, conversations)
    write_section("load", load_section(conversations, one, two, them))
    started = time.perf_counter()
    init_model, how = await asyncio.to_thread(train, settings, RASA_INIT)
    trained = (f"`rasa init`'s trained here in {time.perf_counter() - started:.0f} s" if how == "trained"
               else f"`rasa init`'s model {how} (trained before from the same files)")
    init_speed = await stock(init_model, conversations)
    ours_accuracy = await asyncio.to_thread(accuracy, ours_model)
    init_accuracy = await asyncio.to_thread(accuracy, init_model)
    write_section("configs", configs_section(conversations, them, init_speed, ours_accuracy, init_accuracy,
                                             trained))
    print((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20)
    asyncio.run(run(parser.parse_args().conversations))
