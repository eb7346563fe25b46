"""The in-process agent: actions without an action server, and a refusal to run unsafely."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore

from bot.agent import InProcessActionEndpoint, StartupError, load_agent
from bot.responses import Responses
from bot.settings import Settings
from bot.training import model_path


async def test_a_custom_action_runs_in_this_process() -> None:
    endpoint = InProcessActionEndpoint()
    tracker = {"sender_id": "webchat:x", "slots": {}, "latest_message": {}, "events": [],
               "paused": False, "followup_action": None, "active_loop": {},
               "latest_action_name": None}
    response = await endpoint.request(json={"next_action": "action_talk_to_human", "tracker": tracker})
    assert response["responses"][0]["response"] == "utter_talk_to_human"
    assert response["events"][0]["name"] == "wants_human" and response["events"][0]["value"] is True


async def test_an_agent_without_the_encrypted_store_is_refused(model_settings: Settings) -> None:
    model: Path = model_path(model_settings)
    with pytest.raises(StartupError, match="not the encrypted Redis store"):
        await load_agent(model, InMemoryTrackerStore(None), InMemoryLockStore(),  # type: ignore[arg-type]
                         Responses.load())


def test_telemetry_is_off_before_rasa_can_send_anything() -> None:
    import rasa.telemetry

    assert rasa.telemetry.is_telemetry_enabled() is False
