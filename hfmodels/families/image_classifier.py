"""The image classifier family: images with a class label each."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from PIL import Image

from ..models.image_classifier import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierImageProcessor,
)
from .base import Family, class_label_fields, held_out_split, image_shape_of, register_family

logger = logging.getLogger(__name__)

CONFUSION_MATRIX = "confusion_matrix.png"


@register_family
class ImageClassifierFamily(Family):
    name = "image-classifier"
    config_class = ImageClassifierConfig
    model_class = ImageClassifierForImageClassification
    processor_class = ImageClassifierImageProcessor
    pipeline_tag = "image-classification"
    columns = ("image", "label")
    default_dataset = "digits"
    metric_names = ("accuracy",)
    main_metric = "accuracy"
    default_epochs = 30
    default_learning_rate = 3e-3
    decodes_images = True

    def build(self, train_split: Dataset, overrides: dict[str, Any], tokenizer: str | None = None,
              backbone: str | None = None, text_backbone: str | None = None):
        if backbone is None or tokenizer or text_backbone:
            return super().build(train_split, overrides, tokenizer, text_backbone=text_backbone)
        return build_on_backbone(self, train_split, overrides, backbone, all_stages=False)

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> ImageClassifierConfig:
        fitted = {**image_shape_of(train_split), **class_label_fields(train_split.features["label"].names)}
        return ImageClassifierConfig(**{**fitted, **overrides})

    def build_processor(self, config: ImageClassifierConfig) -> ImageClassifierImageProcessor:
        return centered_image_processor(self.processor_class, config, crop=True)

    def transform(self, processor: ImageClassifierImageProcessor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            images = [random_shift(image) for image in batch["image"]] if train else batch["image"]
            inputs = processor(images, return_tensors="pt")
            return {"pixel_values": inputs["pixel_values"], "labels": torch.tensor(batch["label"])}

        return to_inputs

    def metrics_for(self, config: ImageClassifierConfig) -> tuple[str, ...]:
        binary = ("f1", "sensitivity_specificity", "roc_auc") if config.num_labels == 2 else ()
        return self.metric_names + binary

    def metric_inputs(self, outputs, batch):
        inputs = {"predictions": outputs.logits.argmax(-1), "references": batch["labels"]}
        if outputs.logits.shape[-1] == 2:  # binary: class 1's probability (its ROC AUC equals class 0's)
            inputs["prediction_scores"] = outputs.logits.softmax(-1)[:, 1]
        return inputs

    def metric_kwargs(self, metric_name: str, config: ImageClassifierConfig) -> dict[str, Any]:
        if config.num_labels != 2 or metric_name not in ("f1", "sensitivity_specificity"):
            return {}
        positive = positive_class(config)
        return {"average": "binary", "pos_label": positive} if metric_name == "f1" else {"pos_label": positive}

    def baselines(
        self, data: DatasetDict, split: str, config: ImageClassifierConfig | None = None, processor=None
    ) -> dict[str, dict[str, float]]:
        """A logistic regression (scikit-learn) on the pixels the model reads, fitted on train, its classes weighted
        as the model's loss weights them, scored with the model's metrics on the same split."""
        from sklearn.linear_model import LogisticRegression

        from ..metrics import load_metric

        config = config or self.build_config(data["train"], {})
        processor = processor or self.build_processor(config)
        train_pixels, scored_pixels = (pixels_of(data[name], processor, self) for name in ("train", split))
        regression = LogisticRegression(max_iter=500, class_weight="balanced" if config.class_weights else None)
        regression.fit(train_pixels, data["train"]["label"])
        inputs = {"predictions": regression.predict(scored_pixels), "references": np.asarray(data[split]["label"])}
        if config.num_labels == 2:
            inputs["prediction_scores"] = regression.predict_proba(scored_pixels)[:, 1]
        scores = {}
        for name in self.metrics_for(config):
            metric = load_metric(name, keep_in_memory=True)
            given = {key: value for key, value in inputs.items() if key in metric.features}
            scores.update(metric.compute(**given, **self.metric_kwargs(name, config)))
        side = config.image_size
        return {f"logistic regression on the {side}x{side} pixels": scores}

    def write_artifacts(self, model, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        return write_confusion_matrix(self, model, processor, data, output_dir)


def build_on_backbone(family: Family, train_split: Dataset, overrides: dict[str, Any], backbone: str,
                      all_stages: bool) -> tuple[Any, Any]:
    """A model of `family` whose encoder is the pretrained `--backbone` (its weights loaded, its last feature map read,
    or with `all_stages` every stage's), and a processor that feeds it what it was trained on: its channels, and its
    preprocessor's mean, std and size (`--image-size` first; without either, the data's default size)."""
    from ..models.backbone import backbone_config_dict
    from ..pretrained import ModelReference
    from ..pretrained.vision import check_forward, fitted_image_processor, load_backbone, preprocessing

    if "backbone_config" in overrides:
        raise ValueError("--model-config backbone_config with --backbone: the backbone's config comes from it")
    reference = ModelReference.parse("--backbone", backbone)
    pretrained = load_backbone(reference, all_stages)
    trained_on = preprocessing(reference)
    fitted = image_shape_of(train_split)
    channels = pretrained.config.num_channels
    side = overrides.get("image_size") or trained_on.get("image_size") or fitted["image_size"]
    origin = ("--image-size" if "image_size" in overrides else "the backbone's preprocessor"
              if "image_size" in trained_on else "the first image's shorter side, at most 64; set --image-size")
    logger.info("--backbone %s: a %s, %dx%d input images (%s), %d channel(s)%s", reference,
                type(pretrained).__name__, side, side, origin, channels,
                f" (the {fitted['num_channels']}-channel images are converted)"
                if fitted["num_channels"] != channels else "")
    check_forward(reference, pretrained, channels, side)
    config = family.build_config(train_split, {**overrides, "num_channels": channels, "image_size": side,
                                               "backbone_config": backbone_config_dict(pretrained.config)})
    model = family.model_class(config)
    model.base_model.backbone.load_state_dict(pretrained.state_dict())
    return model, fitted_image_processor(reference, family.build_processor(config), channels)


def pixels_of(split: Dataset, processor, family: Family, chunk: int = 256) -> np.ndarray:
    """The images of a split as the model reads them, one flat row each: (n, channels * height * width)."""
    to_inputs = family.transform(processor, train=False)
    parts = [to_inputs(split[start : start + chunk])["pixel_values"].flatten(1).numpy()
             for start in range(0, len(split), chunk)]
    return np.concatenate(parts)


def centered_image_processor(processor_class: type, config, crop: bool = False):
    """The image processor of a config's channels and size, mapping pixels to [-1, 1]. It resizes images to the
    config's square size, or with `crop` resizes the shorter side to it and keeps the centre square, so that a
    non-square image keeps its proportions (as the decoded images of data/decoded.py)."""
    side = config.image_size
    resizing = ({"size": {"shortest_edge": side}, "do_center_crop": True, "crop_size": {"height": side, "width": side}}
                if crop else {"size": {"height": side, "width": side}})
    return processor_class(
        num_channels=config.num_channels,
        image_mean=[0.5] * config.num_channels,
        image_std=[0.5] * config.num_channels,
        **resizing,
    )


def write_confusion_matrix(family: Family, model, processor, data: DatasetDict, output_dir: Path) -> list[str]:
    """A classifier's confusion matrix on the held-out split the results are reported on."""
    from sklearn.metrics import confusion_matrix

    split = data[held_out_split(data)]
    to_inputs = family.transform(processor, train=False)
    model.eval()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(split), 256):
            inputs = {k: v.to(model.device) for k, v in to_inputs(split[start : start + 256]).items() if k != "labels"}
            predictions += model(**inputs).logits.argmax(-1).tolist()
    config = model.config
    names = [config.id2label[i] for i in range(config.num_labels)]
    matrix = confusion_matrix(split["label"], predictions, labels=list(range(len(names))))
    save_confusion_matrix(matrix, names, output_dir / CONFUSION_MATRIX)
    return [CONFUSION_MATRIX]


def save_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path) -> None:
    from matplotlib.figure import Figure

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


def positive_class(config) -> int:
    """The class sensitivity is measured on: one named like a finding (PNEUMONIA, POSITIVE, ...), else class 1."""
    for index, name in config.id2label.items():
        if str(name).upper() in ("PNEUMONIA", "POSITIVE", "ABNORMAL", "DISEASE", "YES", "TRUE"):
            return int(index)
    return 1
