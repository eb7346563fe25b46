"""A message's triage record: language, priority, kind, categories, indicators, reasons.

Two readings are combined: the lexicons (:mod:`triage.lexicon`) and, when given, the
Rasa NLU parse of the same text. The rules (docs/triage.md) err toward urgency:

- P1 when anything reads as danger now (an urgent indicator, the NLU's
  ``danger_now`` among its top intents with even modest confidence, or a cry for
  help of three words or fewer);
- P2 for clear indicators (documents, debt, two or more indicators, a minor with
  exploitation, a tip about minors);
- P3 for any weaker sign, or a request for help or for a person;
- P4 otherwise. A question (information) with indicators is never lower than P3.

Every level says why in ``reasons``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.languages import Languages
from bot.segment import count_words
from triage.lexicon import NOW, Hit, Lexicon

__all__ = ["Triage", "TriageRecord"]

Priority = Literal["P1", "P2", "P3", "P4"]
Kind = Literal["help_request", "tip", "information", "other"]

URGENT = frozenset({"immediate_danger", "self_harm_risk", "medical_need"})
VIOLENCE = frozenset({"physical_violence", "sexual_violence"})
HARM = VIOLENCE | {"threats"}
CLEAR = frozenset({"documents_retained", "debt_bondage"})
DERIVED_CATEGORY = {
    "minor_involved": "child", "self_harm_risk": "self_harm", "medical_need": "medical",
    "physical_violence": "violence", "sexual_violence": "violence", "debt_bondage": "debt_bondage",
}
HELP_INTENTS = frozenset({"ask_help", "danger_now", "not_safe"})
INFO_INTENTS = frozenset({"ask_info", "info_rights", "info_services", "info_how_it_works", "job_offer_check"})
CASE_INTENTS = frozenset({"ask_help", "give_tip", "talk_to_human", "not_safe"})
# Danger read by the NLU at this confidence, even as a second guess, is P1: a missed
# emergency costs far more than a responder reading a calm message early.
DANGER_CONFIDENCE = 0.2
SURE = 0.5
# "help", "sos", "ayuda por favor": nothing in so few words says it is not an emergency.
SHORT_CRY = 3
CRY_INTENTS = frozenset({"ask_help", "danger_now", "not_safe"})  # "help", "sos", "he is here"


@dataclass(frozen=True)
class TriageRecord:
    language: str
    priority: Priority
    kind: Kind
    categories: list[str] = field(default_factory=list)
    indicators: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"language": self.language, "priority": self.priority, "kind": self.kind,
                "categories": self.categories, "indicators": self.indicators, "reasons": self.reasons}


class Triage:
    def __init__(self, lexicon: Lexicon, languages: Languages) -> None:
        self._lexicon = lexicon
        self._languages = languages

    def assess(self, text: str, *, lang: str | None = None, hints: Mapping[str, str] | None = None,
               parse: Mapping[str, Any] | None = None) -> TriageRecord:
        hits = self._lexicon.match(text)
        indicators = sorted({h.label for h in hits if h.section == "indicators"})
        categories = sorted({h.label for h in hits if h.section == "categories"}
                            | {DERIVED_CATEGORY[i] for i in indicators if i in DERIVED_CATEGORY})
        markers = {h.label for h in hits if h.section in ("kind", NOW)}
        ranking = {r["name"]: float(r["confidence"]) for r in (parse or {}).get("intent_ranking") or ()}
        top, confidence = max(ranking.items(), key=lambda kv: kv[1], default=("", 0.0))
        reasons = [h.reason for h in _ordered(hits) if h.section not in ("kind", NOW)]

        kind = _kind(indicators, markers, top)
        priority, why = _priority(set(indicators), categories, kind, ranking, top, confidence,
                                  now=NOW in markers, short=count_words(text) <= SHORT_CRY)
        if priority == "P1" and kind in ("information", "other"):
            kind = "help_request"  # danger is never a mere question
        return TriageRecord(
            language=self._language(text, lang, hints), priority=priority, kind=kind,
            categories=categories, indicators=indicators, reasons=why + reasons,
        )

    def _language(self, text: str, lang: str | None, hints: Mapping[str, str] | None) -> str:
        if lang and lang in self._languages:
            return lang
        reading = self._languages.detect(text, hints)
        return reading.code if reading else "en"


def _kind(indicators: list[str], markers: set[str], top: str) -> Kind:
    """A witness about others, the writer's own situation, a question, or other."""
    asks = "information" in markers or top in INFO_INTENTS
    if "information" in markers and top in INFO_INTENTS:
        return "information"  # "is it legal that the agency keeps my passport?"
    if "tip" in markers or (top == "give_tip" and not (asks and not indicators)):
        return "tip"
    if indicators or top in HELP_INTENTS:
        return "help_request"
    return "information" if asks else "other"


def _priority(indicators: set[str], categories: list[str], kind: Kind, ranking: Mapping[str, float],
              top: str, confidence: float, *, now: bool, short: bool) -> tuple[Priority, list[str]]:
    danger = ranking.get("danger_now", 0.0)
    sectors = set(categories) - {"child"}
    if short and top in CRY_INTENTS:
        return "P1", [f"a short cry for help (intent {top} {confidence:.2f})"]
    if indicators & URGENT:
        return "P1", [f"urgent: {', '.join(sorted(indicators & URGENT))}"]
    if danger >= DANGER_CONFIDENCE:
        return "P1", [f"intent danger_now ({danger:.2f})"]
    if "minor_involved" in indicators and indicators & VIOLENCE:
        return "P1", ["a child and violence"]
    if now and "minor_involved" in indicators and (len(indicators) > 1 or kind == "tip"):
        return "P1", ["a child in danger, now"]
    if now and indicators & HARM:
        return "P1", [f"{', '.join(sorted(indicators & HARM))}, now"]
    if indicators & CLEAR:
        return "P2", [f"clear indicator: {', '.join(sorted(indicators & CLEAR))}"]
    exploited = len(indicators) > 1 or sectors or kind == "tip"
    if "minor_involved" in indicators and exploited:
        return "P2", ["a minor, with signs of exploitation"]
    if len(indicators) >= 2:
        return "P2", [f"{len(indicators)} indicators"]
    if indicators or (sectors and top in CASE_INTENTS):
        return "P3", ["a weaker sign of exploitation"]
    if top in CASE_INTENTS:
        return "P3", [f"intent {top} ({confidence:.2f})"]
    if confidence < SURE and any(ranking.get(i, 0.0) >= DANGER_CONFIDENCE for i in CASE_INTENTS):
        unsure = max(CASE_INTENTS, key=lambda i: ranking.get(i, 0.0))
        return "P3", [f"unsure reading: {unsure} ({ranking[unsure]:.2f}) among the top intents"]
    return "P4", [f"intent {top} ({confidence:.2f})"] if top else ["no sign of a case"]


def _ordered(hits: list[Hit]) -> list[Hit]:
    return sorted(hits, key=lambda h: (h.section, h.label, h.phrase))
