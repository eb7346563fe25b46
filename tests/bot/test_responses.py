"""Every response exists in every language, and the linter finds what it must."""

from __future__ import annotations

import pytest
import yaml

from bot.languages import Languages
from bot.response_lint import Problem, lint, never_say
from bot.responses import DOMAIN_FILE, SERVICE_VALUES, Responses

LANGUAGES = Languages.load().codes
SLOTS = [*yaml.safe_load(DOMAIN_FILE.read_text())["slots"], *SERVICE_VALUES]


@pytest.fixture(scope="module")
def responses() -> Responses:
    return Responses.load()


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_response_is_complete_and_kind_in(responses: Responses, code: str) -> None:
    problems = lint(responses, [code], SLOTS, never_say())
    assert not problems, "\n".join(map(str, problems))


def test_the_never_say_list_covers_every_language() -> None:
    assert set(never_say()) == set(LANGUAGES)


def test_the_linter_finds_gaps_blame_length_and_unfilled_placeholders() -> None:
    english = {
        "utter_a": [{"text": "Hello.", "buttons": [{"title": "Yes", "payload": "/affirm"}]}],
        "utter_b": [{"text": "Write again."}],
        "utter_c": [{"text": "Long. " * 60, "metadata": {"long": True}}],
    }
    spanish = {
        "utter_a": [{"text": "Hola, ¿por qué no te fuiste?",
                     "buttons": [{"title": "Sí", "payload": "/afirmar"}]}],
        "utter_c": [{"text": "Largo {codigo}. " * 60}],
    }
    problems = lint(Responses({"en": english, "es": spanish}), ["es"], ["language"],
                    {"es": ["por qué no te fuiste"]})
    assert set(problems) == {
        Problem("es", "utter_b", "missing"),
        Problem("es", "utter_a", "buttons ['/afirmar'] differ from English ['/affirm']"),
        Problem("es", "utter_a", "says 'por qué no te fuiste' (never say)"),
        Problem("es", "utter_c", "placeholders differ from English"),
        Problem("es", "utter_c", "8 SMS segments (at most 2 unless marked long)"),
        Problem("es", "utter_c", "placeholder {codigo} is never filled"),
    }


def test_a_channel_gets_its_own_variant_and_others_the_default(responses: Responses) -> None:
    sms = responses.render("utter_greet", "es", "sms")["text"]
    web = responses.render("utter_greet", "es", "webchat")["text"]
    other = responses.render("utter_greet", "es", "rest")["text"]
    assert len({sms, web, other}) == 3
    assert responses.render("utter_greet", "xx", "sms") == responses.render("utter_greet", "en", "sms")
