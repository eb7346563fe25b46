"""Typed keys for everything the application holds (``web.AppKey``, no string keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis

from bot.settings import Settings

if TYPE_CHECKING:  # imported for the annotations only: these modules import this one
    from rasa.core.agent import Agent

    from bot.conversation import Conversations
    from bot.languages import Languages
    from bot.messages import Sender
    from bot.metrics import Metrics
    from bot.outbox import Outbox
    from bot.redis_conn import RedisConnection
    from bot.responses import Responses
    from bot.server_keys import ServerKeys
    from bot.tracker_store import EncryptedRedisTrackerStore, UrlRedisLockStore
    from triage.desk import Desk

__all__ = [
    "AGENT", "CONVERSATIONS", "DESK", "LANGUAGES", "LOCKS", "METRICS", "OUTBOX", "REDIS", "REDIS_CONNECTION",
    "RESPONSES", "SENDERS", "SERVER_KEYS", "SETTINGS", "TRACKERS",
]

SETTINGS = web.AppKey("settings", Settings)
REDIS_CONNECTION: web.AppKey[RedisConnection] = web.AppKey("redis_connection")
REDIS = web.AppKey("redis", Redis)
CONVERSATIONS: web.AppKey[Conversations] = web.AppKey("conversations")
# Triage, cases, handoff and receipt codes (the console reads cases through it).
DESK: web.AppKey[Desk] = web.AppKey("desk")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SERVER_KEYS: web.AppKey[ServerKeys] = web.AppKey("server_keys")
AGENT: web.AppKey[Agent] = web.AppKey("agent")
TRACKERS: web.AppKey[EncryptedRedisTrackerStore] = web.AppKey("trackers")
# Rasa's conversation locks (the agent's), held by the message path for a whole message.
LOCKS: web.AppKey[UrlRedisLockStore] = web.AppKey("locks")
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
LANGUAGES: web.AppKey[Languages] = web.AppKey("languages")
RESPONSES: web.AppKey[Responses] = web.AppKey("responses")
# The enabled channels by name, as the core sees them: something to send through.
SENDERS: web.AppKey[Mapping[str, Sender]] = web.AppKey("senders")
