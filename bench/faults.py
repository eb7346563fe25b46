"""Faults: messages counted end to end while something breaks.

`hotline run --workers 2` on a Redis server with AOF persistence (`appendonly yes`,
`appendfsync everysec`). In each scenario 10 people (5 by SMS, 5 on Telegram) each
say the 11-message script while, a third of the way in, one thing fails:

- kill -9 of one of the two workers (the server starts it again);
- Redis restarted (stopped, then started on its AOF);
- the Telegram Bot API answering 500 to everything for 60 s;
- every delivery duplicated: each SMS delivered again after its first answer was
  lost (as Twilio retries), each Telegram update twice at once and once more later.

Like the providers, the senders deliver a webhook again on a broken connection or a
503 (Twilio with connection overrides, docs/operations.md). Afterwards, for every
conversation, the bot's stored turns are compared with what was said (lost,
duplicated, out of order), and what reached the person (the TwiML answers Twilio
acted on, the messages the Bot API took) with a fault-free run of the same script.
Run by `make bench`; writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bench.harness import (
    REDELIVERIES,
    SCRIPT,
    Hotline,
    Providers,
    Turn,
    deliver,
    machine,
    sms_turn,
    telegram_turn,
    write_section,
)
from tests.conftest import TELEGRAM_SECRET, AofRedis

PEOPLE = 5  # per channel
OUTAGE_SECONDS = 60
REDIS_DOWN_SECONDS = 3.0
_CODE = re.compile(r"\d")


@dataclass
class Person:
    channel: str
    address: str
    turn: Turn
    answers: list[list[str]] = field(default_factory=list)


@dataclass
class Count:
    scenario: str
    inbound: int = 0
    turns: int = 0
    inbound_lost: int = 0
    inbound_duplicated: int = 0
    out_of_order: int = 0
    outbound: int = 0
    delivered: int = 0
    outbound_lost: int = 0
    outbound_duplicated: int = 0
    seconds: float = 0.0
    note: str = ""
    redelivered: str = ""


def normal(text: str) -> str:
    return _CODE.sub("#", text)  # receipt codes differ from one person to the next


def difference(expected: list[str], got: list[str]) -> tuple[int, int]:
    """(missing, extra) between two lists taken as multisets."""
    want, have = Counter(expected), Counter(got)
    return sum((want - have).values()), sum((have - want).values())


class Bench:
    def __init__(self, session: aiohttp.ClientSession, providers: Providers, hotline: Hotline) -> None:
        self.session, self.providers, self.hotline = session, providers, hotline
        self.numbers = itertools.count(5551000)
        self.chats = itertools.count(90_000_000)
        self.updates = itertools.count(50_000_000)

    def people(self, duplicate: bool = False) -> list[Person]:
        people = []
        for _ in range(PEOPLE):
            number = f"+1415{next(self.numbers):07d}"
            turn = sms_turn(self.session, self.hotline.url, number)
            people.append(Person("sms", number, self._sms_twice(number) if duplicate else turn))
            chat = next(self.chats)
            people.append(Person("telegram", str(chat), self._telegram_twice(chat) if duplicate else
                                 telegram_turn(self.session, self.hotline.url, self.providers, chat,
                                               self.updates, wait=False)))
        return people

    def _sms_twice(self, number: str) -> Turn:
        """Each message delivered, its answer lost on the way back, delivered again."""
        first = sms_turn(self.session, self.hotline.url, number)
        again = sms_turn(self.session, self.hotline.url, number)

        async def turn(text: str) -> list[str]:
            await first(text)  # Twilio never read this answer
            return await again(text)  # the same MessageSid: the same answer, no second turn

        return turn

    def _telegram_twice(self, chat: int) -> Turn:
        async def turn(text: str) -> list[str]:
            update_id = next(self.updates)
            update = {"update_id": update_id, "message": {
                "message_id": update_id, "date": int(time.time()), "text": text,
                "chat": {"id": chat, "type": "private", "first_name": "A"},
                "from": {"id": chat, "is_bot": False, "first_name": "A", "language_code": "en"}}}
            hook, headers = self.hotline.url + "/webhooks/telegram", {
                "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
            await asyncio.gather(deliver(self.session, hook, update, headers),
                                 deliver(self.session, hook, update, headers))
            await deliver(self.session, hook, update, headers)
            return []

        return turn

    async def talk(self, people: list[Person], fault: Callable[[], Awaitable[str]] | None) -> str:
        """Everyone says the script; the fault strikes once a third of the messages are in."""
        said = 0
        struck = asyncio.Event()
        note = ""

        async def conversation(person: Person) -> None:
            nonlocal said
            for text in SCRIPT:
                person.answers.append(await person.turn(text))
                said += 1
                if said * 3 >= len(people) * len(SCRIPT) and not struck.is_set():
                    struck.set()
                await asyncio.sleep(0.3)  # a person reads, then writes again

        async def strike() -> None:
            nonlocal note
            await struck.wait()
            if fault is not None:
                note = await fault()

        await asyncio.gather(strike(), *(conversation(p) for p in people))
        return note

    async def settled(self, timeout: float = 600) -> None:
        """Until the outbox is empty: every queued message taken by its provider."""
        client = self.hotline.redis()
        try:
            deadline = time.monotonic() + timeout
            while client.zcard("outbox:due"):  # a conversation leaves it when its queue is empty
                assert time.monotonic() < deadline, "the outbox did not drain"
                await asyncio.sleep(0.2)
        finally:
            client.close()

    def delivered(self, person: Person) -> list[str]:
        """What reached the person: the TwiML answers Twilio acted on, or what the Bot API took."""
        if person.channel == "sms":
            return [normal(m) for answer in person.answers for m in answer]
        return [normal(c.params["text"]) for c in self.providers.telegram.of("sendMessage")
                if str(c.params["chat_id"]) == person.address]

    def count(self, scenario: str, people: list[Person], expected: dict[str, list[str]], seconds: float,
              note: str) -> Count:
        count = Count(scenario, seconds=seconds, note=note)
        for person in people:
            said = self.hotline.said(person.channel, person.address)
            count.inbound += len(SCRIPT)
            count.turns += len(said)
            lost, extra = difference(SCRIPT, said)
            count.inbound_lost += lost
            count.inbound_duplicated += extra
            count.out_of_order += int(not lost and not extra and said != SCRIPT)
            want, got = expected[person.channel], self.delivered(person)
            count.outbound += len(want)
            count.delivered += len(got)
            lost, extra = difference(want, got)
            count.outbound_lost += lost
            count.outbound_duplicated += extra
        return count


async def run() -> None:
    redis_server = AofRedis()
    counts: list[Count] = []
    try:
        async with aiohttp.ClientSession() as session:
            with Providers() as providers:
                hotline = Hotline(providers, workers=2, REDIS_URL=redis_server.url)
                try:
                    bench = Bench(session, providers, hotline)
                    baseline = bench.people()[:2]
                    await bench.talk(baseline, None)
                    await bench.settled()
                    expected = {person.channel: bench.delivered(person) for person in baseline}

                    async def kill() -> str:
                        victim = hotline.pids()[0]
                        os.kill(victim, signal.SIGKILL)
                        return f"killed worker {victim}"

                    async def restart_redis() -> str:
                        down = await asyncio.to_thread(redis_server.restart, REDIS_DOWN_SECONDS)
                        return f"Redis down {down:.1f} s"

                    async def outage() -> str:
                        providers.telegram.fail_for(OUTAGE_SECONDS)
                        return f"Bot API answered 500 for {OUTAGE_SECONDS} s"

                    scenarios: list[tuple[str, Callable[[], Awaitable[str]] | None, bool]] = [
                        ("kill -9 one of two workers", kill, False),
                        ("Redis restart (AOF)", restart_redis, False),
                        (f"Telegram API 500s for {OUTAGE_SECONDS} s", outage, False),
                        ("every delivery duplicated", None, True),
                    ]
                    for name, fault, duplicate in scenarios:
                        people = bench.people(duplicate)
                        started, before = time.monotonic(), REDELIVERIES.copy()
                        note = await bench.talk(people, fault)
                        await bench.settled()
                        counts.append(bench.count(name, people, expected, time.monotonic() - started, note))
                        counts[-1].redelivered = ", ".join(f"{n} {reason}" for reason, n in
                                                           sorted((REDELIVERIES - before).items())) or "none"
                        print(counts[-1], flush=True)
                finally:
                    hotline.stop()
    finally:
        redis_server.stop()
    write_section("faults", report(counts))
    print(report(counts))


def report(counts: list[Count]) -> str:
    rows = [f"| {c.scenario} | {c.note} | {c.redelivered} | {c.inbound} | {c.turns} | {c.inbound_lost} | "
            f"{c.inbound_duplicated} | {c.out_of_order} | {c.outbound} | {c.delivered} | {c.outbound_lost} | "
            f"{c.outbound_duplicated} | {c.seconds:.0f} s |" for c in counts]
    return "\n".join([
        "## Faults: every message counted", "",
        f"Machine: {machine()}. Command: `make bench` (`python -m bench.faults`).", "",
        f"`hotline run --workers 2` on a redis-server with AOF (`appendfsync everysec`). Per scenario "
        f"{2 * PEOPLE} people ({PEOPLE} SMS, {PEOPLE} Telegram) each say the {len(SCRIPT)}-message script; "
        "the fault strikes a third of the way in. Senders deliver again on a broken connection or a 503, as "
        "Twilio (with connection overrides) and Telegram do, every 0.5 s until taken (Twilio stops after "
        "15 s; docs/operations.md says what to configure). Inbound: the bot's stored turns against what "
        "was said. Outbound: what reached the person (TwiML answers Twilio acted on, messages the Bot API "
        "took) against a fault-free run of the same script.", "",
        "| scenario | fault | delivered again (503 or broken connection) | messages in | bot turns | lost "
        "| duplicated | out of order | replies expected | replies delivered | lost | duplicated "
        "| until all delivered |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])


if __name__ == "__main__":
    asyncio.run(run())
