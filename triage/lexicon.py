"""The per-language lexicons, matched all at once.

Each ``triage/lexicons/<code>.yml`` maps indicators, categories and kind markers to
phrases. They are data so that a region can review and extend them without touching
code. Every language's phrases are searched in every message: people mix languages
("mi jefe took my passport"), and a misread language must not hide a danger word.

Phrases and text are compared in the normal form of :mod:`triage.text`. Spaced
scripts match whole words through an index on the first word (a trailing ``*``
matches any ending); Chinese and Thai phrases match as substrings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.segment import UNSPACED
from triage.text import normalize

__all__ = ["Hit", "Lexicon"]

LEXICON_DIR = Path(__file__).with_name("lexicons")
SECTIONS = ("indicators", "categories", "kind")
NOW = "now"  # a plain list: words meaning "right now"


@dataclass(frozen=True)
class Hit:
    section: str  # indicators, categories, kind or now
    label: str  # e.g. documents_retained
    phrase: str  # as written in the lexicon
    language: str  # whose lexicon

    @property
    def reason(self) -> str:
        return f'{self.label}: "{self.phrase}" ({self.language})'


@dataclass(frozen=True)
class _Entry:
    tokens: tuple[str, ...]
    open_ended: bool  # the last token is a prefix ("amenaz*")
    hit: Hit


class Lexicon:
    def __init__(self, phrases: Iterable[tuple[str, Hit]]) -> None:
        self._by_first: dict[str, list[_Entry]] = defaultdict(list)
        self._open_first: dict[str, list[_Entry]] = defaultdict(list)  # one-token prefixes
        self._unspaced: list[tuple[str, Hit]] = []
        for phrase, hit in phrases:
            form = normalize(phrase)
            if not form:
                continue
            if UNSPACED.search(form):
                self._unspaced.append((form.replace(" ", "").rstrip("*"), hit))
                continue
            open_ended = form.endswith("*")
            tokens = tuple(form.rstrip("*").split())
            entry = _Entry(tokens, open_ended, hit)
            if open_ended and len(tokens) == 1:
                self._open_first[tokens[0]].append(entry)
            else:
                self._by_first[tokens[0]].append(entry)
        self._prefix_lengths = sorted({len(p) for p in self._open_first})

    @classmethod
    def load(cls, directory: Path = LEXICON_DIR) -> Lexicon:
        phrases: list[tuple[str, Hit]] = []
        for path in sorted(directory.glob("*.yml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for section in SECTIONS:
                for label, entries in (data.get(section) or {}).items():
                    phrases += [(str(p), Hit(section, label, str(p), path.stem)) for p in entries or ()]
            phrases += [(str(p), Hit(NOW, NOW, str(p), path.stem)) for p in data.get(NOW) or ()]
        return cls(phrases)

    def match(self, text: str) -> list[Hit]:
        """Every lexicon phrase found in ``text`` (each label and phrase once)."""
        form = normalize(text)
        tokens = form.split()
        found: dict[tuple[str, str, str], Hit] = {}
        for i, token in enumerate(tokens):
            for entry in self._by_first.get(token, ()):
                if _matches(entry, tokens, i):
                    found.setdefault((entry.hit.section, entry.hit.label, entry.hit.phrase), entry.hit)
            for length in self._prefix_lengths:
                if length > len(token):
                    break
                for entry in self._open_first.get(token[:length], ()):
                    found.setdefault((entry.hit.section, entry.hit.label, entry.hit.phrase), entry.hit)
        if UNSPACED.search(form):
            squeezed = form.replace(" ", "")
            for phrase, hit in self._unspaced:
                if phrase in squeezed:
                    found.setdefault((hit.section, hit.label, hit.phrase), hit)
        return list(found.values())


def _matches(entry: _Entry, tokens: list[str], start: int) -> bool:
    end = start + len(entry.tokens)
    if end > len(tokens):
        return False
    window = tokens[start:end]
    if entry.open_ended:
        return window[:-1] == list(entry.tokens[:-1]) and window[-1].startswith(entry.tokens[-1])
    return tuple(window) == entry.tokens
