"""The autoencoder family: images in, the same images out through a small latent vector.

The target of the loss is the input itself, passed to the model as `labels`; a class label, when the data has
one, only colours the latent map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict

from ..models.autoencoder import AutoencoderConfig, AutoencoderImageProcessor, AutoencoderModel
from .base import Family, held_out_split, image_shape_of, register_family

PICTURE_SEED = 0
MAX_PICTURED_IMAGES = 2000  # the held-out images encoded for the pictures (the latent map's points)


@register_family
class AutoencoderFamily(Family):
    name = "autoencoder"
    config_class = AutoencoderConfig
    model_class = AutoencoderModel
    processor_class = AutoencoderImageProcessor
    pipeline_tag = "image-feature-extraction"
    columns = ("image",)
    default_dataset = "digits"
    metric_names = ("mse", "psnr", "ssim")
    main_metric = "mse"
    greater_is_better = False
    default_epochs = 30
    default_learning_rate = 3e-3

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> AutoencoderConfig:
        return self.config_class(**{**image_shape_of(train_split), **overrides})

    def build_processor(self, config: AutoencoderConfig) -> AutoencoderImageProcessor:
        return self.processor_class(
            num_channels=config.num_channels, size={"height": config.image_size, "width": config.image_size}
        )

    def transform(self, processor: AutoencoderImageProcessor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            pixel_values = processor(batch["image"], return_tensors="pt")["pixel_values"]
            return {"pixel_values": pixel_values, "labels": pixel_values}  # the target is the input

        return to_inputs

    def metric_inputs(self, outputs, batch):
        return {"predictions": outputs.reconstruction, "references": batch["labels"]}

    def baselines(
        self, data: DatasetDict, split: str, config: AutoencoderConfig | None = None, processor=None
    ) -> dict[str, dict[str, float]]:
        """PCA with as many components as the model has latents, fitted on train: the linear autoencoder."""
        from sklearn.decomposition import PCA

        from ..metrics import load_metric

        config = config or self.build_config(data["train"], {})
        processor = processor or self.build_processor(config)
        train, evaluated = (pixels_of(data[name], processor) for name in ("train", split))
        pca = PCA(n_components=config.latent_dim, random_state=0).fit(train.reshape(len(train), -1))
        reconstruction = pca.inverse_transform(pca.transform(evaluated.reshape(len(evaluated), -1)))
        reconstruction = reconstruction.reshape(evaluated.shape)
        scores = {}
        for name in self.metric_names:
            scores.update(load_metric(name).compute(predictions=reconstruction, references=evaluated))
        return {f"pca-{config.latent_dim}": scores}

    def write_artifacts(self, model: AutoencoderModel, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        split = data[held_out_split(data)]
        split = split.select(range(min(len(split), MAX_PICTURED_IMAGES)))
        model.eval()
        pixel_values = torch.from_numpy(pixels_of(split, processor)).to(model.device)
        labels = list(split["label"]) if "label" in split.column_names else None
        with torch.no_grad():
            outputs = model(pixel_values)
        shown = examples_per_class(labels, len(split), count=20)
        originals, reconstructions = pixel_values[shown].cpu(), outputs.reconstruction[shown].cpu()
        rows = [originals[:10], reconstructions[:10], originals[10:], reconstructions[10:]]
        save_grid(rows, output_dir / "reconstructions.png", "Test images and their reconstructions",
                  ["original", "reconstruction"] * 2)

        # (first, last) image of up to 5 strips, each between two classes
        pairs = [(shown[i], shown[i + 1]) for i in range(0, min(10, len(shown) - 1), 2)]
        strips = [model.interpolate(pixel_values[a], pixel_values[b], steps=10).cpu() for a, b in pairs]
        names = None
        if labels is not None:
            names = [f"{class_name(split, labels[a])} to {class_name(split, labels[b])}" for a, b in pairs]
        title = "Decoded latents on the line between two test images"
        save_grid(strips, output_dir / "interpolation.png", title, names)

        save_latent_map(outputs.latents.cpu().numpy(), labels, split, output_dir / "latent_map.png")
        return ["reconstructions.png", "interpolation.png", "latent_map.png"]


def pixels_of(split: Dataset, processor) -> np.ndarray:
    """The images of a split as the model sees them: (n, channels, height, width), float32."""
    return processor(list(split["image"]), return_tensors="np")["pixel_values"].astype(np.float32)


def class_name(split: Dataset, label: int) -> str:
    names = getattr(split.features["label"], "names", None)  # a ClassLabel's names
    return names[label] if names else str(label)


def examples_per_class(labels: list[int] | None, size: int, count: int) -> list[int]:
    """Indices of `count` examples, cycling through the classes in order when there are labels."""
    if labels is None:
        return list(range(min(count, size)))
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    queues = [by_class[label] for label in sorted(by_class)]
    chosen = [queue[round_] for round_ in range(max(map(len, queues))) for queue in queues if round_ < len(queue)]
    return chosen[:count]


def save_grid(rows: list[torch.Tensor], path: Path, title: str, row_names: list[str] | None = None) -> None:
    """Draws rows of images (each (columns, channels, height, width), pixels in [0, 1]) as one picture."""
    from matplotlib.figure import Figure

    channels, height, width = rows[0].shape[1:]
    columns = max(len(row) for row in rows)
    canvas = np.ones(((height + 1) * len(rows) + 1, (width + 1) * columns + 1, channels), dtype=np.float32)
    for r, row in enumerate(rows):
        for c, image in enumerate(row.clamp(0, 1).permute(0, 2, 3, 1).numpy()):  # (height, width, channels)
            top, left = 1 + r * (height + 1), 1 + c * (width + 1)
            canvas[top : top + height, left : left + width] = image
    figure = Figure(figsize=(0.6 * columns + (1.4 if row_names else 0.3), 0.6 * len(rows) + 0.6))
    axes = figure.add_subplot()
    axes.imshow(canvas[..., 0] if channels == 1 else canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([1 + r * (height + 1) + height / 2 for r in range(len(rows))] if row_names else [], row_names or [])
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def save_latent_map(latents: np.ndarray, labels: list[int] | None, split: Dataset, path: Path) -> None:
    """The latents projected on their first two principal components, coloured by class."""
    from matplotlib.figure import Figure
    from sklearn.decomposition import PCA

    points = PCA(n_components=min(2, latents.shape[1]), random_state=PICTURE_SEED).fit_transform(latents)
    if points.shape[1] == 1:  # a 1-D latent space: spread the points along it
        points = np.hstack([points, np.zeros_like(points)])
    figure = Figure(figsize=(6, 5))
    axes = figure.add_subplot()
    if labels is None:
        axes.scatter(points[:, 0], points[:, 1], s=6)
    else:
        labels = np.asarray(labels)
        for label in np.unique(labels):
            chosen = labels == label
            axes.scatter(points[chosen, 0], points[chosen, 1], s=6, label=class_name(split, label))
        axes.legend(markerscale=2, fontsize=8, loc="best")
    axes.set_xlabel("latent PC 1")
    axes.set_ylabel("latent PC 2")
    axes.set_title(f"Latents of {len(latents)} held-out images (PCA of {latents.shape[1]}-D latents)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
