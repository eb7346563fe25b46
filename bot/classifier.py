"""Rasa's logistic-regression intent classifier, on tf-idf weighted features.

Rasa's count features weigh every word and character n-gram by how often it occurs,
so the words every message shares ("i", "my", "please", "please help") weigh as much
as the ones that tell intents apart ("passport", "agency", "right now"). Reweighting
by inverse document frequency (with sublinear term frequency) and regularising less
(``C``) lifted held-out macro-F1 by 0.02-0.05 per language in our measurements
(docs/eval.md). Everything else (training, prediction, the ranking, persistence with
skops) is Rasa's own ``LogisticRegressionClassifier``.

Prediction is the same arithmetic as the sklearn pipeline, done on the message's few
non-zero features: sklearn's checks, sparse-matrix construction and full-width products
cost ~4 ms a message, a fifth of a turn; this costs ~0.1 ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

__all__ = ["TfidfLogisticRegressionClassifier"]

# skops refuses to load types it does not know; a tf-idf transformer keeps its
# weights in a sparse matrix, which is data, not code.
_TRUSTED = frozenset({"scipy.sparse._csr.csr_matrix"})


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TfidfLogisticRegressionClassifier(LogisticRegressionClassifier):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "C": 1.0}

    def __init__(self, config: dict[str, Any], name: str, model_storage: ModelStorage,
                 resource: Resource) -> None:
        super().__init__(config, name, model_storage, resource)
        self.clf = Pipeline([
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ("classifier", LogisticRegression(
                C=self.config["C"], solver=self.config["solver"], max_iter=self.config["max_iter"],
                tol=self.config["tol"], random_state=self.config["random_state"],
                class_weight="balanced",
            )),
        ])

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> TfidfLogisticRegressionClassifier:
        import skops.io as sio

        with model_storage.read_from(resource) as model_dir:
            path = model_dir / f"{resource.name}.skops"
            untrusted = set(sio.get_untrusted_types(file=path))
            if not untrusted <= _TRUSTED:
                raise ValueError(f"refusing to load {path.name}: it holds {sorted(untrusted - _TRUSTED)}")
            component = cls(config, execution_context.node_name, model_storage, resource)
            component.clf = sio.load(path, trusted=sorted(untrusted))
        tfidf, classifier = component.clf[0], component.clf[-1]
        if not (tfidf.sublinear_tf and tfidf.norm == "l2" and len(classifier.classes_) > 2
                and classifier.multi_class in ("auto", "multinomial")):
            raise ValueError(f"{resource.name}: not the tf-idf, multinomial model this class predicts with")
        # Columns of the weights are gathered per feature: Fortran order keeps each contiguous.
        component._idf = tfidf.idf_
        component._weights = np.asfortranarray(classifier.coef_)
        component._intercept = classifier.intercept_
        return component

    def process(self, messages: list[Message]) -> list[Message]:
        """The intent and the ranking, exactly as ``clf.predict_proba`` would give them."""
        names = self.clf.classes_
        for message in messages:
            columns, counts = self._sentence_features(message)
            weighted = (np.log(counts) + 1.0) * self._idf[columns]  # sublinear tf, then idf
            norm = np.sqrt(np.dot(weighted, weighted))
            scores = self._weights[:, columns] @ (weighted / norm if norm else weighted) + self._intercept
            probabilities = softmax(scores)
            ranking = [{"name": names[i], "confidence": probabilities[i]}
                       for i in np.argsort(-probabilities, kind="stable")]
            message.set(INTENT, ranking[0], add_to_output=True)
            if self.config["ranking_length"] > 0:
                ranking = ranking[: self.config["ranking_length"]]
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    @staticmethod
    def _sentence_features(message: Message) -> tuple[np.ndarray, np.ndarray]:
        """The non-zero columns and counts of the message's sentence features, side by
        side as Rasa's ``_create_X`` stacks them: sparse ones in pipeline order, then dense."""
        sentence = [f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE]
        columns, counts, offset = [], [], 0
        for features in sorted(sentence, key=lambda f: not f.is_sparse()):
            matrix = features.features
            if features.is_sparse():
                columns.append(matrix.col + offset)
                counts.append(matrix.data)
            else:  # stored sparse by Rasa's _create_X: its non-zero entries
                nonzero = np.flatnonzero(matrix[0])
                columns.append(nonzero + offset)
                counts.append(matrix[0][nonzero])
            offset += matrix.shape[1]
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(columns), np.concatenate(counts).astype(np.float64)
