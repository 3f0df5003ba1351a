"""scikit-learn's digits (1,797 real 8x8 images shipped with scikit-learn) as a datasets.DatasetDict."""

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
from PIL import Image as PILImage

# The one fixed split every number in this project is measured on.
DIGITS_TEST_SIZE = 0.25
DIGITS_SPLIT_SEED = 0


def digits_pixels() -> tuple[np.ndarray, np.ndarray]:
    """Returns the digits as 8-bit grayscale images (n, 8, 8), pixel = round(value * 255 / 16), and labels."""
    from sklearn.datasets import load_digits  # here, not at import: `hfmodels.data` is read by commands without it

    digits = load_digits()
    images = np.rint(digits.images * 255 / 16).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def load_digits_dataset() -> DatasetDict:
    """The fixed train/test split: `train_test_split(test_size=0.25, random_state=0, stratify=y)`."""
    from sklearn.model_selection import train_test_split

    images, labels = digits_pixels()
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})

    def to_dataset(x: np.ndarray, y: np.ndarray) -> Dataset:
        return Dataset.from_dict(
            {"image": [PILImage.fromarray(pixels, mode="L") for pixels in x], "label": y.tolist()}, features=features
        )

    return DatasetDict(train=to_dataset(train_x, train_y), test=to_dataset(test_x, test_y))
