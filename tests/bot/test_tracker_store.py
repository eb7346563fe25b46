from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis

from bot.crypto import Cipher, DecryptionError
from bot.settings import Settings
from bot.tracker_store import EncryptedRedisTrackerStore


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
