"""Peak signal-to-noise ratio between images, in decibels, averaged over images."""

import datasets
import evaluate
import numpy as np
from skimage.metrics import peak_signal_noise_ratio

_DESCRIPTION = (
    "PSNR = 10 * log10(data_range ** 2 / MSE) for each image (MSE over its channels and pixels), by scikit-image's "
    "peak_signal_noise_ratio, averaged over the images. An image identical to its reference has infinite PSNR."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (array of shape (n, channels, height, width)): reconstructed or generated images.
    references (array of the same shape): the target images.
    data_range (float): the span of possible pixel values: 1.0 for pixels in [0, 1] (default), 255 for 8-bit.
Returns:
    psnr (float): in dB, higher is better.
"""

IMAGES = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float32"))))


class PSNR(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": IMAGES, "references": IMAGES}),
        )

    def _compute(self, predictions, references, data_range=1.0):
        predictions, references = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
        if predictions.size == 0:
            raise ValueError("psnr needs at least one prediction, got none")
        if predictions.shape != references.shape:
            raise ValueError(f"psnr: predictions {predictions.shape} and references {references.shape} differ in shape")
        if not data_range > 0:
            raise ValueError(f"psnr: data_range must be > 0, got {data_range}")
        with np.errstate(divide="ignore"):  # an image equal to its reference: MSE 0, PSNR inf
            per_image = [
                peak_signal_noise_ratio(reference, prediction, data_range=data_range)
                for prediction, reference in zip(predictions, references)
            ]
        return {"psnr": float(np.mean(per_image))}
