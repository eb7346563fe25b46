"""The durable outbox with the real Twilio and Telegram clients against local fakes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis
from redis.asyncio import Redis

from bot.addresses import AddressBook
from bot.background import resilient, running
from bot.crypto import Cipher
from bot.messages import Button, Outbound
from bot.metrics import Metrics
from bot.outbox import FAILED_STREAM, Outbox
from bot.settings import PROJECT_ROOT, Secret, Settings
from channels.sms import Sms
from channels.telegram import Telegram
from tests.conftest import TELEGRAM_TOKEN, TWILIO_SID, TWILIO_TOKEN, AofRedis, remember, until
from tests.fakes import Call, FakeTelegram, FakeTwilio


@dataclass
class Rig:
    outbox: Outbox
    addresses: AddressBook
    redis: Redis
    metrics: Metrics
    sms: Sms
    telegram: Telegram


@contextlib.asynccontextmanager
async def _running_outbox(client: Redis, fake_twilio: FakeTwilio, fake_telegram: FakeTelegram
                          ) -> AsyncIterator[Rig]:
    """An outbox on ``client`` with the real Twilio and Telegram clients, running as the
    server runs it (started again when Redis fails under it)."""
    cipher = Cipher({"k1": b"\x03" * 32}, "k1")
    addresses = AddressBook(client, cipher, 3600)
    sms = Sms(TWILIO_SID, Secret(TWILIO_TOKEN), "MG" + "1" * 32, "http://127.0.0.1", fake_twilio.url)
    telegram = Telegram(Secret(TELEGRAM_TOKEN), None, fake_telegram.url)
    metrics = Metrics()
    outbox = Outbox(client, cipher, addresses, {"sms": sms, "telegram": telegram}, metrics, 3600,
                    poll_seconds=0.05)
    try:
        async with running(resilient("outbox", outbox.run)):
            yield Rig(outbox, addresses, client, metrics, sms, telegram)
    finally:
        await sms.close()
        await telegram.close()


@pytest.fixture
async def rig(settings: Settings, fake_twilio: FakeTwilio, fake_telegram: FakeTelegram
              ) -> AsyncIterator[Rig]:
    fake_twilio.reset()
    fake_telegram.reset()
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url)
    await client.flushdb()
    async with _running_outbox(client, fake_twilio, fake_telegram) as running_rig:
        yield running_rig
    await client.close(close_connection_pool=True)


def metric(rig: Rig, channel: str, status: str) -> float:
    return rig.metrics.outbox.labels(channel, status)._value.get()


async def test_messages_reach_twilio_through_the_messaging_service(rig: Rig, fake_twilio: FakeTwilio) -> None:
    await remember(rig.addresses, rig.redis, "sms:a", "+14155550101")
    await rig.outbox.enqueue("sms:a", "sms", [Outbound("A responder wrote back.",
                                                       (Button("Talk", "/talk_to_human"),))])
    (call,) = await asyncio.to_thread(fake_twilio.wait_for, lambda calls: len(calls) >= 1)
    assert call.params["To"] == "+14155550101" and call.params["MessagingServiceSid"].startswith("MG")
    assert call.params["Body"] == "A responder wrote back.\n1 - Talk"
    assert call.params["account"] == TWILIO_SID and call.params["auth"].startswith("Basic ")


async def test_an_outage_delays_but_loses_and_repeats_nothing(rig: Rig, fake_twilio: FakeTwilio,
                                                              fake_telegram: FakeTelegram) -> None:
    fake_twilio.fail_next = 4
    fake_telegram.fail_next = 3
    await remember(rig.addresses, rig.redis, "sms:b", "+14155550102")
    await remember(rig.addresses, rig.redis, "telegram:c", "777")
    for n in range(5):
        await rig.outbox.enqueue("sms:b", "sms", [Outbound(f"sms {n}")])
        await rig.outbox.enqueue("telegram:c", "telegram", [Outbound(f"tg {n}")])
    sms_calls = await asyncio.to_thread(fake_twilio.wait_for, lambda calls: len(calls) >= 5)
    tg_calls = await asyncio.to_thread(
        fake_telegram.wait_for, lambda calls: len([c for c in calls if c.method == "sendMessage"]) >= 5)
    assert fake_twilio.failures_served >= 4 and fake_telegram.failures_served >= 3
    assert [c.params["Body"] for c in sms_calls] == [f"sms {n}" for n in range(5)]  # once each, in order
    assert [c.params["text"] for c in tg_calls if c.method == "sendMessage"] == [f"tg {n}" for n in range(5)]
    await until(lambda: _empty(rig.redis, "sms:b", "telegram:c"))
    assert metric(rig, "sms", "retry") >= 1 and metric(rig, "sms", "sent") == 5


async def _empty(client: Redis, *conversations: str) -> bool:
    lengths = [await client.xlen(f"outbox:q:{c}") for c in conversations]
    return not any(lengths) and await client.zcard("outbox:due") == 0


async def test_a_blocked_bot_is_a_recorded_permanent_failure(rig: Rig, fake_telegram: FakeTelegram) -> None:
    fake_telegram.blocked.add(31337)
    await remember(rig.addresses, rig.redis, "telegram:d", "31337")
    await rig.outbox.enqueue("telegram:d", "telegram", [Outbound("one"), Outbound("two")])
    await until(lambda: _failed(rig, 2))
    entries = await rig.redis.xrange(FAILED_STREAM)
    assert {e[1][b"reason"] for e in entries} == {b"telegram_forbidden"}
    assert metric(rig, "telegram", "failed") == 2 and await _empty(rig.redis, "telegram:d")


async def _failed(rig: Rig, count: int) -> bool:
    return await rig.redis.xlen(FAILED_STREAM) >= count


async def test_nothing_is_sent_after_stop(rig: Rig, fake_twilio: FakeTwilio) -> None:
    await remember(rig.addresses, rig.redis, "sms:e", "+14155550105")
    await rig.outbox.stop("sms:e")
    await rig.outbox.enqueue("sms:e", "sms", [Outbound("must not arrive")])
    await until(lambda: _empty(rig.redis, "sms:e"))
    assert metric(rig, "sms", "suppressed") == 1
    await rig.outbox.resume("sms:e")
    await rig.outbox.enqueue("sms:e", "sms", [Outbound("after START")])
    calls = await asyncio.to_thread(fake_twilio.wait_for, lambda calls: len(calls) >= 1)
    assert [c.params["Body"] for c in calls] == ["after START"]


async def test_an_unsubscribed_number_is_permanent(rig: Rig, fake_twilio: FakeTwilio) -> None:
    fake_twilio.blocked.add("+14155550106")
    await remember(rig.addresses, rig.redis, "sms:f", "+14155550106")
    await rig.outbox.enqueue("sms:f", "sms", [Outbound("hello")])
    await until(lambda: _failed(rig, 1))
    assert (await rig.redis.xrange(FAILED_STREAM))[0][1][b"reason"] == b"twilio_21610"


async def test_queued_messages_are_encrypted(rig: Rig) -> None:
    await rig.outbox.stop("sms:g")  # hold them back so they can be inspected
    await remember(rig.addresses, rig.redis, "sms:g", "+14155550107")
    async with rig.outbox.holding("sms:g"):
        await rig.outbox.enqueue("sms:g", "sms", [Outbound("Marisol is at the farm")])
        raw = b"".join(v for _, fields in await rig.redis.xrange("outbox:q:sms:g") for v in fields.values())
        address = await rig.redis.get("address:sms:g")
    assert b"Marisol" not in raw and b"4155550107" not in (address or b"")


async def test_sent_telegram_messages_are_remembered_for_deletion(rig: Rig) -> None:
    await remember(rig.addresses, rig.redis, "telegram:h", "4040")
    await rig.outbox.enqueue("telegram:h", "telegram", [Outbound("one"), Outbound("two")])
    await until(lambda: _refs(rig, "telegram:h", 2))
    assert len(await rig.addresses.refs("telegram:h")) == 2


async def _refs(rig: Rig, conversation: str, count: int) -> bool:
    return len(await rig.addresses.refs(conversation)) >= count


# A worker of another process that takes a conversation's delivery lock and keeps it.
_HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from bot.addresses import AddressBook
from bot.crypto import Cipher
from bot.metrics import Metrics
from bot.outbox import Outbox

async def hold(url, conversation):
    client = Redis.from_url(url)
    cipher = Cipher({"k1": bytes(32)}, "k1")
    outbox = Outbox(client, cipher, AddressBook(client, cipher, 60), {}, Metrics(), 60)
    async with outbox.holding(conversation):
        print("holding", flush=True)
        await asyncio.Event().wait()

asyncio.run(hold(*sys.argv[1:]))
"""


async def test_a_delivery_lock_left_by_a_killed_process_is_freed_within_seconds(
        rig: Rig, settings: Settings, fake_twilio: FakeTwilio) -> None:
    """A worker killed mid-delivery leaves its conversation's lock, with a 60 s lease. A
    process of the same machine sees that its holder is gone and sends at once; a live
    holder's lock, and one held on another machine, are left alone."""
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", _HOLDER, str(settings.redis_url),
                                                  "sms:k", stdout=asyncio.subprocess.PIPE, cwd=PROJECT_ROOT)
    try:
        assert holder.stdout is not None and await holder.stdout.readline() == b"holding\n"
        await remember(rig.addresses, rig.redis, "sms:k", "+14155550111")
        await rig.outbox.enqueue("sms:k", "sms", [Outbound("Are you still there?")])
        assert await rig.outbox.free_locks_of_dead(["sms:k"]) == 0  # its holder lives
    finally:
        holder.kill()
        await holder.wait()
    elsewhere = f"another-machine|pid:[1]|{holder.pid}|0123456789abcdef"  # machine|namespace|pid|random
    await rig.redis.set("outbox:lock:sms:m", elsewhere, px=60_000)
    assert await rig.outbox.free_locks_of_dead(["sms:m"]) == 0  # its processes cannot be seen from here
    (call,) = await asyncio.to_thread(fake_twilio.wait_for, lambda calls: len(calls) >= 1, timeout=15)
    assert call.params["Body"] == "Are you still there?"


async def test_a_message_taken_while_redis_restarts_is_sent_once(fake_twilio: FakeTwilio,
                                                                fake_telegram: FakeTelegram) -> None:
    """The Bot API takes a message, and before its answer arrives Redis restarts (on
    its AOF, as a failover or an upgrade does). The outbox's polling fails meanwhile;
    the delivery in flight must still be recorded, not cancelled and sent again."""
    fake_telegram.reset()
    server = AofRedis()
    client = Redis.from_url(server.url)

    def restart_redis(call: Call) -> None:  # in the fake's thread: its answer waits
        if call.method == "sendMessage" and call.params["text"] == "first":
            server.restart(down_seconds=1.0)

    async def delivered() -> bool:
        try:
            return await _empty(client, "telegram:r")
        except redis.RedisError:  # still restarting
            return False

    fake_telegram.listeners.append(restart_redis)
    try:
        async with _running_outbox(client, fake_twilio, fake_telegram) as restarting:
            await remember(restarting.addresses, restarting.redis, "telegram:r", "778")
            await restarting.outbox.enqueue("telegram:r", "telegram", [Outbound("first"), Outbound("second")])
            await until(delivered)
        texts = [c.params["text"] for c in fake_telegram.calls if c.method == "sendMessage"]
        assert texts == ["first", "second"]  # once each, in order
    finally:
        fake_telegram.listeners.remove(restart_redis)
        await client.close(close_connection_pool=True)
        server.stop()
