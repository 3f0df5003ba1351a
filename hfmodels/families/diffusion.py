"""The diffusion family: a U-Net learns to undo Gaussian noise; images are generated from noise by a diffusers
scheduler. Data with class labels gives a class-conditioned model (sampled with classifier-free guidance, or without
a class); data without gives an unconditional one.

The training target is the image itself (`labels`); the model draws the noise levels and the noise. Its EMA weights
(`--ema-decay`, on by default here) are the ones evaluated, pictured and saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from datasets import ClassLabel, Dataset, DatasetDict

from ..models.diffusion import DiffusionConfig, DiffusionForImageGeneration, DiffusionImageProcessor
from .autoencoder import PICTURE_SEED, save_grid
from .base import Family, image_shape_of, register_family
from .image_classifier import centered_image_processor

PICTURE_SCHEDULER, PICTURE_STEPS = "ddim", 50  # the pictures' sampler
EPOCH_SAMPLES = "epoch_samples"  # run-folder folder of the samples drawn after each epoch
EPOCH_SAMPLE_STEPS = 20
SAMPLES_PER_EPOCH = 10


@register_family
class DiffusionFamily(Family):
    name = "diffusion"
    config_class = DiffusionConfig
    model_class = DiffusionForImageGeneration
    processor_class = DiffusionImageProcessor
    pipeline_tag = "unconditional-image-generation"  # the Hub task; `sample` is the API, no pipeline
    columns = ("image",)
    default_dataset = "digits"
    metric_names = ()
    main_metric = "loss"  # the denoising loss on the validation split (the same noise every epoch)
    greater_is_better = False
    default_epochs = 100
    default_learning_rate = 2e-3
    default_ema_decay = 0.999

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> DiffusionConfig:
        """Fitted to the first image; class-conditioned on the data's classes where it has a class label column."""
        fitted: dict[str, Any] = image_shape_of(train_split)
        labels = train_split.features.get("label")
        if isinstance(labels, ClassLabel):
            fitted.update(num_classes=labels.num_classes, id2label=dict(enumerate(labels.names)))
            if overrides.get("num_classes", labels.num_classes) != labels.num_classes:
                raise ValueError(
                    f"--model-config num_classes={overrides['num_classes']}: the data has {labels.num_classes} "
                    "classes in its label column, which the model is conditioned on"
                )
        elif overrides.get("num_classes"):
            raise ValueError("--model-config num_classes: the data has no class label column to condition on")
        return self.config_class(**{**fitted, **overrides})

    def build_processor(self, config: DiffusionConfig) -> DiffusionImageProcessor:
        return centered_image_processor(self.processor_class, config)

    def transform(self, processor: DiffusionImageProcessor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            pixel_values = processor(batch["image"], return_tensors="pt")["pixel_values"]
            inputs = {"pixel_values": pixel_values, "labels": pixel_values}  # the target is the image
            if "label" in batch:  # the data's classes, which build_config conditioned the model on
                inputs["class_labels"] = torch.as_tensor(batch["label"])
            return inputs

        return to_inputs

    def metric_inputs(self, outputs, batch):
        return {}

    def end_of_epoch(self, model: DiffusionForImageGeneration, epoch: int, run_dir: Path) -> None:
        """A few samples of the same noise after every epoch (one per class, in order, for a conditional model)."""
        from safetensors.torch import save_file

        samples = sample_pictured(model, SAMPLES_PER_EPOCH, EPOCH_SAMPLE_STEPS)
        (run_dir / EPOCH_SAMPLES).mkdir(parents=True, exist_ok=True)
        save_file({"samples": samples.contiguous()}, run_dir / EPOCH_SAMPLES / f"epoch-{epoch:04d}.safetensors")

    def write_artifacts(self, model: DiffusionForImageGeneration, processor, data: DatasetDict,
                        output_dir: Path) -> list[str]:
        model.eval()
        samples = sample_pictured(model, 100, PICTURE_STEPS)  # (100, c, h, w)
        how = "one class per row" if model.config.num_classes else "unconditional"
        save_grid(list(samples.unflatten(0, (10, 10))), output_dir / "samples.png",
                  f"Samples ({how}, {PICTURE_SCHEDULER.upper()} {PICTURE_STEPS} steps)")
        frames = model.denoising_trajectory(
            8, PICTURE_STEPS, PICTURE_SCHEDULER, torch.Generator().manual_seed(PICTURE_SEED),
            labels=class_cycle(model, 8), num_frames=10,
        ).cpu()  # (10, 8, c, h, w)
        save_grid(list(frames.transpose(0, 1)), output_dir / "denoising.png",
                  "Denoising, from Gaussian noise (left) to the image (right)")
        written = ["samples.png", "denoising.png"]
        epoch_files = sorted((output_dir / EPOCH_SAMPLES).glob("epoch-*.safetensors"))
        if epoch_files:
            from safetensors.torch import load_file

            shown = epoch_files[:: max(1, len(epoch_files) // 10)][:9] + epoch_files[-1:]  # up to 10 rows
            rows = [load_file(path)["samples"] for path in dict.fromkeys(shown)]
            names = [f"epoch {int(path.stem.split('-')[1])}" for path in dict.fromkeys(shown)]
            save_grid(rows, output_dir / "samples_by_epoch.png", "The same noise denoised after each epoch", names)
            written.append("samples_by_epoch.png")
        return written


def class_cycle(model: DiffusionForImageGeneration, count: int) -> list[int] | None:
    """Class ids 0, 1, ... cycling over the classes for a conditional model; None for an unconditional one."""
    classes = model.config.num_classes
    return [i % classes for i in range(count)] if classes else None


def sample_pictured(model: DiffusionForImageGeneration, count: int, steps: int) -> torch.Tensor:
    """`count` samples of the pictures' seed and sampler, classes in rows of ten for a conditional model."""
    classes = model.config.num_classes
    labels = [i * classes // count for i in range(count)] if classes else None
    generator = torch.Generator().manual_seed(PICTURE_SEED)
    return model.sample(count, steps, PICTURE_SCHEDULER, generator=generator, labels=labels).cpu()
