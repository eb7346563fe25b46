"""Custom Rasa actions, run in-process by :class:`bot.agent.InProcessActionEndpoint`."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import AllSlotsReset, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

__all__ = ["ActionStop", "ActionTalkToHuman"]


class ActionTalkToHuman(Action):
    """Record that the person asked for a person and tell them what happens next."""

    def name(self) -> str:
        return "action_talk_to_human"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_talk_to_human")
        return [SlotSet("wants_human", True)]


class ActionStop(Action):
    """Stop politely and forget the answers given so far in this session."""

    def name(self) -> str:
        return "action_stop"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_stop")
        return [AllSlotsReset()]
