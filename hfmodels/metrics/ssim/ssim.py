"""Structural similarity (SSIM, Wang et al. 2004) between images, averaged over images and channels."""

import datasets
import evaluate
import numpy as np
from skimage.metrics import structural_similarity

_DESCRIPTION = (
    "SSIM compares local means, variances and the covariance of two images in every win_size x win_size window. "
    "Computed by scikit-image's structural_similarity with its defaults (a uniform window, sample covariances, "
    "K1=0.01 and K2=0.03 of data_range, the mean over the windows that fit inside the image), each image with its "
    "channels on axis 0 (the mean over channels); the mean over images is reported. Wang et al.'s own setting, an "
    "11x11 Gaussian window (scikit-image's gaussian_weights=True), does not fit 8x8 images such as digits."
)

_CITATION = """\
@article{wang2004ssim,
  title={Image quality assessment: from error visibility to structural similarity},
  author={Wang, Zhou and Bovik, Alan C and Sheikh, Hamid R and Simoncelli, Eero P},
  journal={IEEE Transactions on Image Processing}, volume={13}, number={4}, pages={600--612}, year={2004}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (array of shape (n, channels, height, width)): reconstructed or generated images.
    references (array of the same shape): the target images.
    data_range (float): the span of possible pixel values: 1.0 for pixels in [0, 1] (default), 255 for 8-bit.
    win_size (int): odd side of the window, at most the image's smaller side (default 7).
Returns:
    ssim (float): in [-1, 1], 1 for identical images, higher is better.
"""

IMAGES = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float32"))))


class SSIM(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": IMAGES, "references": IMAGES}),
        )

    def _compute(self, predictions, references, data_range=1.0, win_size=7):
        x, y = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
        if x.size == 0:
            raise ValueError("ssim needs at least one prediction, got none")
        if x.ndim != 4 or x.shape != y.shape:
            raise ValueError(
                "ssim needs predictions and references of one shape (n, channels, height, width), "
                f"got {x.shape} and {y.shape}"
            )
        if not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0 or win_size > min(x.shape[2:]):
            side = min(x.shape[2:])
            raise ValueError(f"ssim: win_size={win_size!r} must be an odd integer from 3 to the image side {side}")
        if not data_range > 0:
            raise ValueError(f"ssim: data_range must be > 0, got {data_range}")

        per_image = [  # each (channels, height, width)
            structural_similarity(prediction, reference, data_range=data_range, win_size=win_size, channel_axis=0)
            for prediction, reference in zip(x, y)
        ]
        return {"ssim": float(np.mean(per_image))}
