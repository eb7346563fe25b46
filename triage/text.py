"""One normal form for lexicon phrases and messages, so that spelling cannot hide a word.

Case, accents and other combining marks (Vietnamese tones, Arabic harakat; not Thai
vowel and tone marks, without which Thai words run into each other), Arabic letter
variants, apostrophes ("can't" = "cant"), repeated letters (stretched for emphasis,
"heeeelp", or doubled, "took") and punctuation all disappear. Lexicon phrases go
through the same function, so both sides agree.
"""

from __future__ import annotations

import unicodedata

import regex

__all__ = ["normalize"]

_THAI = regex.compile(r"\p{Thai}")  # Thai vowel and tone marks are letters of the word: kept
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc")  # "can't" is one word, however typed
_STRETCHED = regex.compile(r"(\p{L})\1+")  # doubled letters too: "tooook" and "took" meet at "tok"
_NOT_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}*]+")
# Alef with hamza or madda → alef, alef maqsura → yeh, teh marbuta → heh, tatweel dropped.
_ARABIC = str.maketrans({
    "\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627",
    "\u0649": "\u064a", "\u0629": "\u0647", "\u0640": None,
})


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn" or _THAI.match(ch))
    plain = unicodedata.normalize("NFC", plain).translate(_ARABIC).replace("đ", "d")
    plain = _STRETCHED.sub(r"\1", plain.translate(_APOSTROPHES))
    return " ".join(_NOT_WORD.sub(" ", plain).split())

