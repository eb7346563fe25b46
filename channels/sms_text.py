"""Fitting replies into as few SMS segments as possible.

An SMS segment holds 160 GSM-7 characters (153 when concatenated), but one
character outside GSM-7 (a curly apostrophe, an emoji) turns the whole message
into UCS-2 with 70 (67) per segment: a 150-character reply costs three segments
instead of one. So typographic characters are replaced by their GSM-7 twins when
that keeps a message in GSM-7, and long replies are split on sentence boundaries
into messages of at most ``MAX_SEGMENTS`` segments each.
"""

from __future__ import annotations

import math
import re

from bot.messages import Outbound

__all__ = ["MAX_SEGMENTS", "gsm_friendly", "is_gsm7", "render", "segments", "split"]

MAX_SEGMENTS = 3

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")  # each costs two septets
_TYPOGRAPHIC = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\u2022": "-",
})
_SPACE = re.compile(r"(\s+)")


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in text)


def _units(text: str) -> tuple[int, int, int]:
    """(length in units, units per single segment, units per concatenated segment)."""
    if is_gsm7(text):
        return sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text), 160, 153
    # UCS-2 counts UTF-16 code units: an emoji is two.
    return len(text.encode("utf-16-le")) // 2, 70, 67


def segments(text: str) -> int:
    length, single, multi = _units(text)
    return 1 if length <= single else math.ceil(length / multi)


def gsm_friendly(text: str) -> str:
    plain = text.translate(_TYPOGRAPHIC)
    return plain if is_gsm7(plain) else text


def split(text: str, max_segments: int = MAX_SEGMENTS) -> list[str]:
    """Messages of at most ``max_segments`` each, cut between sentences (or words)."""
    text = gsm_friendly(text.strip())
    if segments(text) <= max_segments:
        return [text]
    pieces = [p for s in _runs(text, _ends_sentence) for p in _fit(s, max_segments)]
    return _pack(pieces, max_segments)


def _ends_sentence(run: str, space: str) -> bool:
    return "\n" in space or run.rstrip()[-1:] in ".!?\u3002\uff01\uff1f"


def _runs(text: str, cut_after: object) -> list[str]:
    """``text`` cut after the white space where ``cut_after(run, space)`` holds,
    each run keeping its trailing white space, so joining them gives ``text``."""
    runs, current = [], ""
    for token in _SPACE.split(text):
        current += token
        if token.isspace() and cut_after(current, token):  # type: ignore[operator]
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs


def _fit(sentence: str, max_segments: int) -> list[str]:
    """A sentence too long for one message is cut between words, and a word too
    long for one message (a pasted link, unspaced script) between characters."""
    if segments(sentence.strip()) <= max_segments:
        return [sentence]
    words = _pack(_runs(sentence, lambda run, space: True), max_segments, keep_space=True)
    return [part for word in words for part in _pack(list(word), max_segments, keep_space=True)]


def _pack(pieces: list[str], max_segments: int, keep_space: bool = False) -> list[str]:
    parts: list[str] = []
    current = ""
    for piece in pieces:
        if current and segments((current + piece).strip()) > max_segments:
            parts.append(current)
            current = piece
        else:
            current += piece
    if current:
        parts.append(current)
    return parts if keep_space else [p.strip() for p in parts if p.strip()]


def render(message: Outbound, max_segments: int = MAX_SEGMENTS) -> list[str]:
    """The SMS texts for one reply: buttons become numbered options."""
    text = message.text
    if message.buttons:
        options = "\n".join(f"{n} - {b.title}" for n, b in enumerate(message.buttons, 1))
        text = f"{text}\n{options}"
    return split(text, max_segments)
