"""Data sources for every family, as `datasets.DatasetDict`s with the columns the families read
(`image` and `label` for images)."""

from __future__ import annotations

import logging

from datasets import DatasetDict

from .digits import load_digits_dataset

logger = logging.getLogger(__name__)

EMBEDDED_DATASETS = {"digits": load_digits_dataset}

VALIDATION_FRACTION = 0.1


def load_source(name: str) -> DatasetDict:
    """Loads a data source by name. Every split it has is returned; none may be empty."""
    if name not in EMBEDDED_DATASETS:
        raise ValueError(f"Unknown --dataset {name!r}; the embedded datasets are: {', '.join(sorted(EMBEDDED_DATASETS))}")
    data = EMBEDDED_DATASETS[name]()
    for split, rows in data.items():
        if len(rows) == 0:
            raise ValueError(f"Split {split!r} of dataset {name!r} is empty")
    return data


def with_validation_split(data: DatasetDict, seed: int, fraction: float = VALIDATION_FRACTION) -> DatasetDict:
    """Adds a `validation` split carved from `train` when the source has none (seeded, stratified by label)."""
    if "validation" in data:
        return data
    stratify = "label" if "label" in data["train"].column_names else None
    parts = data["train"].train_test_split(test_size=fraction, seed=seed, stratify_by_column=stratify)
    data = DatasetDict({**data, "train": parts["train"], "validation": parts["test"]})
    logger.info("made a validation split from train: %s", split_sizes(data))
    return data


def split_sizes(data: DatasetDict) -> dict[str, int]:
    return {split: len(rows) for split, rows in data.items()}


__all__ = ["load_source", "with_validation_split", "split_sizes", "load_digits_dataset", "EMBEDDED_DATASETS"]
