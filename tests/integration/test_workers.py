"""``hotline run --workers 2``: two processes on one port and one Redis, as in production."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
import redis

from tests.conftest import (
    RunningServer,
    Settings,
    add_staff,
    eventually,
    start_server,
    stop_server,
    worker_pids,
)
from tests.console.test_console_api import Staff, _next_event
from tests.fakes import FakeTelegram, FakeTwilio
from tests.integration.test_sms import Phone, messages, sign, twilio_form

REPLY = "I am here. Are you safe to write?"
SCRIPT = ["hello", "yes", "I need help, they don't pay me what they promised", "skip", "skip"]


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, model_settings: Settings, fake_twilio: FakeTwilio,
            fake_telegram: FakeTelegram) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("workers-var"), model_settings, fake_twilio,
                           fake_telegram, "--workers", "2")
    yield running
    stop_server(running)


def holders(server: RunningServer) -> dict[bytes, bytes]:
    """Each open web chat page (its key in Redis) → the worker process holding its socket.
    A page's holder is written just after its socket opens, and deleted when it closes."""
    client = redis.Redis(unix_socket_path=str(server.redis_socket))
    try:
        return {key: process for key in client.scan_iter("webchat:at:*") if (process := client.get(key))}
    finally:
        client.close()


Pages = list[aiohttp.ClientWebSocketResponse]


@asynccontextmanager
async def open_pages(server: RunningServer, session: aiohttp.ClientSession,
                     count: int) -> AsyncIterator[tuple[Pages, Counter[bytes]]]:
    """``count`` web chat pages opened one after another, and how many each worker holds."""
    before = holders(server)
    pages: Pages = []
    try:
        for _ in range(count):
            pages.append(await session.ws_connect(server.ws_url))
        eventually(lambda: len(holders(server).keys() - before.keys()) == count)
        held = holders(server)
        yield pages, Counter(held[key] for key in held.keys() - before.keys())
    finally:
        for page in pages:
            await page.close()


async def test_two_workers_answer_on_one_port(workers: RunningServer) -> None:
    assert "Hotline is running (2 workers)." in workers.banner
    assert len(worker_pids(workers.process.pid)) == 2
    phone = Phone(workers)
    notice, _ = await phone.text("hello")
    assert "don't need to give your name" in notice


async def test_new_connections_are_shared_out_between_the_workers_in_turn(workers: RunningServer) -> None:
    """Even while both are idle: on one listening socket, the worker that woke first took
    every connection, and a page stays with the worker that took it."""
    async with aiohttp.ClientSession() as session, open_pages(workers, session, 8) as (_, per_worker):
        assert sorted(per_worker.values()) == [4, 4]


async def test_a_responder_reaches_a_page_open_in_the_other_worker(workers: RunningServer) -> None:
    """The responder's message leaves from whichever worker's outbox takes it; the
    page's socket may be in the other one."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        responder = Staff(workers, session)
        assert (await responder.login(add_staff(workers, "night-shift", "supervisor"))).status == 200
        async with open_pages(workers, session, 2) as (pages, per_worker), \
                session.ws_connect(workers.url.replace("http", "ws") + "/console/ws") as live:
            assert sorted(per_worker.values()) == [1, 1]
            for page in pages:
                await page.send_json({"type": "message", "text": "please help, he is hitting me right now"})
                await page.receive_json(timeout=30)
                case_id = await _next_event(live, "opened")
                assert (await responder.call("POST", f"/console/api/cases/{case_id}/claim", {})).status == 200
                sent = await responder.call("POST", f"/console/api/cases/{case_id}/messages",
                                            {"text": REPLY})
                assert sent.status == 200
            for page in pages:
                while (frame := await page.receive_json(timeout=30))["text"] != REPLY:
                    pass
                assert frame["from"] == "staff"


async def test_a_killed_worker_loses_and_repeats_nothing(workers: RunningServer) -> None:
    """kill -9 a worker while people are texting. Twilio retries a request whose
    connection broke (webhook connection overrides, docs/operations.md) and so does
    this test; every message is then in its conversation exactly once, in order."""
    phones = [Phone(workers) for _ in range(6)]
    replies: dict[str, list[list[str]]] = {phone.number: [] for phone in phones}

    async def conversation(phone: Phone) -> None:
        for text in SCRIPT:
            form = twilio_form(phone.number, text)
            while True:
                try:
                    response = await phone.post(form, sign(phone.url, form))
                except aiohttp.ClientError:
                    continue  # the connection died with the worker: deliver again
                if response.status == 503:
                    await asyncio.sleep(float(response.headers["Retry-After"]) / 10)
                    continue
                assert response.status == 200
                replies[phone.number].append(messages(await response.text()))
                break

    victim = min(worker_pids(workers.process.pid))
    talking = asyncio.gather(*(conversation(phone) for phone in phones))
    await asyncio.sleep(1.0)  # mid-conversation
    os.kill(victim, signal.SIGKILL)
    await asyncio.wait_for(talking, timeout=240)
    for phone in phones:
        assert workers.said("sms", phone.number) == SCRIPT
        assert all(replies[phone.number])  # every message got its answer
    eventually(lambda: len(worker_pids(workers.process.pid)) == 2)  # started again
    assert victim not in worker_pids(workers.process.pid)


async def test_a_burst_from_one_person_is_one_turn_each_across_workers(workers: RunningServer) -> None:
    """Five texts sent at once land on both workers; the conversation's lock takes them
    one at a time, so each is one turn and none overwrites another's."""
    phone = Phone(workers)
    await phone.text("hello")
    burst = [f"message number {n}" for n in range(5)]
    answers = await asyncio.gather(*(phone.text(text) for text in burst))
    assert all(answers)
    said = workers.said("sms", phone.number)
    assert said[0] == "hello" and sorted(said[1:]) == sorted(burst)
