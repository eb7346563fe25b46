"""Load: N concurrent conversations through all three channels of a real `hotline run`,
with 1 and 2 worker processes, side by side with stock `rasa run --enable-api` serving
the same model; then the `rasa init` config against ours on the same data.

Run by `make bench`; writes its sections of docs/benchmarks.md. Measured:

- throughput (turns/s) and turn latency (send → its replies; Telegram: the first) p50/p95/p99;
- alert latency: a P1 typed in the web chat → the `opened` event on a logged-in
  console's WebSocket, one after another while our timed rounds run;
- RSS of each server process, and Redis memory per conversation;
- for the two configs: serving speed and memory on stock Rasa, held-out accuracy
  (the same evaluation as `hotline eval`), training time when trained here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench.harness import (
    DANGER,
    FLOOD_LIMIT,
    ROOT,
    SCRIPT,
    Hotline,
    Providers,
    StockRasa,
    Turn,
    cpu_seconds,
    machine,
    percentile,
    write_section,
)
from bot.settings import load_settings
from bot.training import CONFIG, model_path, train
from tests.conftest import StaffAccount, add_staff

RASA_INIT = ROOT / "bench" / "rasa-init.yml"
ROUNDS = 10  # timed rounds of all the conversations per side, after one to warm up; ten, as
# a round's speed varies by a third from one to the next here (docs/benchmarks.md)
ALERT_GAP_SECONDS = 0.2  # alerts come one by one, among the conversations


class Side:
    """A server under load: its conversations round by round, and what it reports."""

    name: str
    conversations: int

    async def people(self, number: int) -> list[Turn]:
        """Round ``number``'s new conversations."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every process that serves it, for the CPU a turn costs."""
        raise NotImplementedError

    async def ready(self) -> None:
        """Until it answers."""

    async def after_round(self) -> None:
        """Close what the round's people left open, and let the work a round leaves
        for later end before the next side's round."""

    async def during(self, stop: asyncio.Event) -> None:
        """Work measured alongside the timed rounds, until ``stop``."""

    def report(self) -> dict[str, float]:
        return {}

    async def close(self) -> None:
        """Stop the server."""


class Ours(Side):
    """`hotline run [--workers N]`, with a logged-in console timing alerts."""

    def __init__(self, session: aiohttp.ClientSession, providers: Providers, conversations: int,
                 workers: int) -> None:
        self.name = "ours, 1 process" if workers == 1 else f"ours, {workers} workers"
        self.session, self.conversations = session, conversations
        self.hotline = Hotline(providers, workers)
        self.supervisor: StaffAccount = add_staff(self.hotline.server, "bench", "supervisor")
        self.memory_before = self.hotline.redis_memory()
        self.alert_times: list[float] = []
        self.started_conversations = 0
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []
        self._console: aiohttp.ClientWebSocketResponse | None = None

    def pids(self) -> list[int]:
        return self.hotline.all_pids()

    async def people(self, number: int) -> list[Turn]:
        turns = []
        for seat in range(self.conversations):
            turn, socket = await self.hotline.someone(self.session, seat)
            turns.append(turn)
            if socket is not None:
                self._sockets.append(socket)
        self.started_conversations += len(turns)
        return turns

    async def after_round(self) -> None:
        for socket in self._sockets:
            await socket.close()
        self._sockets.clear()
        await self.hotline.codes_made()

    async def during(self, stop: asyncio.Event) -> None:
        """P1s from fresh web chats, one at a time, each timed to the console's event."""
        ws_url = self.hotline.url.replace("http", "ws")
        if self._console is None:
            login = await self.session.post(self.hotline.url + "/console/api/login", json={
                "name": self.supervisor.name, "password": self.supervisor.password,
                "code": self.supervisor.code()})
            assert login.status == 200, await login.text()
            self._console = await self.session.ws_connect(ws_url + "/console/ws")
        while not stop.is_set():
            async with self.session.ws_connect(ws_url + "/chat/ws") as chat:
                started = time.perf_counter()
                await chat.send_json({"type": "message", "text": DANGER})
                while True:
                    event = json.loads((await self._console.receive(timeout=120)).data)
                    if event["type"] == "opened" and event["priority"] == "P1":
                        break
                self.alert_times.append((time.perf_counter() - started) * 1000)
                self.started_conversations += 1
                await chat.receive_json(timeout=120)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), ALERT_GAP_SECONDS)

    def report(self) -> dict[str, float]:
        return {"alert_p50": statistics.median(self.alert_times),
                "alert_p99": percentile(self.alert_times, 0.99), "alerts": len(self.alert_times),
                "rss_mb": max(self.hotline.rss_mb()),
                "redis_kb_per_conversation":
                    (self.hotline.redis_memory() - self.memory_before) / 1024 / self.started_conversations}

    async def close(self) -> None:
        if self._console is not None:
            await self._console.close()
        self.hotline.stop()


class Stock(Side):
    """`rasa run --enable-api` on a model (REST channel, actions on rasa_sdk's server)."""

    def __init__(self, session: aiohttp.ClientSession, model: Path, conversations: int, name: str) -> None:
        self.name, self.session, self.conversations = name, session, conversations
        self.rasa = StockRasa(model)

    def pids(self) -> list[int]:
        return self.rasa.all_pids()

    async def ready(self) -> None:
        await self.rasa.ready(self.session)

    async def people(self, number: int) -> list[Turn]:
        return [self.rasa.turn(self.session, f"{self.name}-{number}-{n}") for n in range(self.conversations)]

    def report(self) -> dict[str, float]:
        return {"rss_mb": self.rasa.rss_mb()}

    async def close(self) -> None:
        self.rasa.stop()


async def interleaved(sides: list[Side]) -> dict[str, tuple[dict[str, float], list[float]]]:
    """A warm-up round on each side (each process's first messages load lazy parts of
    the model), then ``ROUNDS`` timed rounds, the sides taking turns: the machine's
    speed drifts by a third from one minute to the next, and taking turns lets the
    drift reach every side alike. In a round every conversation says the script, a
    turn after its previous turn's replies. CPU is counted over the rounds' turns
    in every process of the side (ours: its alerts too)."""

    async def one_round(side: Side, number: int, latencies: list[float]) -> tuple[float, float, float]:
        turns = await side.people(number)
        pids = side.pids()

        async def conversation(turn: Turn) -> None:
            for text in SCRIPT:
                started = time.perf_counter()
                await turn(text)
                latencies.append((time.perf_counter() - started) * 1000)

        stop = asyncio.Event()
        alongside = asyncio.create_task(side.during(stop)) if number else None
        cpu_before = cpu_seconds(pids)
        started = time.perf_counter()
        await asyncio.gather(*(conversation(t) for t in turns))
        seconds = time.perf_counter() - started
        cpu_after = cpu_seconds(pids)
        stop.set()
        if alongside is not None:
            await alongside  # its last alert ends before the next side starts
        await side.after_round()
        return seconds, cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]

    for side in sides:
        await one_round(side, 0, [])
    latencies: dict[str, list[float]] = {side.name: [] for side in sides}
    totals = {name: [0.0, 0.0, 0.0] for name in latencies}  # seconds, CPU, idle-priority CPU
    by_round: dict[str, list[float]] = {name: [] for name in latencies}  # each round's throughput
    for number in range(1, ROUNDS + 1):
        for side in sides:
            measured = await one_round(side, number, latencies[side.name])
            totals[side.name] = [a + b for a, b in zip(totals[side.name], measured, strict=True)]
            by_round[side.name].append(side.conversations * len(SCRIPT) / measured[0])
    return {name: (summary(latencies[name], *totals[name]), by_round[name]) for name in latencies}


def summary(latencies: list[float], seconds: float, cpu: float, idle_cpu: float) -> dict[str, float]:
    return {"turns": len(latencies), "seconds": seconds, "throughput": len(latencies) / seconds,
            "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99), "cpu_ms": cpu / len(latencies) * 1000,
            "idle_cpu_ms": idle_cpu / len(latencies) * 1000}


def round_ratios(us: list[float], them: list[float]) -> str:
    """Throughput over stock's, round by round (each pair minutes apart at most)."""
    ratios = sorted(a / b for a, b in zip(us, them, strict=True))
    return (f"median {statistics.median(ratios):.2f} x, from {ratios[0]:.2f} to {ratios[-1]:.2f} x "
            f"over {len(ratios)} rounds")


def accuracy(model: Path) -> dict[str, float]:
    """Held-out intent macro-F1 and story tests, as `hotline eval` measures them."""
    from bot.evaluation import OFF_TOPIC, evaluate

    evaluation = asyncio.run(evaluate(model))
    languages = [r for r in evaluation.languages if r.code != OFF_TOPIC]
    return {"f1_mean": statistics.mean(r.macro_f1 for r in languages),
            "f1_min": min(r.macro_f1 for r in languages),
            "stories": sum(r.stories_passed for r in languages),
            "stories_all": sum(r.stories for r in languages)}


def load_section(conversations: int, one: dict[str, float], two: dict[str, float], them: dict[str, float],
                 rounds: list[list[float]]) -> str:
    """``rounds``: each timed round's throughput, for ours with 1 process, 2 workers, and stock."""
    cores = os.cpu_count() or 1
    budget = cores * 1000 / (2 * them["throughput"])
    stock_cores = them["throughput"] * them["cpu_ms"] / 1000

    def row(name: str, key: str, unit: str, higher: bool) -> str:
        def ratio(us: dict[str, float]) -> str:
            return f"{(us[key] / them[key]) if higher else (them[key] / us[key]):.2f} x"

        return (f"| {name} | {one[key]:.1f} {unit} | {two[key]:.1f} {unit} | {them[key]:.1f} {unit} | "
                f"{ratio(one)} | {ratio(two)} |")

    return "\n".join([
        f"## Load: {conversations} concurrent conversations, {len(SCRIPT)} turns each", "",
        f"For each side, {ROUNDS} timed rounds of {conversations} new conversations "
        f"({ROUNDS * conversations * len(SCRIPT)} turns) after one round to warm up. All three servers "
        "are up at once and take their rounds in turn (ours, ours with 2 workers, stock, again), so "
        "the machine's drift in speed reaches every side alike.", "",
        f"Machine: {machine()}. Command: `make bench` (`bench/load.py --conversations {conversations}`).",
        "Everything on loopback; Twilio and Telegram are the test suite's fake APIs.", "",
        "Ours: `hotline run` and `hotline run --workers 2` — one third web chat (WebSocket), one third",
        "SMS (signed Twilio webhook, TwiML reply), one third Telegram (webhook, reply through the outbox",
        "to the Bot API); every message triaged, trackers and cases encrypted in Redis, each message",
        "committed exactly once; receipt codes hashed ahead at idle priority (docs/triage.md), so",
        "between its rounds each server makes up the codes its last round gave out, as it would",
        "between bursts (the next side's round starts when it has: they would take that side's CPU);",
        "a load that keeps both cores busy past 64 new cases a process pays for each",
        "code as it is issued. Stock: `rasa run --enable-api` on the same model, REST channel,",
        "in-memory trackers, custom actions on rasa_sdk's action server (the stock setup), no triage.",
        f"Our flood limit (`HOTLINE_MESSAGES_PER_SECOND`) is {FLOOD_LIMIT:,}/s, above this load, so",
        "every turn is the bot's, not a \"please slow down\" (the default, 100/s, is for a deployment to",
        "size: docs/operations.md).",
        "Turn latency: a message sent → its replies (Telegram: the first to reach the Bot API). Ratios: "
        "ours against stock, above 1 is better.", "",
        "| measure | ours, 1 process | ours, 2 workers | stock Rasa | 1 process vs stock "
        "| 2 workers vs stock |",
        "| --- | --- | --- | --- | --- | --- |",
        row("throughput", "throughput", "turns/s", True),
        row("turn latency p50", "p50", "ms", False),
        row("turn latency p95", "p95", "ms", False),
        row("turn latency p99", "p99", "ms", False),
        row("RSS per process (largest)", "rss_mb", "MB", False),
        row("CPU per turn, every process of the side", "cpu_ms", "ms", False), "",
        f"Scale-out: 2 workers give {two['throughput'] / one['throughput']:.2f} x the throughput of one.", "",
        "The machine's speed changes from one round to the next (docs/benchmarks.md, top), so here is",
        "each round's throughput against stock's in the same round: 2 workers "
        f"{round_ratios(rounds[1], rounds[2])}; 1 process {round_ratios(rounds[0], rounds[2])}.",
        "",
        "CPU per turn counts every process of a side over its timed rounds: ours the parent, the workers",
        "and Redis (and the alerts' conversations); stock `rasa run` and its action server. Ours also",
        f"spent {two['idle_cpu_ms']:.1f} ms a turn (2 workers) at idle priority making receipt codes, which",
        f"takes only a core nothing else wants. Stock serves from one process: its {them['throughput']:.0f}",
        f"turns/s kept {stock_cores:.2f} of the {cores} cores busy. Twice that throughput,",
        f"{2 * them['throughput']:.0f} turns/s, would leave at most {budget:.1f} ms of CPU a turn on",
        f"{cores} cores for everything, the load generator included: {budget / them['cpu_ms']:.2f} x what",
        "stock's own turn costs.", "",
        "Alert latency (a P1 typed in a new web chat → the `opened` event on a logged-in console's "
        "WebSocket; one after another, 0.2 s apart, while the side's timed rounds run): "
        f"1 process p50 {one['alert_p50']:.1f} ms, p99 {one['alert_p99']:.1f} ms "
        f"({one['alerts']:.0f} alerts); 2 workers p50 {two['alert_p50']:.1f} ms, "
        f"p99 {two['alert_p99']:.1f} ms ({two['alerts']:.0f} alerts).",
        "",
        "Redis memory per conversation (2 workers; every conversation the side started, alerts included, "
        f"most of them with a case): {two['redis_kb_per_conversation']:.1f} KB.",
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
        "served the same way (stock `rasa run --enable-api`, both up at once, taking rounds in turn), so",
        "only the config differs. `rasa init`'s is `bench/rasa-init.yml` (DIET, TED, UnexpecTED,",
        "ResponseSelector) with 2 epochs instead of 100:",
        "DIET takes ~6 minutes an epoch on these examples here, so 100 would be ~10 hours. Epochs do not",
        "change serving cost; its accuracy below is a lower bound. Accuracy is `hotline eval`'s.", "",
        "| measure | ours (`config.yml`) | `rasa init` (`bench/rasa-init.yml`) |", "| --- | --- | --- |",
        *(row(name, a, b) for name, (a, b) in zip(names, values, strict=True)), "",
        f"Training: {trained}.",
    ])


async def side_by_side(make: list[Callable[[aiohttp.ClientSession, Providers], Side]]
                       ) -> list[tuple[dict[str, float], list[float]]]:
    """The sides, all up at once, taking turns; each one's speed and report, and its
    throughput round by round."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        with Providers() as providers:
            sides: list[Side] = []
            try:
                for start in make:
                    sides.append(start(session, providers))
                for side in sides:
                    await side.ready()
                speeds = await interleaved(sides)
                return [({**speeds[side.name][0], **side.report()}, speeds[side.name][1]) for side in sides]
            finally:
                for side in sides:
                    await side.close()


async def run(conversations: int) -> None:
    settings = load_settings({"HOTLINE_MODEL_DIR": str(ROOT / "models")})
    ours_model = model_path(settings, CONFIG)
    (one, one_rounds), (two, two_rounds), (them, them_rounds) = await side_by_side([
        lambda session, providers: Ours(session, providers, conversations, workers=1),
        lambda session, providers: Ours(session, providers, conversations, workers=2),
        lambda session, _: Stock(session, ours_model, conversations, "stock Rasa"),
    ])
    write_section("load", load_section(conversations, one, two, them, [one_rounds, two_rounds, them_rounds]))
    started = time.perf_counter()
    init_model, how = await asyncio.to_thread(train, settings, RASA_INIT)
    trained = (f"`rasa init`'s trained here in {time.perf_counter() - started:.0f} s" if how == "trained"
               else f"`rasa init`'s model {how} (trained before from the same files)")
    (ours_speed, _), (init_speed, _) = await side_by_side([
        lambda session, _: Stock(session, ours_model, conversations, "config.yml"),
        lambda session, _: Stock(session, init_model, conversations, "rasa init"),
    ])
    ours_accuracy = await asyncio.to_thread(accuracy, ours_model)
    init_accuracy = await asyncio.to_thread(accuracy, init_model)
    write_section("configs", configs_section(conversations, ours_speed, init_speed, ours_accuracy,
                                             init_accuracy, trained))
    print((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20)
    asyncio.run(run(parser.parse_args().conversations))
