"""The data `hotline eval` measures with: complete, and apart from the training data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.evaluation import HOLDOUT_DIR, STORIES_DIR
from bot.languages import Languages
from bot.responses import DOMAIN_FILE
from bot.segment import count_words
from bot.settings import PROJECT_ROOT

LANGUAGES = Languages.load().codes
INTENTS = [i for i in yaml.safe_load(DOMAIN_FILE.read_text())["intents"] if i != "out_of_scope"]
MIN_HELD_OUT = 15
_PUNCTUATION = re.compile(r"[^\w\s]")


def examples(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        block["intent"]: [line[2:].strip() for line in block["examples"].splitlines()
                          if line.startswith("- ")]
        for block in data["nlu"]
    }


def plain(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_intent_is_trained_and_held_out(code: str) -> None:
    trained = examples(PROJECT_ROOT / "intents" / f"{code}.yml")
    held_out = examples(HOLDOUT_DIR / f"{code}.yml")
    assert sorted(trained) == sorted(INTENTS)
    assert {i: len(held_out.get(i, [])) for i in INTENTS if len(held_out.get(i, [])) < MIN_HELD_OUT} == {}


@pytest.mark.parametrize("code", [*LANGUAGES, "out_of_scope"])
def test_held_out_sentences_are_not_training_sentences(code: str) -> None:
    training = examples(PROJECT_ROOT / "intents" / f"{code}.yml")
    trained = {plain(e) for lines in training.values() for e in lines}
    held_out = {plain(e) for lines in examples(HOLDOUT_DIR / f"{code}.yml").values() for e in lines}
    shared = held_out & trained
    # One-word answers ("yes", "skip") cannot be phrased apart; sentences can.
    assert sorted(s for s in shared if count_words(s) > 1) == []


def story_shape(path: Path) -> list[object]:
    """The stories with the user's words taken out."""
    stories = yaml.safe_load(path.read_text(encoding="utf-8"))["stories"]
    return [
        [story["story"], [{k: v for k, v in step.items() if k != "user"} for step in story["steps"]]]
        for story in stories
    ]


@pytest.mark.parametrize("code", [c for c in LANGUAGES if c != "en"])
def test_every_language_tests_the_same_flows_as_english(code: str) -> None:
    assert story_shape(STORIES_DIR / f"test_{code}.yml") == story_shape(STORIES_DIR / "test_en.yml")


def test_no_words_are_taught_as_two_intents() -> None:
    """One model learns every language: "k" cannot be "ok" in English and "no" in Vietnamese."""
    labels: dict[str, set[str]] = {}
    for path in sorted((PROJECT_ROOT / "intents").glob("*.yml")):
        for intent, lines in examples(path).items():
            for line in lines:
                labels.setdefault(plain(line), set()).add(intent)
    assert {text: sorted(i) for text, i in labels.items() if len(i) > 1} == {}
