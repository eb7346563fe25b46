"""Rasa's count-vectors featurizer, giving a message's text only the features our
classifier reads.

Rasa's featurizer counts a text twice: once per token (sequence features, for
classifiers that read word by word, such as DIET) and once for the whole sentence.
``bot.classifier`` reads only the sentence, so the per-token pass was a third of the
time a message took to read and half the time training took to featurize.
Other attributes (intent and action names) are featurized as Rasa does.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from scipy.sparse import spmatrix

__all__ = ["SentenceCountVectorsFeaturizer"]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceCountVectorsFeaturizer(CountVectorsFeaturizer):
    def _create_features(self, attribute: str, all_tokens: list[list[str]]
                         ) -> tuple[list[spmatrix | None], list[spmatrix | None]]:
        vectorizer = self.vectorizers.get(attribute) if self.vectorizers else None
        if attribute not in DENSE_FEATURIZABLE_ATTRIBUTES or vectorizer is None:
            return super()._create_features(attribute, all_tokens)
        sentences: list[spmatrix | None] = []
        for tokens in all_tokens:
            if not tokens:
                sentences.append(None)
                continue
            counts = vectorizer.transform([" ".join(tokens)])  # as Rasa counts the sentence
            counts.sort_indices()
            sentences.append(counts.tocoo())
        return [None] * len(all_tokens), sentences
