"""Mean squared error between images (or any arrays of one shape)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "MSE = mean over every image and pixel of (prediction - reference) ** 2."

_KWARGS_DESCRIPTION = """
Args:
    predictions (array of shape (n, channels, height, width)): reconstructed or generated images.
    references (array of the same shape): the target images.
Returns:
    mse (float): >= 0, lower is better.
"""

IMAGES = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float32"))))


class MSE(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": IMAGES, "references": IMAGES}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
        if predictions.size == 0:
            raise ValueError("mse needs at least one prediction, got none")
        if predictions.shape != references.shape:
            raise ValueError(f"mse: predictions {predictions.shape} and references {references.shape} differ in shape")
        return {"mse": float(np.mean((predictions - references) ** 2))}
