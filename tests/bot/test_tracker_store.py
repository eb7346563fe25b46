from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis

from bot.crypto import Cipher, DecryptionError
from bot.settings import Settings
from bot.tracker_store import EncryptedRedisTrackerStore, UrlRedisLockStore
from tests.conftest import until


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    yield redis
    await redis.close(close_connection_pool=True)


def store(client: Redis, ttl: int = 600) -> EncryptedRedisTrackerStore:
    return EncryptedRedisTrackerStore(None, client, Cipher({"k1": b"\x02" * 32}, "k1"), ttl)


async def test_a_tracker_is_stored_encrypted_with_a_ttl_and_read_back(client: Redis) -> None:
    trackers = store(client, ttl=600)
    tracker = DialogueStateTracker("webchat:abc", slots=[])
    tracker.update(UserUttered("my boss took my passport"))
    await trackers.save(tracker)

    raw = await client.get("tracker:webchat:abc")
    assert raw is not None and b"passport" not in raw and raw[2:4] == b"k1"
    assert 0 < await client.ttl("tracker:webchat:abc") <= 600
    restored = await trackers.retrieve("webchat:abc")
    assert restored is not None
    assert restored.latest_message is not None and restored.latest_message.text == "my boss took my passport"
    assert "webchat:abc" in await trackers.keys()


async def test_any_script_and_numpy_numbers_read_back_and_older_json_trackers_too(client: Redis) -> None:
    trackers = store(client)
    said = "ساعدني، أخذوا جوازي 他们拿走了我的护照"
    tracker = DialogueStateTracker("sms:abc", slots=[])
    tracker.update(UserUttered(said, {"name": "ask_help", "confidence": np.float64(0.875)}))
    await trackers.save(tracker)
    restored = await trackers.retrieve("sms:abc")
    assert restored is not None and restored.latest_message is not None
    assert restored.latest_message.text == said
    assert restored.latest_message.intent == {"name": "ask_help", "confidence": 0.875}
    # A tracker saved before (Rasa's json.dumps: non-ASCII escaped), sealed the same way.
    written = json.dumps(tracker.as_dialogue().as_dict()).encode()
    assert said.encode() not in written
    sealed = Cipher({"k1": b"\x02" * 32}, "k1").encrypt(written, b"tracker:sms:before")
    await client.set("tracker:sms:before", sealed)
    before = await trackers.retrieve("sms:before")
    assert before is not None and before.events == restored.events


async def test_a_tracker_copied_under_another_conversation_is_not_readable(client: Redis) -> None:
    trackers = store(client)
    tracker = DialogueStateTracker("webchat:one", slots=[])
    tracker.update(UserUttered("hello"))
    await trackers.save(tracker)
    await client.set("tracker:webchat:two", await client.get("tracker:webchat:one"))
    with pytest.raises(DecryptionError):
        await trackers.retrieve("webchat:two")


async def test_delete_erases_the_tracker(client: Redis) -> None:
    trackers = store(client)
    await trackers.save(DialogueStateTracker("webchat:gone", slots=[]))
    await trackers.delete("webchat:gone")
    assert await trackers.retrieve("webchat:gone") is None


async def test_the_tracker_just_saved_is_handed_over_once(client: Redis) -> None:
    trackers = store(client)
    tracker = DialogueStateTracker("sms:once", slots=[])
    await trackers.save(tracker)
    assert trackers.take_saved("sms:once") is tracker  # no second read, decryption and replay
    assert trackers.take_saved("sms:once") is None  # and nothing is kept after that
    await trackers.save(tracker)
    await trackers.delete("sms:once")
    assert trackers.take_saved("sms:once") is None


async def test_a_tracker_saved_while_staging_is_written_only_with_the_transaction(client: Redis) -> None:
    """A message's turn is written with its replies or not at all (bot/conversation.py)."""
    trackers = store(client)
    tracker = DialogueStateTracker("sms:staged", slots=[])
    tracker.update(UserUttered("they kept my wages"))
    with trackers.staging() as staged:
        await trackers.save(tracker)
        assert await client.get("tracker:sms:staged") is None  # not yet in Redis
        seen_here = await trackers.retrieve("sms:staged")  # but the turn reads its own write
        assert seen_here is not None and seen_here.latest_message is not None
    assert await client.get("tracker:sms:staged") is None  # a crash here: nothing was written
    with trackers.staging() as staged:
        await trackers.save(tracker)
        async with client.pipeline(transaction=True) as pipe:
            trackers.write_staged(staged, pipe)
            await pipe.execute()
    restored = await store(client).retrieve("sms:staged")
    assert restored is not None and restored.latest_message is not None
    assert restored.latest_message.text == "they kept my wages"


async def test_a_tracker_read_ahead_is_not_read_again(client: Redis) -> None:
    """A message reads its tracker with its other keys (bot/conversation.py); Rasa's
    read of it then takes that copy, and a deletion in the turn still wins."""
    trackers = store(client)
    tracker = DialogueStateTracker("sms:ahead", slots=[])
    tracker.update(UserUttered("first words"))
    await trackers.save(tracker)
    read = await client.get(trackers.key("sms:ahead"))
    tracker.update(UserUttered("written behind the turn's back"))
    await trackers.save(tracker)  # cannot happen under the conversation's lock; shows the source
    with trackers.staging(read={"sms:ahead": read, "sms:none": None}):
        ahead = await trackers.retrieve("sms:ahead")
        assert ahead is not None and ahead.latest_message.text == "first words"  # type: ignore[union-attr]
        assert await trackers.retrieve("sms:none") is None  # read ahead: it has none
        await trackers.delete("sms:ahead")
        assert await trackers.retrieve("sms:ahead") is None
    await trackers.save(tracker)
    latest = await trackers.retrieve("sms:ahead")  # outside the block: read from Redis
    assert latest is not None and latest.latest_message.text == "written behind the turn's back"  # type: ignore[union-attr]


def test_tickets_taken_at_once_by_many_processes_are_all_different(settings: Settings) -> None:
    """Rasa's own store reads, changes and writes the lock back: two processes could
    be given the same ticket and both run the conversation at once."""
    assert settings.redis_url is not None
    stores = [UrlRedisLockStore(settings.redis_url, Redis.from_url(settings.redis_url)) for _ in range(8)]
    with ThreadPoolExecutor(len(stores)) as pool:
        tickets = list(pool.map(lambda s: [s.issue_ticket("sms:busy", 60) for _ in range(25)], stores))
    taken = [t for batch in tickets for t in batch]
    assert len(set(taken)) == len(taken) == 200
    for batch in tickets:
        for ticket in batch:
            stores[0].cleanup("sms:busy", ticket)
    assert stores[0].get_lock("sms:busy") is None
    for each in stores:
        each.close()


async def test_a_holder_keeps_the_conversation_and_a_dead_one_lets_it_go(settings: Settings) -> None:
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url)
    locks = UrlRedisLockStore(settings.redis_url, client)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, wait: bool) -> None:
        async with locks.holding("webchat:queue", lifetime=0.3, poll_seconds=0.01):
            order.append(name)
            if wait:
                await release.wait()

    first = asyncio.create_task(hold("first", wait=True))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(hold("second", wait=False))
    # Five lifetimes later the first still holds it: its ticket is kept alive.
    assert (await asyncio.wait({second}, timeout=1.5))[0] == set()
    assert order == ["first"]
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]

    locks.issue_ticket("webchat:dead", 0.3)  # a process took a ticket, then was killed
    async with locks.holding("webchat:dead", lifetime=0.3, poll_seconds=0.01):
        order.append("after the dead one")
    assert order[-1] == "after the dead one"
    locks.close()
    await client.close(close_connection_pool=True)


async def test_reads_sent_with_the_ticket_are_fresh_only_for_the_first_in_line(settings: Settings) -> None:
    """A message's reads go with its ticket's taking: what they read holds only if no
    one was ahead; one that waited must read again, after the one ahead wrote."""
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url)
    locks = UrlRedisLockStore(settings.redis_url, client)
    await client.set("turns:webchat:line", 0)
    release, seen = asyncio.Event(), []

    async def turn(hold: bool) -> None:
        async with locks.holding("webchat:line", lifetime=5, poll_seconds=0.01,
                                 reads=lambda pipe: pipe.get("turns:webchat:line")) as held:
            seen.append((int(held.replies[0]), held.fresh))
            if hold:
                await release.wait()
            await client.incr("turns:webchat:line")

    async def tickets(count: int) -> bool:
        raw = await client.get("lock:webchat:line")
        return raw is not None and len(json.loads(raw)["tickets"]) == count

    first = asyncio.create_task(turn(hold=True))
    await until(lambda: tickets(1))
    second = asyncio.create_task(turn(hold=False))
    await until(lambda: tickets(2))  # the second is in line
    release.set()
    await asyncio.gather(first, second)
    assert seen == [(0, True), (0, False)]  # the second read 0 too early: it knows it
    async with locks.holding("webchat:line", lifetime=5, poll_seconds=0.01,
                             reads=lambda pipe: pipe.get("turns:webchat:line")) as held:
        assert (held.replies, held.fresh) == ([b"2"], True)
    locks.close()
    await client.close(close_connection_pool=True)


async def test_a_turn_given_back_with_the_commit_is_free_at_once_and_always_freed(settings: Settings) -> None:
    """A message gives its conversation's turn back in the transaction that commits it:
    the next message may go as soon as it commits, with no round trip after it. A block
    that fails once it queued the give-back still gives the turn back."""
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url)
    locks = UrlRedisLockStore(settings.redis_url, client)

    async def changes_after() -> int:  # the lock's own changes run EVALSHA; the give-back, EVAL
        return int((await client.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0))

    async with locks.holding("webchat:give", lifetime=30, poll_seconds=0.01) as held:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set("said:webchat:give", "hello")
            held.give_back_in(pipe)
            await pipe.execute()
        assert await client.get("lock:webchat:give") is None  # free before the block ends
        before = await changes_after()
    assert await changes_after() == before
    with pytest.raises(RuntimeError):
        async with locks.holding("webchat:give", lifetime=30, poll_seconds=0.01) as held:
            held.give_back_in(client.pipeline(transaction=True))
            raise RuntimeError("the transaction never ran")
    assert await client.get("lock:webchat:give") is None  # not held for its 30 s
    locks.close()
    await client.close(close_connection_pool=True)
