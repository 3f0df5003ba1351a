"""The image classifier family: images with a class label each."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import confusion_matrix

from ..models.image_classifier import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierImageProcessor,
)
from .base import Family, image_shape_of

CONFUSION_MATRIX = "confusion_matrix.png"


class ImageClassifierFamily(Family):
    name = "image-classifier"
    config_class = ImageClassifierConfig
    model_class = ImageClassifierForImageClassification
    processor_class = ImageClassifierImageProcessor
    pipeline_tag = "image-classification"
    default_dataset = "digits"
    metric_names = ("accuracy",)
    main_metric = "accuracy"
    default_epochs = 30
    default_learning_rate = 3e-3

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> ImageClassifierConfig:
        names = train_split.features["label"].names
        fitted = {
            **image_shape_of(train_split),
            "id2label": dict(enumerate(names)),
            "label2id": {name: index for index, name in enumerate(names)},
        }
        return ImageClassifierConfig(**{**fitted, **overrides})

    def build_processor(self, config: ImageClassifierConfig) -> ImageClassifierImageProcessor:
        return ImageClassifierImageProcessor(
            num_channels=config.num_channels,
            size={"height": config.image_size, "width": config.image_size},
            image_mean=[0.5] * config.num_channels,
            image_std=[0.5] * config.num_channels,
        )

    def transform(self, processor: ImageClassifierImageProcessor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            images = [random_shift(image) for image in batch["image"]] if train else batch["image"]
            inputs = processor(images, return_tensors="pt")
            return {"pixel_values": inputs["pixel_values"], "labels": torch.tensor(batch["label"])}

        return to_inputs

    def metric_inputs(self, outputs, batch):
        return {"predictions": outputs.logits.argmax(-1), "references": batch["labels"]}

    def write_artifacts(self, model, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        """The confusion matrix on the held-out split the results are reported on."""
        split = data["test"] if "test" in data else data["validation"]
        model.eval()
        predictions = []
        with torch.no_grad():
            for start in range(0, len(split), 256):
                images = split[start : start + 256]["image"]
                pixel_values = processor(images, return_tensors="pt")["pixel_values"].to(model.device)
                predictions += model(pixel_values).logits.argmax(-1).tolist()
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        matrix = confusion_matrix(split["label"], predictions, labels=list(range(len(names))))
        save_confusion_matrix(matrix, names, output_dir / CONFUSION_MATRIX)
        return [CONFUSION_MATRIX]


def save_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path) -> None:
    figure = Figure(figsize=(1.5 + 0.45 * len(names), 1.2 + 0.45 * len(names)))
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", fontsize=8, color=color)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"Confusion matrix ({matrix.sum()} held-out images)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def random_shift(image: Image.Image, fraction: float = 1 / 8) -> Image.Image:
    """Augmentation: moves the image by up to `fraction` of its size in each direction (empty border black)."""
    max_x, max_y = max(1, round(image.width * fraction)), max(1, round(image.height * fraction))
    dx, dy = random.randint(-max_x, max_x), random.randint(-max_y, max_y)
    return image.transform(image.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), fillcolor=0)
