"""Lexicon matching: spelling cannot hide a word, and a word inside another is no match."""

from __future__ import annotations

import pytest

from triage.lexicon import Hit, Lexicon


def lexicon(*phrases: tuple[str, str]) -> Lexicon:
    return Lexicon((p, Hit("indicators", label, p, "xx")) for p, label in phrases)


LEX = lexicon(("took my passport", "documents_retained"), ("amenaz*", "threats"),
              ("locked in", "immediate_danger"), ("被锁", "immediate_danger"), ("ขังอยู่", "immediate_danger"),
              ("جواز سفري", "documents_retained"), ("15 years old", "minor_involved"))


@pytest.mark.parametrize(("text", "label"), [
    ("My boss TOOK my passport!!", "documents_retained"),
    ("they tooook my passport", "documents_retained"),  # stretched for emphasis
    ("me amenazaron ayer", "threats"),  # a trailing * matches any ending
    ("Me AMENAZÁN", "threats"),  # accents and case
    ("i am locked-in", "immediate_danger"),
    ("我被锁在房间里", "immediate_danger"),  # Chinese: anywhere in the text
    ("ฉันถูกขังอยู่ในห้อง", "immediate_danger"),  # Thai: anywhere in the text
    ("أخذوا جواز سفري", "documents_retained"),
    ("she is 15 years old", "minor_involved"),
])
def test_a_phrase_is_found_however_it_is_written(text: str, label: str) -> None:
    assert [h.label for h in LEX.match(text)] == [label]


@pytest.mark.parametrize("text", ["i took my passports photo", "unlocked in time", "the menace", "15 years"])
def test_a_phrase_must_be_whole_words(text: str) -> None:
    assert LEX.match(text) == []


def test_every_launch_language_has_a_lexicon_for_every_indicator() -> None:
    import yaml

    from bot.languages import Languages
    from triage.lexicon import LEXICON_DIR

    indicators = {"deception", "restricted_movement", "isolation", "physical_violence", "sexual_violence",
                  "threats", "documents_retained", "wages_withheld", "debt_bondage", "abusive_conditions",
                  "excessive_hours", "minor_involved", "immediate_danger", "self_harm_risk", "medical_need"}
    for code in Languages.load().codes:
        data = yaml.safe_load((LEXICON_DIR / f"{code}.yml").read_text(encoding="utf-8"))
        assert set(data["indicators"]) == indicators, code
        assert all(data["indicators"][i] for i in indicators), code
