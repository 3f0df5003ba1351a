"""What makes one model family different from another, in one place for the training loop and the CLI.

The loop never asks which family it trains: it asks the family to build a model for the data, to turn
dataset rows into model inputs, and to turn model outputs into what its metrics compare.

A family is declared once: a `Family` subclass decorated with `@register_family`. Everything else is found from
that declaration: `--model` and `family_of_config` read the registry, the card template is `<name>.md.jinja`, the
app's view is the one registered under the name, the Auto classes come from `hfmodels.models`. Family modules
import what only training and its pictures need (scikit-learn, matplotlib, the metrics) inside the functions that
use it, so reading the registry (`hfmodels predict`, `hfmodels app`) costs little more than the model code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Image, IterableDataset
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

# The default input size: the first training image's shorter side, but at most this (`--image-size` sets it).
MAX_DEFAULT_IMAGE_SIZE = 64
GRAYSCALE_MODES = ("1", "L", "I", "I;16", "F")
HEADERS_READ = 32  # training images whose headers choose the channels


def image_shape_of(train_split: Dataset) -> dict[str, int]:
    """`num_channels` and `image_size` for a config, fitted to the training images, from their headers (no image is
    decoded here): grayscale when most of the first HEADERS_READ are; the first image's shorter side."""
    from ..data.images import opened

    rows = train_split.cast_column("image", Image(decode=False)).select(range(min(len(train_split), HEADERS_READ)))
    modes, sizes = [], []
    for index, image in enumerate(rows["image"]):
        with opened(image["bytes"] or image["path"], image["path"] or f"training image {index}") as picture:
            modes.append(picture.mode)
            sizes.append(picture.size)
    grayscale = sum(mode in GRAYSCALE_MODES for mode in modes)
    return {
        "num_channels": 1 if 2 * grayscale >= len(modes) else 3,
        "image_size": min(min(sizes[0]), MAX_DEFAULT_IMAGE_SIZE),
    }


def class_label_fields(names: list[str]) -> dict[str, dict]:
    """A config's `id2label` and `label2id` for classes named `names`, in their order."""
    return {"id2label": dict(enumerate(names)), "label2id": {name: index for index, name in enumerate(names)}}


# Config fields the data's labels set: a run started from a saved model takes them from its own data.
LABEL_FIELDS = ("id2label", "label2id", "num_classes")


def held_out_split(data: DatasetDict) -> str:
    """The split results are reported on: test when the source has one, else validation."""
    return "test" if "test" in data else "validation"


FAMILIES: dict[str, Family] = {}  # `--model` name -> the family; filled by `register_family`


def register_family(family_class: type[Family]) -> type[Family]:
    """Declares a family: the one place that makes `--model <family_class.name>` exist."""
    registered = FAMILIES.get(family_class.name)
    if registered is None:
        FAMILIES[family_class.name] = family_class()
    elif type(registered) is not family_class:
        raise ValueError(f"two families are named {family_class.name!r}: {type(registered).__name__} and "
                         f"{family_class.__name__}")
    return family_class


class Family:
    name: ClassVar[str]  # the `--model` value, e.g. "image-classifier"
    config_class: ClassVar[type[PreTrainedConfig]]
    model_class: ClassVar[type[PreTrainedModel]]  # the model that is trained and saved
    processor_class: ClassVar[type]
    pipeline_tag: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]  # the data columns its rows need, e.g. ("image", "label")
    default_dataset: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    main_metric: ClassVar[str]  # the metric that picks the best epoch
    greater_is_better: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 10
    default_learning_rate: ClassVar[float] = 1e-3
    # images decoded once at the config's image_size and num_channels, shorter side resized then centre-cropped
    # (data/decoded.py); the family's processor must resize and crop alike
    decodes_images: ClassVar[bool] = False
    default_ema_decay: ClassVar[float] = 0.0  # `--ema-decay` when not given; 0: the last weights are evaluated

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> PreTrainedConfig:
        """A config fitted to the data (labels, image size, ...) with the user's overrides applied."""
        raise NotImplementedError

    def build_processor(self, config: PreTrainedConfig):
        raise NotImplementedError

    def build(
        self, train_split: Dataset, overrides: dict[str, Any], tokenizer: str | None = None,
        backbone: str | None = None, text_backbone: str | None = None,
    ) -> tuple[PreTrainedModel, Any]:
        """The model to train and its processor. `tokenizer` (a folder or Hub id) is for text families, whose
        processor comes first because it fixes the vocabulary of the config; `backbone` / `text_backbone` (folders
        or Hub ids) are trained encoders, for the families that take them."""
        if tokenizer is not None:
            raise ValueError(f"--tokenizer is for text families; the {self.name} model reads images")
        self.refuse_backbones(backbone, text_backbone)
        model = self.build_model(train_split, overrides)
        return model, self.build_processor(model.config)

    def label_fields(self, train_split: Dataset) -> dict[str, Any]:
        """The config fields (LABEL_FIELDS) that `train_split`'s labels set."""
        config = self.build_config(train_split, {})
        return {field: getattr(config, field) for field in LABEL_FIELDS if hasattr(config, field)}

    def backbone_parts(self, model: PreTrainedModel) -> dict[str, torch.nn.Module]:
        """What `--freeze-backbone`, `--freeze-epochs` and `--backbone-learning-rate` act on, by name: the body
        (`base_model_prefix`), around which the head is."""
        if model.base_model is model:
            raise ValueError(f"--freeze-backbone, --freeze-epochs, --backbone-learning-rate: the {self.name} model "
                             "has no head apart from its body; there is no backbone to freeze")
        return {model.base_model_prefix: model.base_model}

    def refuse_backbones(self, backbone: str | None, text_backbone: str | None) -> None:
        """A family that takes no trained encoder says so."""
        if text_backbone is not None:
            raise ValueError(f"--text-backbone {text_backbone}: the {self.name} model has no text encoder to start "
                             "from it (fusion's text side takes one)")
        if backbone is not None:
            raise ValueError(f"--backbone {backbone}: the {self.name} model takes no pretrained backbone "
                             "(image-classifier, segmentation, text-classifier and fusion do; --init-from starts it "
                             "from a saved model of its own family)")

    def finish_build(self, model: PreTrainedModel, processor) -> None:
        """What `build` does once the model exists, also to a model loaded by `--init-from` (a text family fits its
        tokenizer's length and padding side to the model)."""

    def prepare(self, split: Dataset | IterableDataset, processor) -> Dataset | IterableDataset:
        """A split as the loaders read it, before `transform` (a language model packs texts into blocks here)."""
        return split

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

    def metrics_for(self, config: PreTrainedConfig) -> tuple[str, ...]:
        """The metrics a model of this config is scored with (e.g. more for a binary classifier)."""
        return self.metric_names

    def balanced_class_weights(self, train_split: Dataset) -> list[float]:
        """`--class-weights auto`: each class weighted by total / (classes * its count) in the train split, so
        every class adds the same total weight to the loss."""
        if not hasattr(self.config_class, "class_weights") or not isinstance(
            train_split.features.get("label"), ClassLabel
        ):
            raise ValueError(f"--class-weights auto is for classifiers with class-weighted losses; the {self.name} "
                             "model has none (segmentation: set --model-config class_weights=[...])")
        num_classes = train_split.features["label"].num_classes
        counts = np.bincount(train_split["label"], minlength=num_classes)
        if (counts == 0).any():
            missing = [train_split.features["label"].int2str(int(i)) for i in np.flatnonzero(counts == 0)]
            raise ValueError(f"--class-weights auto: the train split has no example of class(es) {missing}")
        return [round(float(w), 6) for w in counts.sum() / (num_classes * counts)]

    def metric_kwargs(self, metric_name: str, config: PreTrainedConfig) -> dict[str, Any]:
        """Extra arguments for one metric's `compute` (e.g. the number of classes)."""
        return {}

    def baselines(
        self, data: DatasetDict, split: str, config: PreTrainedConfig | None = None, processor=None
    ) -> dict[str, dict[str, float]]:
        """Reference scores on `data[split]` from simple models (e.g. scikit-learn), keyed by baseline name.
        `config` and `processor` are the trained model's, for baselines sized like the model and seeing the
        same inputs (None: the family's defaults)."""
        return {}

    def end_of_epoch(self, model: PreTrainedModel, epoch: int, run_dir: Path) -> None:
        """Runs on the main process after each epoch's evaluation (the weights evaluated are in `model`): pictures
        of the training's progress go into `run_dir`'s folders, which the run folder's next version keeps."""

    def write_artifacts(self, model: PreTrainedModel, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        """Writes family-specific pictures (grids, maps, ...) into the run folder; returns their file names."""
        return []

    def build_model(self, train_split: Dataset, overrides: dict[str, Any]) -> PreTrainedModel:
        return self.model_class(self.build_config(train_split, overrides))
