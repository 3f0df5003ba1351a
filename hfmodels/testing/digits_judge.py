"""An independent judge of generated digits, for tests and benchmarks of the generative families: scikit-learn
models fitted on the digits' own pixels (no hfmodels model), so a generator cannot please the judge by sharing its
mistakes.

- `DigitsJudge.classify(images)`: an RBF support vector classifier's class and confidence (its top probability);
- `DigitsJudge.frechet_distance(images)`: the Frechet distance between Gaussians fitted to the PCA features of the
  images and of the test split (the FID's formula, on features a generator was not trained on).

Images are (n, 1, 8, 8) tensors or arrays, pixels in [0, 1], as `VAEModel.sample` and
`DiffusionForImageGeneration.sample` give them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FEATURES = 16  # principal components of the pixels the Frechet distance compares


@dataclass
class DigitsJudge:
    classifier: Any  # sklearn.svm.SVC
    pca: Any  # sklearn.decomposition.PCA
    test_pixels: np.ndarray  # (n, 64), pixels in [0, 1]

    def classify(self, images) -> tuple[np.ndarray, np.ndarray]:
        """(classes (n,), confidences (n,)) of the images."""
        probabilities = self.classifier.predict_proba(flat_pixels(images))
        return self.classifier.classes_[probabilities.argmax(1)], probabilities.max(1)

    def frechet_distance(self, images, reference=None) -> float:
        """Between the images and `reference` (default: the test split) in the judge's PCA features."""
        reference = self.test_pixels if reference is None else flat_pixels(reference)
        return frechet_distance(self.pca.transform(flat_pixels(images)), self.pca.transform(reference))


def digits_judge() -> DigitsJudge:
    """Fitted on the train split of `digits` (hfmodels' fixed split); scored against its test split."""
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    from ..data import load_source

    data = load_source("digits")
    train, test = (np.stack([np.asarray(image, dtype=np.float32) / 255 for image in data[split]["image"]])
                   for split in ("train", "test"))
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    classifier = SVC(probability=True, random_state=0).fit(train, data["train"]["label"])
    return DigitsJudge(classifier, PCA(n_components=FEATURES, random_state=0).fit(train), test)


def flat_pixels(images) -> np.ndarray:
    images = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (1, 8, 8):
        raise ValueError(f"the digits judge reads (n, 1, 8, 8) images, got shape {images.shape}")
    return images.reshape(len(images), -1).astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mean_a - mean_b||^2 + Tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)) of two sets of feature rows."""
    from scipy import linalg

    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


__all__ = ["DigitsJudge", "digits_judge", "frechet_distance"]
