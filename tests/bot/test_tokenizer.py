"""Chinese and Thai become words, not one token per sentence; nothing else changes."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.tokenizer import ScriptTokenizer


def tokens(text: str) -> list[tuple[str, int]]:
    tokenizer = ScriptTokenizer(ScriptTokenizer.get_default_config())
    return [(t.text, t.start) for t in tokenizer.tokenize(Message(data={"text": text}), "text")]


def test_chinese_is_cut_into_words_at_their_offsets() -> None:
    text = "老板扣了我的护照"
    result = tokens(text)
    assert [word for word, _ in result] == ["老板", "扣", "了", "我", "的", "护照"]
    assert all(text[start:start + len(word)] == word for word, start in result)


def test_thai_is_cut_into_words() -> None:
    assert [w for w, _ in tokens("ฉันต้องการความช่วยเหลือ")] == ["ฉัน", "ต้องการ", "ความช่วยเหลือ"]


def test_chinese_mixed_with_latin_keeps_both() -> None:
    """Rasa's WhitespaceTokenizer drops Han characters as 'emoji'; ours keeps them."""
    assert [w for w, _ in tokens("我需要help, please")] == ["我", "需要", "help", "please"]


@pytest.mark.parametrize(("text", "words"), [
    ("hola, necesito ayuda!", ["hola", "necesito", "ayuda"]),
    ("tôi cần giúp đỡ", ["tôi", "cần", "giúp", "đỡ"]),
    ("مرحبا، أحتاج مساعدة", ["مرحبا", "أحتاج", "مساعدة"]),
    ("help 😢", ["help"]),
])
def test_spaced_scripts_split_as_before(text: str, words: list[str]) -> None:
    assert [w for w, _ in tokens(text)] == words
