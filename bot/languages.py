"""The launch languages: which one a message is written in, and asking for another.

Everything here is data-driven (``bot/languages.yml`` and the training examples in
``intents/<code>.yml``): adding a language never touches this module.

Detection combines two readings, because people write short and informal messages
("merci", "toi can giup do", "salam") on which a general-purpose detector alone is
unsure:

- ``lingua`` restricted to the launch languages (scripts, character n-grams);
- a vote of the words that occur in the training examples of exactly one language
  (so "merci" is French and "salam" Arabic, as the data says), and of words matching
  a language's patterns ("3ayez", "wa7ed": Arabic written in Latin letters);
- a message that is, accents aside, a training example of one language only ("il est
  la") is read as that language.

Channel hints (Telegram's ``language_code``, the phone number's country, the
browser's language) only break near-ties; they never outvote what the person wrote.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import regex
import yaml
from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

from bot.segment import UNSPACED
from bot.settings import PROJECT_ROOT

__all__ = ["Detection", "Language", "LanguageRequest", "Languages"]

LANGUAGES_FILE = Path(__file__).with_name("languages.yml")
INTENTS_DIR = PROJECT_ROOT / "intents"
# A reading this sure is kept for the rest of the conversation (measured on the
# held-out sets: docs/eval.md, "language detection").
CONFIDENT = 0.6
_HINT_WEIGHT = 0.3
_RELIABLE_LETTERS = 12  # fewer letters than this, and any reading is discounted
_PLAUSIBLE = 0.05  # lingua's least confidence for a language a training sentence may claim
_WORD = regex.compile(r"[\p{L}\p{M}\d']+")
_HAN = regex.compile(r"\p{Han}")
_EXAMPLE = regex.compile(r"^\s*-\s+(.*)$", regex.MULTILINE)
_MAX_REQUEST_WORDS = 6


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # as the language names itself
    direction: Literal["ltr", "rtl"]
    countries: frozenset[str]
    names: tuple[str, ...]
    patterns: tuple[regex.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Detection:
    code: str
    score: float

    @property
    def confident(self) -> bool:
        return self.score >= CONFIDENT


@dataclass(frozen=True)
class LanguageRequest:
    """The person asked for a language (``code``) or for the menu (``code`` is None)."""

    code: str | None


class Languages:
    def __init__(self, languages: Mapping[str, Language], menu_words: Iterable[str],
                 vocabulary: Mapping[str, str], sentences: Mapping[str, str] | None = None) -> None:
        self._languages = dict(languages)
        self._menu_words = frozenset(word.casefold() for word in menu_words)
        self._vocabulary = dict(vocabulary)
        self._sentences = dict(sentences or {})
        names = sorted(
            ((name.casefold(), code) for code, lang in self._languages.items() for name in lang.names),
            key=lambda pair: -len(pair[0]),
        )
        self._name_codes = dict(names)
        self._names = regex.compile("|".join(_name_pattern(name) for name, _ in names))

    @classmethod
    def load(cls, path: Path = LANGUAGES_FILE, intents_dir: Path = INTENTS_DIR) -> Languages:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        languages = {
            code: Language(code=code, name=entry["name"], direction=entry.get("direction", "ltr"),
                           countries=frozenset(entry.get("countries", ())),
                           names=tuple(str(n) for n in entry.get("names", ())),
                           patterns=tuple(regex.compile(p) for p in entry.get("patterns", ())))
            for code, entry in data["languages"].items()
        }
        return cls(languages, data.get("menu_words", ()), *_distinctive_examples(languages, intents_dir))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._languages)

    def __getitem__(self, code: str) -> Language:
        return self._languages[code]

    def __contains__(self, code: object) -> bool:
        return code in self._languages

    def direction(self, code: str) -> Literal["ltr", "rtl"]:
        language = self._languages.get(code)
        return language.direction if language else "ltr"

    @cached_property
    def _detector(self) -> LanguageDetector:
        isos = [getattr(IsoCode639_1, code.upper()) for code in self._languages]
        return LanguageDetectorBuilder.from_iso_codes_639_1(*isos).with_preloaded_language_models().build()

    def detect(self, text: str, hints: Mapping[str, str] | None = None) -> Detection | None:
        """The most likely language of ``text``, or None if it has no letters.

        The two readings are mixed by the share of words that vote (a message of
        distinctive words is read by its words alone, one of shared words by lingua);
        the result is scaled down for very short texts ("ok", "no"), which read as
        several languages at once, and a channel hint adds a fixed weight that can
        tip such a text but never makes it sure on its own.
        """
        words = [w.casefold() for w in _WORD.findall(text)]
        # A Han character carries about a word: it counts as three letters.
        letters = sum(3 if _HAN.match(ch) else 1 for ch in text if ch.isalpha())
        if not words or not letters:
            return None
        reliability = min(1.0, letters / _RELIABLE_LETTERS)
        lingua = {
            value.language.iso_code_639_1.name.lower(): value.value
            for value in self._detector.compute_language_confidence_values(text)
        }
        sentence = self._sentences.get(_plain(words))
        if sentence and lingua.get(sentence, 0.0) >= _PLAUSIBLE:
            # The whole message is a training example of one language only ("il est la"),
            # and its letters could be that language (not English words in Arabic data).
            return Detection(sentence, max(CONFIDENT, reliability))
        votes = Counter(self._vocabulary[w] for w in words if w in self._vocabulary)
        votes.update(code for w in words for code, lang in self._languages.items()
                     if any(p.match(w) for p in lang.patterns))
        weight = min(1.0, sum(votes.values()) / len(words)) if votes and not UNSPACED.search(text) else 0.0
        total_votes = sum(votes.values()) or 1
        hinted = self.from_hints(hints or {})
        scores = {
            code: reliability * ((1 - weight) * lingua.get(code, 0.0) + weight * votes[code] / total_votes)
            + (_HINT_WEIGHT if code == hinted else 0.0)
            for code in self._languages
        }
        code = max(scores, key=scores.__getitem__)
        return Detection(code, min(scores[code], 1.0))

    def from_hints(self, hints: Mapping[str, str]) -> str | None:
        """The language the channel suggests: Telegram's or the browser's setting,
        else the phone number's country."""
        for key in ("language_code", "browser_lang"):
            code = hints.get(key, "").split("-")[0].split("_")[0].lower()
            if code == "fil":
                code = "tl"
            if code in self._languages:
                return code
        country = hints.get("country", "").upper()
        for code, language in self._languages.items():
            if country in language.countries:
                return code
        return None

    def request(self, text: str) -> LanguageRequest | None:
        """A language named ("español", "in English please") or the menu asked for
        ("language", "idioma"); None for anything else.

        A name alone switches. A short message with a name switches only when it is
        itself written in that language ("en español por favor"); otherwise ("no hablo
        inglés") the menu is offered, which is never wrong.
        """
        folded = " ".join(text.casefold().split()).strip(" .!?¿¡,;:")
        if folded in self._menu_words or folded == "/language":
            return LanguageRequest(None)
        if folded.startswith("/lang "):
            code = folded.removeprefix("/lang ").strip()
            return LanguageRequest(code) if code in self._languages else LanguageRequest(None)
        if len(folded.split()) > _MAX_REQUEST_WORDS:
            return None
        found = {self._name_codes[m.group()] for m in self._names.finditer(folded)}
        if len(found) != 1:
            return LanguageRequest(None) if found else None
        (code,) = found
        rest = self._names.sub(" ", folded).strip(" .!?¿¡,;:")
        if not rest:
            return LanguageRequest(code)
        detected = self.detect(folded)
        return LanguageRequest(code if detected and detected.code == code else None)


def _name_pattern(name: str) -> str:
    """A name as a whole word, except in scripts written without spaces."""
    before = "" if UNSPACED.match(name[0]) else r"(?<![\p{L}\p{M}])"
    after = "" if UNSPACED.match(name[-1]) else r"(?![\p{L}\p{M}])"
    return before + regex.escape(name) + after


def _plain(words: list[str]) -> str:
    """Words without accents or marks: "il est là" and "il est la" are one sentence."""
    decomposed = unicodedata.normalize("NFKD", " ".join(words))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def _distinctive_examples(languages: Mapping[str, Language],
                          intents_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Words, and whole sentences, of the training examples that occur in exactly one language."""
    word_owners: dict[str, set[str]] = defaultdict(set)
    sentence_owners: dict[str, set[str]] = defaultdict(set)
    for code in languages:
        path = intents_dir / f"{code}.yml"
        if not path.exists():
            continue
        for example in _EXAMPLE.findall(path.read_text(encoding="utf-8")):
            words = _WORD.findall(example.casefold())
            sentence_owners[_plain(words)].add(code)
            for word in words:
                if not word.isdigit():
                    word_owners[word].add(code)

    def unique(owners: dict[str, set[str]]) -> dict[str, str]:
        return {text: next(iter(codes)) for text, codes in owners.items() if len(codes) == 1}

    return unique(word_owners), unique(sentence_owners)
