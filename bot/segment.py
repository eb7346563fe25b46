"""Words in scripts written without spaces: Chinese (jieba) and Thai (PyThaiNLP ``newmm``).

Both dictionaries ship inside their packages; nothing is downloaded. Used by the NLU
tokenizer (:mod:`bot.tokenizer`) and wherever words are counted (triage, the
held-out checks).
"""

from __future__ import annotations

import logging

import jieba
import regex
from pythainlp.tokenize import word_tokenize

from bot.settings import cache_dir

__all__ = ["UNSPACED", "count_words", "segment"]

UNSPACED = regex.compile(r"(\p{Han}+)|(\p{Thai}+)")
jieba.setLogLevel(logging.WARNING)
jieba.dt.tmp_dir = str(cache_dir())  # its prefix-dictionary cache, instead of /tmp


def segment(word: str) -> list[tuple[str, int]]:
    """``word`` cut into (piece, offset): Han and Thai runs into words, the rest kept."""
    pieces: list[tuple[str, int]] = []
    position = 0
    for match in UNSPACED.finditer(word):
        if match.start() > position:
            pieces.append((word[position:match.start()], position))
        run, offset = match.group(), match.start()
        words = jieba.lcut(run) if match.group(1) else word_tokenize(run, engine="newmm")
        for piece in words:
            if piece.strip():
                pieces.append((piece, offset))
            offset += len(piece)
        position = match.end()
    if position < len(word):
        pieces.append((word[position:], position))
    return pieces


def count_words(text: str) -> int:
    """Words in ``text``, Chinese and Thai ones included."""
    return sum(len(segment(word)) for word in text.split())
