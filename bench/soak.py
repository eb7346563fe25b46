"""Soak: `hotline run --workers 2` under a steady load for a long time; is memory flat?

20 people at a time, a third on each channel, each saying the 11-message script with
a second between messages, then making way for a new person: about 15 turns a second,
every conversation new, as a busy day looks. Each worker's RSS and Redis's memory are
sampled every minute. Run by `make soak` (30 minutes); writes its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.harness import (
    SCRIPT,
    Hotline,
    Providers,
    machine,
    percentile,
    write_section,
)

PEOPLE = 20
PAUSE_SECONDS = 1.0
Sample = tuple[float, list[float], float, int]  # seconds, RSS per worker, Redis MB, turns


async def run(minutes: float) -> None:
    samples: list[Sample] = []
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        with Providers() as providers:
            hotline = Hotline(providers, workers=2)
            try:
                deadline = time.monotonic() + minutes * 60

                async def person(seat: int) -> None:
                    while time.monotonic() < deadline:
                        turn, ws = await hotline.someone(session, seat)
                        for text in SCRIPT:
                            started = time.perf_counter()
                            await turn(text)
                            latencies.append((time.perf_counter() - started) * 1000)
                            await asyncio.sleep(PAUSE_SECONDS)
                        if ws is not None:
                            await ws.close()

                async def sample() -> None:
                    started = time.monotonic()
                    while time.monotonic() < deadline:
                        samples.append((time.monotonic() - started, hotline.rss_mb(),
                                        hotline.redis_memory() / 2**20, len(latencies)))
                        print(samples[-1], flush=True)
                        await asyncio.sleep(60)

                await asyncio.gather(sample(), *(person(seat) for seat in range(PEOPLE)))
                samples.append((minutes * 60, hotline.rss_mb(), hotline.redis_memory() / 2**20,
                                len(latencies)))
            finally:
                hotline.stop()
    write_section("soak", report(minutes, samples, latencies))
    print(report(minutes, samples, latencies))


def report(minutes: float, samples: list[Sample], latencies: list[float]) -> str:
    # The first minute loads the model's lazy parts and fills the pools: "start" is after it.
    start, end = samples[min(1, len(samples) - 1)], samples[-1]

    def mb(values: list[float], sign: str = "") -> str:
        return " / ".join(f"{v:{sign}.0f}" for v in values)

    rows = [f"| {t / 60:.0f} | {mb(rss)} | {redis_mb:.1f} | {turns} |"
            for t, rss, redis_mb, turns in samples]
    growth = [(e - s) for s, e in zip(start[1], end[1], strict=False)]
    return "\n".join([
        f"## Soak: {minutes:.0f} minutes at a steady load", "",
        f"Machine: {machine()}. Command: `make soak` (`python -m bench.soak --minutes {minutes:.0f}`).", "",
        f"`hotline run --workers 2`; {PEOPLE} people at a time (a third per channel), each saying the "
        f"{len(SCRIPT)}-message script a second apart, then a new person: {len(latencies)} turns, "
        f"{len(latencies) / (minutes * 60):.1f} a second; turn latency p50 "
        f"{percentile(latencies, 0.5):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms.", "",
        f"RSS per worker at minute {start[0] / 60:.0f}: {mb(start[1])} MB; at the end: {mb(end[1])} MB "
        f"(change {mb(growth, '+')} MB). "
        "Redis grows with the conversations it keeps (trackers expire after `HOTLINE_TRACKER_TTL`).", "",
        "| minute | RSS per worker (MB) | Redis used (MB) | turns so far |", "| --- | --- | --- | --- |",
        *rows,
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    asyncio.run(run(parser.parse_args().minutes))
