"""The VAE family: the autoencoder family's data, metrics and pictures, plus samples drawn from the prior."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import DatasetDict

from ..models.vae import VAEConfig, VAEImageProcessor, VAEModel
from .autoencoder import PICTURE_SEED, AutoencoderFamily, save_grid
from .base import register_family


@register_family
class VAEFamily(AutoencoderFamily):
    name = "vae"
    config_class = VAEConfig
    model_class = VAEModel
    processor_class = VAEImageProcessor
    pipeline_tag = "unconditional-image-generation"  # the Hub task; `VAEModel.sample` is the API, no pipeline
    main_metric = "loss"  # the negative ELBO (in eval mode, with the latent means), what the model minimises
    default_epochs = 40
    default_learning_rate = 3e-3

    def write_artifacts(self, model: VAEModel, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        written = super().write_artifacts(model, processor, data, output_dir)
        samples = model.sample(100, generator=torch.Generator().manual_seed(PICTURE_SEED)).cpu()  # (100, c, h, w)
        rows = list(samples.unflatten(0, (10, 10)))  # 10 x (10, c, h, w)
        save_grid(rows, output_dir / "samples.png", "Decoded latents drawn from N(0, I)")
        return [*written, "samples.png"]
