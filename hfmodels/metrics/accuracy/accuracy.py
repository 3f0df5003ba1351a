"""Accuracy: the fraction of predictions equal to their references."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score

_DESCRIPTION = (
    "Accuracy = correct predictions / all predictions, optionally weighted per sample (scikit-learn's accuracy_score)."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    normalize (bool): if False, return the number of correct predictions instead of the fraction.
    sample_weight (list of float): per-sample weights.
Returns:
    accuracy (float): in [0, 1], or a count when normalize=False.
"""


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        if len(predictions) == 0:
            raise ValueError("accuracy needs at least one prediction, got none")
        score = accuracy_score(
            np.asarray(references), np.asarray(predictions), normalize=normalize, sample_weight=sample_weight
        )
        return {"accuracy": float(score)}
