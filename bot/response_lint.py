"""The response linter: every response in every language, complete and kind.

Run by the tests (``tests/bot/test_responses.py``). It finds:

- gaps: a response, a channel variant or a button that English has and a language
  lacks (or the reverse), a translated payload, an empty text or title;
- phrases that blame, pressure or promise falsely, per language: the list is the
  "Never say" block of ``docs/conversation-design.md``, read from there so the
  document and the check cannot drift apart;
- texts longer than two SMS segments, unless the variation is marked
  ``metadata: {long: true}`` (SMS splits them into several messages);
- placeholders (``{name}``) that nothing fills: Rasa fills only slot names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.responses import DEFAULT_LANGUAGE, Responses
from bot.settings import PROJECT_ROOT
from channels.sms_text import gsm_friendly, segments

__all__ = ["Problem", "lint", "never_say"]

DESIGN_DOC = PROJECT_ROOT / "docs" / "conversation-design.md"
MAX_SMS_SEGMENTS = 2
_NEVER_SAY_BLOCK = re.compile(r"<!-- never-say -->\s*```yaml\n(.*?)```", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Problem:
    language: str
    response: str
    message: str

    def __str__(self) -> str:
        return f"{self.language} {self.response}: {self.message}"


def never_say(doc: Path = DESIGN_DOC) -> dict[str, list[str]]:
    match = _NEVER_SAY_BLOCK.search(doc.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"no never-say block in {doc}")
    return {code: [p.casefold() for p in phrases] for code, phrases in yaml.safe_load(match.group(1)).items()}


def lint(responses: Responses, languages: Iterable[str], slots: Iterable[str],
         phrases: Mapping[str, list[str]]) -> list[Problem]:
    english = responses.catalogue[DEFAULT_LANGUAGE]
    fillable = set(slots)
    problems: list[Problem] = []
    for code in languages:
        catalogue = responses.catalogue.get(code)
        if catalogue is None:
            problems.append(Problem(code, "*", "no responses file"))
            continue
        for name in sorted(set(english) ^ set(catalogue)):
            where = "missing" if name in english else "not in English (bot/domain.yml)"
            problems.append(Problem(code, name, where))
        for name in sorted(set(english) & set(catalogue)):
            problems += [Problem(code, name, m) for m in _compare(english[name], catalogue[name])]
            for variation in catalogue[name]:
                problems += [Problem(code, name, m)
                             for m in _check(variation, fillable, phrases.get(code, []))]
    return problems


def _compare(english: list[dict[str, Any]], translated: list[dict[str, Any]]) -> list[str]:
    if [v.get("channel") for v in english] != [v.get("channel") for v in translated]:
        return ["channel variants differ from English"]
    problems = []
    for source, target in zip(english, translated, strict=True):
        source_payloads = [b.get("payload") for b in source.get("buttons") or []]
        target_payloads = [b.get("payload") for b in target.get("buttons") or []]
        if source_payloads != target_payloads:
            problems.append(f"buttons {target_payloads} differ from English {source_payloads}")
        if set(_PLACEHOLDER.findall(_all_text(source))) != set(_PLACEHOLDER.findall(_all_text(target))):
            problems.append("placeholders differ from English")
    return problems


def _check(variation: dict[str, Any], fillable: set[str], phrases: list[str]) -> list[str]:
    problems = []
    text = str(variation.get("text") or "").strip()
    if not text:
        problems.append("empty text")
    if any(not str(b.get("title") or "").strip() for b in variation.get("buttons") or []):
        problems.append("a button without a title")
    folded = _all_text(variation).casefold()
    problems += [f"says {phrase!r} (never say)" for phrase in phrases if phrase in folded]
    long = bool((variation.get("metadata") or {}).get("long"))
    count = segments(gsm_friendly(text))
    if count > MAX_SMS_SEGMENTS and not long:
        problems.append(f"{count} SMS segments (at most {MAX_SMS_SEGMENTS} unless marked long)")
    placeholders = _PLACEHOLDER.findall(_all_text(variation))
    problems += [f"placeholder {{{name}}} is never filled" for name in placeholders if name not in fillable]
    return problems


def _all_text(variation: dict[str, Any]) -> str:
    titles = " ".join(str(b.get("title") or "") for b in variation.get("buttons") or [])
    return f"{variation.get('text') or ''} {titles}"
