"""What makes one model family different from another, in one place for the training loop and the CLI.

The loop never asks which family it trains: it asks the family to build a model for the data, to turn
dataset rows into model inputs, and to turn model outputs into what its metrics compare.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from datasets import Dataset, DatasetDict
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput


# Images are resized to the smaller of their own side and this, unless the config's `image_size` is set.
MAX_DEFAULT_IMAGE_SIZE = 64
GRAYSCALE_MODES = ("1", "L", "I", "I;16", "F")


def image_shape_of(train_split: Dataset) -> dict[str, int]:
    """`num_channels` and `image_size` for a config, fitted to the first training image."""
    first = train_split[0]["image"]
    return {
        "num_channels": 1 if first.mode in GRAYSCALE_MODES else 3,
        "image_size": min(max(first.size), MAX_DEFAULT_IMAGE_SIZE),
    }


class Family:
    name: ClassVar[str]  # the `--model` value, e.g. "image-classifier"
    config_class: ClassVar[type[PreTrainedConfig]]
    model_class: ClassVar[type[PreTrainedModel]]  # the model that is trained and saved
    processor_class: ClassVar[type]
    pipeline_tag: ClassVar[str]
    default_dataset: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    main_metric: ClassVar[str]  # the metric that picks the best epoch
    greater_is_better: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 10
    default_learning_rate: ClassVar[float] = 1e-3

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> PreTrainedConfig:
        """A config fitted to the data (labels, image size, ...) with the user's overrides applied."""
        raise NotImplementedError

    def build_processor(self, config: PreTrainedConfig):
        raise NotImplementedError

    def transform(self, processor, train: bool) -> Callable[[dict[str, list]], dict[str, Any]]:
        """A batched `datasets.Dataset.with_transform` function: raw rows -> model inputs.

        Draw augmentation randomness from the `random` module: the loader seeds it for every batch from
        (seed, epoch, batch), which keeps resumed runs bit-identical to uninterrupted ones."""
        raise NotImplementedError

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return torch.utils.data.default_collate(examples)

    def metric_inputs(self, outputs: ModelOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the metrics compare, as tensors with the batch first (gathered across processes)."""
        raise NotImplementedError

    def metric_kwargs(self, metric_name: str, config: PreTrainedConfig) -> dict[str, Any]:
        """Extra arguments for one metric's `compute` (e.g. the number of classes)."""
        return {}

    def baselines(
        self, data: DatasetDict, split: str, config: PreTrainedConfig | None = None
    ) -> dict[str, dict[str, float]]:
        """Reference scores on `data[split]` from simple models (e.g. scikit-learn), keyed by baseline name.
        `config` is the trained model's, for baselines sized like the model (None: the family's defaults)."""
        return {}

    def write_artifacts(self, model: PreTrainedModel, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        """Writes family-specific pictures (grids, maps, ...) into the run folder; returns their file names."""
        return []

    def build_model(self, train_split: Dataset, overrides: dict[str, Any]) -> PreTrainedModel:
        return self.model_class(self.build_config(train_split, overrides))
