"""The segmentation family: images with a mask of class ids each; the model gives every pixel a class."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from PIL import Image

from ..data.segmentation import IGNORE_INDEX, mask_classes
from ..models.segmentation import UNetConfig, UNetForSemanticSegmentation, UNetImageProcessor
from .base import Family, class_label_fields, held_out_split, image_shape_of, register_family
from .image_classifier import build_on_backbone, centered_image_processor

PREDICTIONS_PICTURE = "predictions.png"
PICTURED_IMAGES = 8


@register_family
class SegmentationFamily(Family):
    name = "segmentation"
    config_class = UNetConfig
    model_class = UNetForSemanticSegmentation
    processor_class = UNetImageProcessor
    pipeline_tag = "image-segmentation"
    columns = ("image", "mask")
    default_dataset = "shapes"
    metric_names = ("mean_iou",)
    main_metric = "mean_iou"
    default_epochs = 10
    default_learning_rate = 3e-3

    def build(self, train_split: Dataset, overrides: dict[str, Any], tokenizer: str | None = None,
              backbone: str | None = None, text_backbone: str | None = None):
        if backbone is None or tokenizer or text_backbone:
            return super().build(train_split, overrides, tokenizer, text_backbone=text_backbone)
        return build_on_backbone(self, train_split, overrides, backbone, all_stages=True)

    def backbone_parts(self, model: UNetForSemanticSegmentation) -> dict[str, torch.nn.Module]:
        """On a pretrained backbone, the backbone alone: the feature pyramid is new and trains."""
        if model.config.backbone_config is None:
            return super().backbone_parts(model)
        return {"unet.backbone": model.unet.backbone}

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> UNetConfig:
        fitted = {
            **image_shape_of(train_split),
            **class_label_fields(mask_classes(train_split)),
            "semantic_loss_ignore_index": IGNORE_INDEX,
        }
        return UNetConfig(**{**fitted, **overrides})

    def build_processor(self, config: UNetConfig) -> UNetImageProcessor:
        return centered_image_processor(self.processor_class, config)

    def transform(self, processor: UNetImageProcessor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            pairs = zip(batch["image"], batch["mask"])
            if train:
                images, masks = zip(*(augment(image, mask) for image, mask in pairs))
            else:
                images, masks = batch["image"], batch["mask"]
            inputs = processor(list(images), segmentation_maps=list(masks), return_tensors="pt")
            return {"pixel_values": inputs["pixel_values"], "labels": inputs["labels"]}

        return to_inputs

    def metric_inputs(self, outputs, batch):
        return {"predictions": outputs.logits.argmax(1), "references": batch["labels"]}  # (batch, height, width) each

    def metric_kwargs(self, metric_name: str, config: UNetConfig) -> dict[str, Any]:
        names = [config.id2label[i] for i in range(config.num_labels)]
        return {"num_labels": config.num_labels, "ignore_index": config.semantic_loss_ignore_index,
                "label_names": names}

    def write_artifacts(self, model, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        """Held-out images with their true and predicted masks overlaid."""
        split = data[held_out_split(data)]
        rows = split[:PICTURED_IMAGES]
        inputs = processor(rows["image"], segmentation_maps=rows["mask"], return_tensors="pt")
        model.eval()
        with torch.no_grad():
            predicted = model(inputs["pixel_values"].to(model.device)).logits.argmax(1).cpu()
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        images = [image.convert("RGB").resize(predicted.shape[:0:-1]) for image in rows["image"]]
        save_overlays(images, inputs["labels"].numpy(), predicted.numpy(), names, output_dir / PREDICTIONS_PICTURE)
        return [PREDICTIONS_PICTURE]


def augment(image: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The same random flips and shift (up to 1/16 of the size) for an image and its mask; the border the shift
    uncovers is black in the image and unlabelled in the mask."""
    if random.random() < 0.5:
        image, mask = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if random.random() < 0.5:
        image, mask = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM), mask.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    max_x, max_y = max(1, round(image.width / 16)), max(1, round(image.height / 16))
    shift = (1, 0, random.randint(-max_x, max_x), 0, 1, random.randint(-max_y, max_y))
    return (
        image.transform(image.size, Image.Transform.AFFINE, shift, fillcolor=0),
        mask.transform(mask.size, Image.Transform.AFFINE, shift, resample=Image.Resampling.NEAREST,
                       fillcolor=IGNORE_INDEX),
    )


def class_colours(count: int) -> np.ndarray:
    """(count, 3) RGB colours in [0, 1]: black for class 0 (background), tab10 for the rest."""
    from matplotlib import colormaps

    colours = np.array([colormaps["tab10"](i % 10)[:3] for i in range(count)])
    colours[0] = 0
    return colours


def save_overlays(
    images: list[Image.Image], true: np.ndarray, predicted: np.ndarray, names: list[str], path: Path
) -> None:
    """One row per image: the image, its true mask and the predicted one, each mask blended over the image."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colours = class_colours(len(names))
    figure = Figure(figsize=(3 * 1.6, len(images) * 1.6 + 0.8))
    for row, (image, true_mask, predicted_mask) in enumerate(zip(images, true, predicted)):
        pixels = np.asarray(image, dtype=np.float32) / 255  # (height, width, 3)
        for column, (title, mask) in enumerate((("image", None), ("true", true_mask), ("predicted", predicted_mask))):
            axes = figure.add_subplot(len(images), 3, row * 3 + column + 1)
            shown = pixels if mask is None else 0.4 * pixels + 0.6 * colours[np.clip(mask, 0, len(names) - 1)]
            if mask is not None:
                shown[mask == IGNORE_INDEX] = pixels[mask == IGNORE_INDEX]
            axes.imshow(shown, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(title, fontsize=9)
    figure.suptitle("Held-out images, their true and predicted masks", fontsize=9)
    handles = [Patch(color=colour, label=name) for colour, name in zip(colours, names)]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(names), 4), fontsize=7)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    figure.savefig(path, dpi=100)


def summarize_segmentations(
    results: list[list[dict[str, Any]]], inputs: list[str], mask_dir: str | None, label2id: dict[str, int]
) -> list[list[dict[str, Any]]]:
    """The image-segmentation pipeline's masks (one per class found in an image) as the fraction of the image each
    class covers; with `mask_dir`, each image's classes also merged into `<mask_dir>/<input name>.png` of class ids
    (the format of a mask folder's masks)."""
    if mask_dir is not None:
        Path(mask_dir).mkdir(parents=True, exist_ok=True)
    summaries = []
    for path, segments in zip(inputs, results):
        masks = [np.asarray(segment["mask"]) > 0 for segment in segments]  # (height, width) each
        summaries.append([{"label": segment["label"], "fraction": round(float(mask.mean()), 6)}
                          for segment, mask in zip(segments, masks)])
        if mask_dir is not None:
            class_ids = np.zeros(masks[0].shape, dtype=np.uint8)
            for segment, mask in zip(segments, masks):
                class_ids[mask] = label2id[segment["label"]]
            Image.fromarray(class_ids, mode="L").save(Path(mask_dir) / f"{Path(path).stem}.png")
    return summaries
