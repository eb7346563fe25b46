"""Rasa's logistic-regression intent classifier, on tf-idf weighted features.

Rasa's count features weigh every word and character n-gram by how often it occurs,
so the words every message shares ("i", "my", "please", "please help") weigh as much
as the ones that tell intents apart ("passport", "agency", "right now"). Reweighting
by inverse document frequency (with sublinear term frequency) and regularising less
(``C``) lifted held-out macro-F1 by 0.02-0.05 per language in our measurements
(docs/eval.md). Everything else (training, prediction, the ranking, persistence with
skops) is Rasa's own ``LogisticRegressionClassifier``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
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
        # Prediction multiplies the features by ``coef_.T``; scipy needs that
        # C-contiguous and copies it on every message otherwise (~3 ms a turn).
        classifier = component.clf[-1]
        classifier.coef_ = np.asfortranarray(classifier.coef_)
        return component
