"""The priority rules: danger first, calm tone no excuse, every level explained."""

from __future__ import annotations

from typing import Any

import pytest

from bot.languages import Languages
from triage.assess import Triage
from triage.lexicon import Hit, Lexicon

PHRASES = {
    "locked in": ("indicators", "immediate_danger"), "kill myself": ("indicators", "self_harm_risk"),
    "took my passport": ("indicators", "documents_retained"), "owe them": ("indicators", "debt_bondage"),
    "no pay": ("indicators", "wages_withheld"), "cannot leave": ("indicators", "restricted_movement"),
    "15 years old": ("indicators", "minor_involved"), "i saw": ("kind", "tip"),
    "brothel": ("categories", "sexual_exploitation"), "what are my rights": ("kind", "information"),
}
TRIAGE = Triage(Lexicon((p, Hit(s, label, p, "en")) for p, (s, label) in PHRASES.items()), Languages.load())


def parse(*ranking: tuple[str, float]) -> dict[str, Any]:
    return {"intent_ranking": [{"name": n, "confidence": c} for n, c in ranking]}


@pytest.mark.parametrize(("text", "nlu", "priority", "kind"), [
    # A calm tone is no reason to lower anything.
    ("i am locked in the room, they took the key. can you send someone", parse(("ask_help", 0.7)), "P1",
     "help_request"),
    ("i want to kill myself", parse(("out_of_scope", 0.4)), "P1", "help_request"),
    # The NLU hears danger the lexicon missed, even as a second guess.
    ("he is coming back with the others", parse(("not_safe", 0.6), ("danger_now", 0.3)), "P1",
     "help_request"),
    ("they took my passport", parse(("ask_help", 0.9)), "P2", "help_request"),
    ("no pay and i cannot leave", parse(("ask_help", 0.9)), "P2", "help_request"),
    ("i saw a girl 15 years old at the brothel", parse(("give_tip", 0.8)), "P2", "tip"),
    ("no pay for two months", parse(("ask_help", 0.8)), "P3", "help_request"),
    ("can i talk to someone", parse(("talk_to_human", 0.9)), "P3", "other"),
    ("i saw something strange at the farm", parse(("give_tip", 0.9)), "P3", "tip"),
    ("what are my rights", parse(("info_rights", 0.9)), "P4", "information"),
    ("hello", parse(("greet", 0.95)), "P4", "other"),
    # Unsure between a greeting and a request for help: the request wins.
    ("hola?? ayuda", parse(("greet", 0.35), ("ask_help", 0.3)), "P3", "other"),
])
def test_priority_and_kind(text: str, nlu: dict[str, Any], priority: str, kind: str) -> None:
    record = TRIAGE.assess(text, parse=nlu)
    assert (record.priority, record.kind) == (priority, kind)
    assert record.reasons  # every level says why


def test_the_reasons_name_the_words_and_the_intent() -> None:
    record = TRIAGE.assess("they took my passport and i am locked in", parse=parse(("danger_now", 0.9)))
    assert record.indicators == ["documents_retained", "immediate_danger"]
    assert any('"locked in"' in r for r in record.reasons)
    assert any('"took my passport"' in r for r in record.reasons)
    assert record.reasons[0] == "urgent: immediate_danger"


def test_categories_follow_from_indicators() -> None:
    record = TRIAGE.assess("i am 15 years old and they took my passport")
    assert record.categories == ["child"] and record.priority == "P2"


def test_the_language_given_is_kept_and_otherwise_read() -> None:
    assert TRIAGE.assess("hello", lang="es").language == "es"
    assert TRIAGE.assess("necesito ayuda, mi jefe tiene mi pasaporte").language == "es"
