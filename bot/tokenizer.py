"""A Rasa tokenizer for every launch language, Chinese and Thai included.

Whitespace splits most scripts into words, but Chinese and Thai are written without
spaces: a whole sentence would be one token, so the word features would never match
anything twice. Runs of Han characters are segmented with jieba and runs of Thai with
PyThaiNLP's dictionary-based ``newmm``; everything else is split as Rasa's whitespace
tokenizer does. Both dictionaries ship inside their packages: nothing is downloaded.

Rasa's own ``WhitespaceTokenizer`` cannot be reused as is: its emoji pattern spans
U+24C2..U+1F251, which covers every CJK character, so it silently drops Chinese words.
"""

from __future__ import annotations

from typing import Any

import regex
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.segment import segment

__all__ = ["ScriptTokenizer"]

_EMOJI_ONLY = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\u200d\ufe0f]+")
# Rasa's WhitespaceTokenizer pattern: punctuation around words becomes a space.
_PUNCTUATION = regex.compile(
    r"[^\w#@&]+(?=\s|$)|"
    r"(\s|^)[^\w#@&]+(?=[^0-9\s])|"
    r"(?<=[^0-9\s])[^\w._~:/?#\[\]()@!$&*+,;=-]+(?=[^0-9\s])"
)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ScriptTokenizer(WhitespaceTokenizer):
    """Rasa's whitespace tokenizer, with Chinese and Thai segmented into words."""

    @staticmethod
    def not_supported_languages() -> list[str] | None:
        return None

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> ScriptTokenizer:
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        words = [w for w in _PUNCTUATION.sub(" ", text).split() if not _EMOJI_ONLY.fullmatch(w)]
        tokens = self._convert_words_to_tokens(words or [text], text)
        tokens = [
            Token(piece, token.start + offset)
            for token in tokens
            for piece, offset in segment(token.text)
        ]
        return self._apply_token_pattern(tokens)
