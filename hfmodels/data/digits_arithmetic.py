"""Digits arithmetic: each digits image paired with a short instruction ("the digit plus two", "subtract one from
the digit"); the label is (digit + offset) mod 10. Neither the image nor the text alone tells the label: given the
image, every one of the offsets is equally likely (an image-only model can reach about 1 / len(OFFSETS)); given the
text, every digit is (a text-only model about 1 / 10). A model must read both.

The images and their train/test split are those of `digits.py`; instructions are drawn with a fixed seed.
"""

from __future__ import annotations

import random

from datasets import ClassLabel, DatasetDict, concatenate_datasets

from .digits import load_digits_dataset

OFFSETS = (-3, -2, -1, 1, 2, 3)
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}
TEMPLATES = {
    1: ("the digit plus {n}", "add {n} to the digit", "{n} more than the digit"),
    -1: ("the digit minus {n}", "subtract {n} from the digit", "{n} less than the digit"),
}
INSTRUCTION_SEED = 0
TEXTS_PER_TRAIN_IMAGE = 3
VALIDATION_FRACTION = 0.1


def instruction(offset: int, rng: random.Random) -> str:
    """A text that asks for `offset` added to the digit, in one of the templates."""
    sign = 1 if offset > 0 else -1
    return rng.choice(TEMPLATES[sign]).format(n=NUMBER_WORDS[abs(offset)])


def load_digits_arithmetic_dataset() -> DatasetDict:
    """Splits `train` / `validation` / `test` with columns `image`, `text`, `label` (the class (digit + offset) mod
    10), `digit` and `offset`. Validation holds a seeded tenth of the digits training images (stratified by digit),
    so no validation image is seen in training; each remaining training image comes with `TEXTS_PER_TRAIN_IMAGE`
    instructions (different rows), the validation and test images with one each."""
    digits = load_digits_dataset()
    parts = digits["train"].train_test_split(
        test_size=VALIDATION_FRACTION, seed=INSTRUCTION_SEED, stratify_by_column="label"
    )
    images = {"train": parts["train"], "validation": parts["test"], "test": digits["test"]}
    rng = random.Random(INSTRUCTION_SEED)
    splits = {}
    for split, rows in images.items():
        if split == "train":
            rows = concatenate_datasets([rows] * TEXTS_PER_TRAIN_IMAGE)
        offsets = [rng.choice(OFFSETS) for _ in range(len(rows))]
        texts = [instruction(offset, rng) for offset in offsets]
        labels = [(digit + offset) % 10 for digit, offset in zip(rows["label"], offsets)]
        rows = rows.rename_column("label", "digit").add_column("text", texts).add_column("offset", offsets)
        splits[split] = rows.add_column("label", labels).cast_column(
            "label", ClassLabel(names=[str(d) for d in range(10)])
        )
    return DatasetDict(splits)
