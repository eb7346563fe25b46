"""The path of one inbound message, after its channel has checked and parsed it."""

from __future__ import annotations

import time

from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.identity import conversation_id
from bot.messages import Inbound, Outbound
from bot.metrics import Metrics
from bot.tracker_store import EncryptedRedisTrackerStore

__all__ = ["ERASED_TEXT", "Conversations"]

ERASED_TEXT = "This conversation has been deleted. Write again whenever you want to start over."


class Conversations:
    """Pseudonymise the address, then let the Rasa agent answer."""

    def __init__(self, agent: Agent, tracker_store: EncryptedRedisTrackerStore,
                 pseudonym_key: bytes, metrics: Metrics) -> None:
        self._agent = agent
        self._trackers = tracker_store
        self._pseudonym_key = pseudonym_key
        self._metrics = metrics

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        sender_id = conversation_id(self._pseudonym_key, inbound.channel, inbound.address)
        self._metrics.messages.labels(inbound.channel).inc()
        if inbound.command == "delete":
            await self._trackers.delete(sender_id)
            self._metrics.erasures.labels(inbound.channel).inc()
            return [Outbound(text=ERASED_TEXT)]
        started = time.perf_counter()
        collector = CollectingOutputChannel()
        await self._agent.handle_message(
            UserMessage(
                text=inbound.text,
                output_channel=collector,
                sender_id=sender_id,
                input_channel=inbound.channel,
                metadata=dict(inbound.hints),
            )
        )
        self._metrics.turn_seconds.labels(inbound.channel).observe(time.perf_counter() - started)
        return [Outbound.from_rasa(message, lang="en") for message in collector.messages]
