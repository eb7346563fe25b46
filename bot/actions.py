"""Custom Rasa actions, run in-process by :class:`bot.agent.InProcessActionEndpoint`."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, AllSlotsReset, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

__all__ = ["ActionStop", "ActionTalkToHuman"]


class ActionSessionStart(Action):
    """Open every conversation with the confidentiality notice, whatever the first
    message is: someone may start with "they took my passport", not "hello", and
    must still learn first that no name is needed and nobody is told without
    consent (docs/conversation-design.md, R10 and R11)."""

    def name(self) -> str:
        return "action_session_start"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_greet")
        # Carry the slots over, as Rasa's own session start does.
        carried = [SlotSet(name, value) for name, value in tracker.slots.items() if value is not None]
        return [SessionStarted(), *carried, ActionExecuted("action_listen")]


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
