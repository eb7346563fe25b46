"""Every response in every language, and the Rasa NLG that answers in the turn's one.

English lives in ``bot/domain.yml`` (Rasa needs it there); each other language has the
same responses, in Rasa's response format, in ``bot/responses/<code>.yml``. The
language of a turn is a context variable set by :mod:`bot.conversation` around the
Rasa call, so neither Rasa's tracker nor the policies ever see it: the stories are
the same in every language.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from rasa.core.nlg import NaturalLanguageGenerator, TemplatedNaturalLanguageGenerator
from rasa.shared.core.trackers import DialogueStateTracker

__all__ = ["DEFAULT_LANGUAGE", "SERVICE_VALUES", "LocalizedNLG", "Responses", "speaking"]

DOMAIN_FILE = Path(__file__).with_name("domain.yml")
RESPONSES_DIR = Path(__file__).with_name("responses")
DEFAULT_LANGUAGE = "en"
# Placeholders that service messages fill (the rest are Rasa slots): a receipt code,
# an expected wait, the staff replies to a report.
SERVICE_VALUES = ("code", "minutes", "hours", "replies")

Variations = list[dict[str, Any]]
_turn_language: ContextVar[str] = ContextVar("turn_language", default=DEFAULT_LANGUAGE)


@contextmanager
def speaking(code: str) -> Iterator[None]:
    """Everything Rasa utters inside this block is in language ``code``."""
    token = _turn_language.set(code)
    try:
        yield
    finally:
        _turn_language.reset(token)


class Responses:
    """The response catalogue: language code → response name → Rasa variations."""

    def __init__(self, catalogue: Mapping[str, Mapping[str, Variations]]) -> None:
        self.catalogue = {code: dict(responses) for code, responses in catalogue.items()}
        self._generators = {
            code: TemplatedNaturalLanguageGenerator(responses) for code, responses in self.catalogue.items()
        }

    @classmethod
    def load(cls, domain_file: Path = DOMAIN_FILE, directory: Path = RESPONSES_DIR) -> Responses:
        catalogue = {DEFAULT_LANGUAGE: _read(domain_file)}
        for path in sorted(directory.glob("*.yml")):
            catalogue[path.stem] = _read(path)
        return cls(catalogue)

    def generator(self, code: str) -> TemplatedNaturalLanguageGenerator:
        return self._generators.get(code) or self._generators[DEFAULT_LANGUAGE]

    def render(self, name: str, language: str, channel: str, **values: str) -> dict[str, Any]:
        """A service message (one not uttered by Rasa) in ``language``, as Rasa would
        have uttered it, with ``values`` for its :data:`SERVICE_VALUES`."""
        message = self.generator(language).generate_from_slots(name, {}, channel, **values)
        if message is None:
            raise KeyError(name)
        return message


class LocalizedNLG(NaturalLanguageGenerator):
    """Rasa's templated generator, in the language of the current turn."""

    def __init__(self, responses: Responses) -> None:
        self._responses = responses

    async def generate(self, utter_action: str, tracker: DialogueStateTracker, output_channel: str,
                       **kwargs: Any) -> dict[str, Any] | None:
        generator = self._responses.generator(_turn_language.get())
        return await generator.generate(utter_action, tracker, output_channel, **kwargs)


def _read(path: Path) -> dict[str, Variations]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(data.get("responses") or {})
