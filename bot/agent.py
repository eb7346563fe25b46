"""The Rasa agent, in-process: model, encrypted tracker store, Redis locks, actions.

No Rasa HTTP server and no action server run: the aiohttp app calls
``Agent.handle_message`` directly, and custom actions run through rasa_sdk's
``ActionExecutor`` called by :class:`InProcessActionEndpoint`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from rasa.core.agent import Agent
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

import bot.actions
import bot.rasa_fixes  # applies its fixes to Rasa before the model loads
from bot.keys import (
    AGENT,
    LANGUAGES,
    LOCKS,
    REDIS,
    REDIS_CONNECTION,
    RESPONSES,
    SERVER_KEYS,
    SETTINGS,
    TRACKERS,
)
from bot.languages import Languages
from bot.responses import LocalizedNLG, Responses
from bot.settings import Settings
from bot.tracker_store import EncryptedRedisTrackerStore, UrlRedisLockStore
from bot.training import model_path

__all__ = ["InProcessActionEndpoint", "StartupError", "agent_ctx", "current_model", "load_agent"]

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The agent cannot serve safely; the server must not start."""


class InProcessActionEndpoint(EndpointConfig):
    """An action "endpoint" whose request runs the action in this process."""

    def __init__(self) -> None:
        # Selective domain: Rasa then sends the domain only to actions that ask for
        # it, instead of serialising the whole domain on every action call.
        super().__init__(url="in-process://actions", enable_selective_domain=True)
        self._executor = ActionExecutor()
        self._executor.register_package(bot.actions)

    async def request(self, method: str = "post", subpath: str | None = None,
                      content_type: str | None = "application/json",
                      compress: bool = False, **kwargs: Any) -> Any:
        try:
            return await self._executor.run(kwargs["json"])
        except (ActionNotFoundException, ActionExecutionRejection) as exc:
            raise RasaException(f"custom action failed: {exc}") from exc


def current_model(settings: Settings) -> Path:
    """The model trained from the data and config as they are now, never a stale one."""
    path = model_path(settings)
    if not path.exists():
        raise StartupError(
            f"no model trained from the current data in {settings.model_dir}; run: hotline train"
        )
    return path


async def load_agent(model: Path, tracker_store: EncryptedRedisTrackerStore,
                     lock_store: UrlRedisLockStore, responses: Responses) -> Agent:
    agent = await asyncio.to_thread(
        Agent.load, str(model), tracker_store=tracker_store, lock_store=lock_store,
        action_endpoint=InProcessActionEndpoint(), generator=LocalizedNLG(responses),
    )
    # Rasa wraps the store in a FailSafeTrackerStore and, when a configured store
    # does not load, silently falls back to memory: unencrypted and lost on exit.
    store = agent.tracker_store
    inner = store._tracker_store if isinstance(store, FailSafeTrackerStore) else store
    if not isinstance(inner, EncryptedRedisTrackerStore):
        raise StartupError(f"the tracker store is {type(inner).__name__}, not the encrypted Redis store")
    if not agent.is_ready():
        raise StartupError(f"the model {model.name} did not load")
    return agent


async def agent_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    model = current_model(settings)
    tracker_store = EncryptedRedisTrackerStore(
        None, app[REDIS], app[SERVER_KEYS].cipher(), settings.tracker_ttl_seconds
    )
    lock_store = UrlRedisLockStore(app[REDIS_CONNECTION].url, app[REDIS])
    app[RESPONSES] = Responses.load()
    app[LANGUAGES] = await asyncio.to_thread(Languages.load)
    app[AGENT] = await load_agent(model, tracker_store, lock_store, app[RESPONSES])
    app[TRACKERS] = tracker_store
    app[LOCKS] = lock_store
    log.info("model loaded", extra={"model": model.name})
    # The model is half a million objects that live as long as the process. Left to the
    # collector, each full collection walks them all: a 300 ms pause, every few hundred
    # turns, for every conversation in flight. Frozen, they are skipped (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()  # the model can be freed with the app (tests start many)
    lock_store.close()
