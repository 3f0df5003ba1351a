"""Sensitivity and specificity of a binary classifier: how many positives and how many negatives it finds."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import recall_score

_DESCRIPTION = (
    "Sensitivity (recall of the positive class) = true positives / all positives; specificity (recall of the "
    "negative class) = true negatives / all negatives; both from scikit-learn's recall_score on the labels made "
    "binary (pos_label or not)."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    pos_label (int): the positive class (e.g. the index of PNEUMONIA); every other label is negative.
Returns:
    sensitivity (float): in [0, 1]; NaN when the references hold no positive.
    specificity (float): in [0, 1]; NaN when the references hold no negative.
"""


class SensitivitySpecificity(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, pos_label=1):
        if len(predictions) == 0:
            raise ValueError("sensitivity_specificity needs at least one prediction, got none")
        predicted, actual = np.asarray(predictions) == pos_label, np.asarray(references) == pos_label
        # NaN, not 0, when the references hold no positive (no negative): the rate is undefined
        sensitivity = recall_score(actual, predicted, pos_label=True, zero_division=np.nan)
        specificity = recall_score(actual, predicted, pos_label=False, zero_division=np.nan)
        return {"sensitivity": float(sensitivity), "specificity": float(specificity)}
