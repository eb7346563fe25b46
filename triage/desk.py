"""What happens around the bot: every message triaged, cases opened, urgent ones
handed to a person, receipt codes given and honoured.

:class:`bot.conversation.Conversations` calls the desk at three points of a turn
(docs/triage.md, "Handoff"):

- :meth:`Desk.enter_code` / :meth:`Desk.receipt_button`: a receipt code or its
  buttons, never seen by the bot;
- :meth:`Desk.before_bot`: a conversation that a person owns is relayed to them
  and the bot stays silent; P1 or a request for a person opens the case and hands
  it off instead of letting the bot answer;
- :meth:`Desk.after_bot`: the bot answered; a case opens at P3 or above, learns
  the answers given, and gets a receipt code when the person has told their story.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.responses import Responses
from triage.assess import Triage, TriageRecord
from triage.cases import WAIT_TARGETS, Case, CaseStore, Entry, Sender, rank
from triage.presence import Presence
from triage.receipts import CODE_SHOWN, WRONG_WINDOW_SECONDS, Receipts, formatted

__all__ = ["RECEIPT_BUTTONS", "ConversationView", "Desk", "Say"]

# What each reading of a message tells the responder the person asked for.
REQUESTS = {
    "ask_help": "help", "danger_now": "help now", "give_tip": "to report something",
    "talk_to_human": "a person", "not_safe": "not safe to talk", "info_rights": "their rights",
    "info_services": "services", "info_how_it_works": "how this works", "ask_info": "information",
    "job_offer_check": "a job offer check", "delete_data": "to delete their data",
}
# The answers the responder should not have to ask again.
ANSWERS = ("safe_to_talk", "work", "documents", "debt", "movement", "threats", "age",
           "tip_what", "tip_where", "tip_when", "tip_people", "tip_minors")
# The bot has heard the whole story when it says one of these.
TOLD = frozenset({"utter_help_done", "utter_tip_done"})
RECEIPT_KINDS = frozenset({"help_request", "tip"})
RECEIPT_BUTTONS = frozenset({"/receipt_saved", "/receipt_drop", "/receipt_done"})
RECEIPT_GIVEN = f"{CODE_SHOWN} given"
STAFF_REPLIES_SHOWN = 3
_STATUS_WORD = re.compile(r"^\W*/?status\b", re.IGNORECASE)
_ADDED_WORDS = 3  # "STATUS <code> the van is blue": more than a keyword, added to the report


@dataclass(frozen=True)
class Say:
    """A service message to send: a response name and the values it needs."""

    name: str
    values: Mapping[str, str] = field(default_factory=dict)


class ConversationView(Protocol):
    """What the desk reads of the bot's conversation (the Rasa tracker)."""

    async def history(self) -> list[tuple[str, str, float]]:
        """(``person``|``bot``, text, time) for every message so far."""
        ...

    async def slots(self) -> Mapping[str, Any]: ...

    async def last_actions(self) -> set[str]:
        """The actions the bot ran for the latest message."""
        ...


class Desk:
    def __init__(self, triage: Triage, cases: CaseStore, receipts: Receipts, presence: Presence,
                 responses: Responses, *, follow_up_hours: int) -> None:
        self.triage = triage
        self._responses = responses
        self.cases = cases
        self.receipts = receipts
        self.presence = presence
        self._follow_up_hours = follow_up_hours

    def assess(self, text: str, language: str, parse: Mapping[str, Any]) -> TriageRecord:
        return self.triage.assess(text, lang=language, parse=parse)

    async def enter_code(self, conversation: str, code: str, text: str, record: TriageRecord) -> list[Say]:
        """Someone came back with a receipt code: the staff replies, and a while to
        add to the report. Nothing links this conversation to the case for longer."""
        check = await self.receipts.check(conversation, code)
        if check.limited:
            return [Say("utter_status_limited", {"minutes": str(WRONG_WINDOW_SECONDS // 60)})]
        case = await self.cases.get(check.case_id) if check.case_id else None
        if case is None or case.withdrawn:
            return [Say("utter_status_unknown")]
        await self.receipts.attach(conversation, case.id)
        added = _STATUS_WORD.sub("", text.replace(CODE_SHOWN, " ")).split()
        if len(added) >= _ADDED_WORDS:
            await self._add(case, text, record)
        replies = [e.text for e in await self.cases.transcript(case.id) if e.sender == "staff"]
        if not replies:
            return [Say("utter_status_no_reply")]
        shown = "\n".join(f"— {reply}" for reply in replies[-STAFF_REPLIES_SHOWN:])
        return [Say("utter_status_replies", {"replies": shown})]

    async def receipt_button(self, conversation: str, payload: str) -> list[Say]:
        if payload == "/receipt_done":
            await self.receipts.detach(conversation)
            return [Say("utter_status_done")]
        case = await self.cases.of_conversation(conversation)
        if payload == "/receipt_drop" and case is not None:
            await self.receipts.revoke(case.receipt)
            await self.cases.set_receipt(case.id, "")
            return [Say("utter_receipt_dropped")]
        return [Say("utter_receipt_saved")]

    async def before_bot(self, conversation: str, case: Case | None, attached: str | None, channel: str,
                         language: str, text: str, record: TriageRecord, parse: Mapping[str, Any],
                         view: ConversationView) -> list[Say] | None:
        """Answer instead of the bot, or None to let the bot answer. ``case`` is the
        conversation's own case, if it has one; ``attached`` the case its receipt
        code opened, if any (both read before the turn: ``Receipts.attached_in``)."""
        report = await self.cases.get(attached) if attached else None
        if report is not None and not report.withdrawn:
            await self._add(report, text, record)
            return [Say("utter_status_added")]
        said = _entry("person", text)
        if case is not None and case.paused:
            await self.cases.relay(case.id, [said])
            await self.cases.note(case.id, record, asked_for=_asked(parse))
            return []  # a person owns this conversation: the bot says nothing
        wants_person = (parse.get("intent") or {}).get("name") == "talk_to_human"
        if record.priority != "P1" and not wants_person:
            return None
        if case is None:
            history = [*await _history(view), said]
            case = await self.cases.open(conversation, channel, language, record, history)
        else:
            await self.cases.append(case.id, [said])
        case = await self.cases.note(case.id, record, asked_for=_asked(parse),
                                     answers=_answers(await view.slots()))
        case = await self.cases.hand_off(case.id)
        says = [await self._handoff_message(case)]
        if case.priority != "P1":  # in an emergency, one message, nothing to keep
            says += await self._receipt(case)
        await self._said(case, says)
        return says

    async def after_bot(self, conversation: str, case: Case | None, channel: str, language: str,
                        record: TriageRecord, parse: Mapping[str, Any], view: ConversationView) -> list[Say]:
        """The bot answered: keep the case up to date, open it if this message made
        one, and give a receipt code once the story is told. ``case`` is the one
        :meth:`before_bot` was given (only the desk opens cases, and opening is
        idempotent)."""
        said: list[Entry] = []
        if case is None:
            if rank(record.priority) > 3:
                return []
            case = await self.cases.open(conversation, channel, language, record, await _history(view))
        else:
            history = await _history(view)
            turn = max((i for i, e in enumerate(history) if e.sender == "person"), default=len(history))
            said = history[turn:]
        case = await self.cases.note(case.id, record, asked_for=_asked(parse),
                                     answers=_answers(await view.slots()), said=said, known=case)
        says: list[Say] = []
        if await view.last_actions() & TOLD:
            says = await self._receipt(case)
            await self._said(case, says)
        return says

    async def withdraw(self, conversation: str) -> None:
        """Delete my data: the case keeps only a tombstone, the code stops working."""
        await self.receipts.detach(conversation)
        case = await self.cases.of_conversation(conversation)
        if case is not None:
            await self.receipts.revoke(case.receipt)
        await self.cases.withdraw(conversation)

    async def _add(self, case: Case, text: str, record: TriageRecord) -> None:
        await self.cases.relay(case.id, [_entry("person", text, via="receipt")])
        await self.cases.note(case.id, record, reopen=True)  # new information is for a responder

    async def _handoff_message(self, case: Case) -> Say:
        if not await self.presence.anyone_online():
            return Say("utter_after_hours", {"hours": str(self._follow_up_hours)})
        name = "utter_handoff_danger" if case.priority == "P1" else "utter_handoff"
        return Say(name, {"minutes": str(WAIT_TARGETS[case.priority] // 60)})

    async def _receipt(self, case: Case) -> list[Say]:
        """A code, once per case, for help requests and tips."""
        if case.receipt or case.kind not in RECEIPT_KINDS:
            return []
        code, key = await self.receipts.issue(case.id)
        await self.cases.set_receipt(case.id, key, known=case)
        return [Say("utter_receipt", {"code": formatted(code)})]

    async def _said(self, case: Case, says: list[Say]) -> None:
        """Service messages in the transcript as the person read them; a code only as
        "given"."""
        await self.cases.append(case.id, [_entry("bot", RECEIPT_GIVEN if say.name == "utter_receipt" else
                                                 self.render(say, case.language, case.channel)["text"])
                                          for say in says])

    def render(self, say: Say, language: str, channel: str) -> dict[str, Any]:
        return self._responses.render(say.name, language, channel, **say.values)


def _entry(sender: Sender, text: str, via: str = "") -> Entry:
    return Entry(at=time.time(), sender=sender, text=text, via=via)


async def _history(view: ConversationView) -> list[Entry]:
    return [Entry(at, sender, text) for sender, text, at in await view.history()]  # type: ignore[arg-type]


def _asked(parse: Mapping[str, Any]) -> list[str]:
    intent = (parse.get("intent") or {}).get("name", "")
    return [REQUESTS[intent]] if intent in REQUESTS else []


def _answers(slots: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(slots[name]) for name in ANSWERS if slots.get(name) is not None}
