"""F1 score of a classifier: the harmonic mean of precision and recall, per class and averaged."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import f1_score

_DESCRIPTION = "F1 = 2 * precision * recall / (precision + recall), from scikit-learn's f1_score."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    average (str): "macro" (default: the unweighted mean over classes), "micro", "weighted", or "binary".
    labels (list of int): the classes to average over (default: those present in predictions or references).
    pos_label (int): the positive class when average="binary".
Returns:
    f1 (float): in [0, 1], higher is better.
"""


class F1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, average="macro", labels=None, pos_label=1):
        if len(predictions) == 0:
            raise ValueError("f1 needs at least one prediction, got none")
        score = f1_score(
            np.asarray(references), np.asarray(predictions), average=average, labels=labels, pos_label=pos_label,
            zero_division=0,
        )
        return {"f1": float(score)}
