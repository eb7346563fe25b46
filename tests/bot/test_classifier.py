"""Reading a message: the featurizer's sentence counts are Rasa's, and the intent
classifier's own prediction gives what the sklearn pipeline it was trained as would
give, on every held-out example of every language."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.core.agent import Agent
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot.classifier import TfidfLogisticRegressionClassifier
from bot.evaluation import HOLDOUT_DIR
from bot.featurizer import SentenceCountVectorsFeaturizer
from bot.settings import Settings
from bot.training import model_path


@pytest.fixture(scope="module")
def components(model_settings: Settings) -> list:
    """The model's NLU components, in pipeline order."""
    agent = Agent.load(str(model_path(model_settings)))
    nodes = agent.processor.graph_runner._instantiated_nodes  # type: ignore[union-attr]
    return [node._component for name, node in nodes.items()
            if name.startswith(("run_bot.tokenizer", "run_bot.featurizer", "run_bot.classifier"))]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [e.get("text") for path in sorted(HOLDOUT_DIR.glob("*.yml"))
            for e in load_data(str(path)).intent_examples] + ["x" * 2000]


def test_the_sentence_counts_are_rasas_and_nothing_per_token(components: list, texts: list[str]) -> None:
    tokenizer, *featurizers = components[:-1]
    assert len(featurizers) == 2 and all(isinstance(f, SentenceCountVectorsFeaturizer) for f in featurizers)
    messages = tokenizer.process([Message.build(text) for text in texts])
    tokens = [[token.text for token in message.get("text_tokens")] for message in messages]
    for featurizer in featurizers:
        ours = featurizer._create_features(TEXT, tokens)
        rasas = CountVectorsFeaturizer._create_features(featurizer, TEXT, tokens)
        assert ours[0] == [None] * len(texts)
        for mine, theirs in zip(ours[1], rasas[1], strict=True):
            assert (mine != theirs).nnz == 0 and mine.shape == theirs.shape


def test_prediction_is_the_pipelines_to_the_last_digit(components: list, texts: list[str]) -> None:
    *readers, classifier = components
    assert isinstance(classifier, TfidfLogisticRegressionClassifier)
    messages = [Message.build(text) for text in texts]
    for reader in readers:
        reader.process(messages)

    expected = classifier.clf.predict_proba(classifier._create_X(messages))
    classifier.process(messages)
    # Nothing to featurize (Rasa's own path cannot stack an empty row): the biases alone.
    empty = classifier.process([Message.build("")])[0]
    nothing = classifier.clf.predict_proba(np.zeros((1, classifier._idf.size)))[0]
    assert empty.get("intent")["confidence"] == max(nothing)

    names = list(classifier.clf.classes_)
    for message, probabilities in zip(messages, expected, strict=True):
        ranking = message.get("intent_ranking")
        assert message.get("intent")["name"] == names[int(np.argmax(probabilities))]
        for entry in ranking:
            assert abs(entry["confidence"] - probabilities[names.index(entry["name"])]) < 1e-12
    assert len(messages) > 2000
