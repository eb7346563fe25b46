from __future__ import annotations

from bot.messages import Button, Outbound
from channels.sms_text import is_gsm7, render, segments, split


def test_segments_follow_the_gsm7_and_ucs2_limits() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # extended characters count twice
    assert segments("я" * 70) == 1 and segments("я" * 71) == 2 and segments("я" * 134) == 2
    assert segments("😀" * 35) == 1 and segments("😀" * 36) == 2  # an emoji is two UTF-16 units


def test_typographic_quotes_do_not_cost_a_ucs2_message() -> None:
    text = "You don\u2019t need to give your name \u2014 we won\u2019t contact anyone\u2026 " * 2
    assert not is_gsm7(text) and segments(text) == 2
    (fitted,) = split(text)
    assert is_gsm7(fitted) and segments(fitted) == 1 and "don't" in fitted


def test_text_that_needs_unicode_keeps_its_characters() -> None:
    assert split("Привет — это безопасно") == ["Привет — это безопасно"]


def test_long_replies_split_between_sentences() -> None:
    sentences = [f"Sentence number {n} explains one more thing about your rights here." for n in range(20)]
    parts = split(" ".join(sentences))
    assert len(parts) > 1 and all(segments(p) <= 3 for p in parts)
    assert all(p.endswith(".") for p in parts)  # every cut is at a sentence end
    assert " ".join(parts) == " ".join(sentences)


def test_a_sentence_longer_than_a_message_splits_between_words_then_characters() -> None:
    assert all(segments(p) <= 3 for p in split("word " * 200))
    parts = split("Я" * 500)
    assert "".join(parts) == "Я" * 500 and all(segments(p) <= 3 for p in parts)


def test_buttons_become_numbered_options() -> None:
    message = Outbound("Is it safe to talk?", (Button("Yes", "/affirm"), Button("Not now", "/not_safe")))
    assert render(message) == ["Is it safe to talk?\n1 - Yes\n2 - Not now"]
