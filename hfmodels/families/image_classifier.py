"""The image classifier family: images with a class label each."""

from __future__ import annotations

import random
from typing import Any

import torch
from datasets import Dataset
from PIL import Image

from ..models.image_classifier import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierImageProcessor,
)
from .base import Family

# Images are resized to the smaller of their own side and this, unless `image_size` is set.
MAX_DEFAULT_IMAGE_SIZE = 64


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
        first = train_split[0]["image"]
        fitted = {
            "num_channels": 1 if first.mode in ("1", "L", "I", "I;16", "F") else 3,
            "image_size": min(max(first.size), MAX_DEFAULT_IMAGE_SIZE),
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


def random_shift(image: Image.Image, fraction: float = 1 / 8) -> Image.Image:
    """Augmentation: moves the image by up to `fraction` of its size in each direction (empty border black)."""
    max_x, max_y = max(1, round(image.width * fraction)), max(1, round(image.height * fraction))
    dx, dy = random.randint(-max_x, max_x), random.randint(-max_y, max_y)
    return image.transform(image.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), fillcolor=0)
