"""ROC AUC of a binary classifier: the chance that a random positive scores above a random negative."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import roc_auc_score

_DESCRIPTION = "Area under the ROC curve of the positive class's scores, from scikit-learn's roc_auc_score."

_KWARGS_DESCRIPTION = """
Args:
    prediction_scores (list of float): the model's probability (or any score) of the positive class.
    references (list of int): true labels.
    pos_label (int): the positive class; every other label is negative.
Returns:
    roc_auc (float): in [0, 1], 0.5 for chance; NaN when the references hold only one class.
"""


class RocAuc(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"prediction_scores": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, prediction_scores, references, pos_label=1):
        if len(prediction_scores) == 0:
            raise ValueError("roc_auc needs at least one score, got none")
        positive = np.asarray(references) == pos_label
        if positive.all() or not positive.any():  # one class only: the curve is undefined
            return {"roc_auc": float("nan")}
        return {"roc_auc": float(roc_auc_score(positive, np.asarray(prediction_scores)))}
