"""The intent classifier's own prediction gives what the sklearn pipeline it was trained
as would give, on every held-out example of every language."""

from __future__ import annotations

import numpy as np
from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot.classifier import TfidfLogisticRegressionClassifier
from bot.evaluation import HOLDOUT_DIR
from bot.settings import Settings
from bot.training import model_path


def test_prediction_is_the_pipelines_to_the_last_digit(model_settings: Settings) -> None:
    agent = Agent.load(str(model_path(model_settings)))
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    nodes = runner._instantiated_nodes  # type: ignore[attr-defined]
    classifier = next(node._component for node in nodes.values()
                      if isinstance(node._component, TfidfLogisticRegressionClassifier))
    featurizers = [node._component for name, node in nodes.items()
                   if name.startswith(("run_bot.tokenizer", "run_CountVectorsFeaturizer"))]
    texts = [e.get("text") for path in sorted(HOLDOUT_DIR.glob("*.yml"))
             for e in load_data(str(path)).intent_examples]
    texts.append("x" * 2000)
    messages = [Message.build(text) for text in texts]
    for featurizer in featurizers:
        featurizer.process(messages)

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
