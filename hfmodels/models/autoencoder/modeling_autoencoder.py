"""A convolutional autoencoder, as a transformers model: image -> latent vector -> image."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from .configuration_autoencoder import AutoencoderConfig
from .conv_autoencoder import (
    RENAMED_CONV_AUTOENCODER_WEIGHTS,
    ConvDecoder,
    ConvEncoder,
    check_latents,
    check_pixel_values,
    check_targets,
)
from .loading import StrictLoadingMixin


@dataclass
class AutoencoderOutput(ModelOutput):
    """
    Args:
        loss: mean squared error between `reconstruction` and `labels` (the target images), when labels are given.
        latents: (batch, latent_dim) the bottleneck codes; the first field, so the image-feature-extraction
            pipeline returns them.
        reconstruction: (batch, num_channels, height, width) decoded images, pixels in [0, 1].
        hidden_states: with `output_hidden_states`, the feature map after each stage of the encoder, then of the
            decoder.
    """

    loss: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class AutoencoderPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = AutoencoderConfig
    config: AutoencoderConfig
    base_model_prefix = "autoencoder"
    renamed_weights = RENAMED_CONV_AUTOENCODER_WEIGHTS
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["ConvEncoder", "ConvDecoder"]
    _can_compile_fullgraph = True  # tests/model_tester.py compiles a training step with fullgraph=True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)


class AutoencoderModel(AutoencoderPreTrainedModel):
    """Encoder and decoder; the MSE reconstruction loss when `labels` (the target images) are given."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        self.encoder = ConvEncoder(config.num_channels, config.image_size, config.hidden_sizes, config.latent_dim)
        self.decoder = ConvDecoder(config.num_channels, config.image_size, config.hidden_sizes, config.latent_dim)
        self.post_init()

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images (batch, num_channels, image_size, image_size), pixels in [0, 1] -> latents (batch, latent_dim)."""
        check_pixel_values(pixel_values, self.config)
        return self.encoder(pixel_values)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (batch, latent_dim) -> images (batch, num_channels, image_size, image_size), pixels in [0, 1]."""
        check_latents(latents, self.config)
        return torch.sigmoid(self.decoder(latents))

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> AutoencoderOutput:
        r"""
        labels: the target images, shaped like `pixel_values`: the input itself for a plain autoencoder
            (what the autoencoder family passes), a clean image for a denoising one.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        stages = [] if output_hidden_states else None
        check_pixel_values(pixel_values, self.config)
        latents = self.encoder(pixel_values, stages)  # (batch, latent_dim)
        reconstruction = torch.sigmoid(self.decoder(latents, stages))  # (batch, num_channels, height, width)

        loss = None
        if labels is not None:
            check_targets(labels, pixel_values)
            loss = nn.functional.mse_loss(reconstruction, labels.to(reconstruction.dtype))

        return AutoencoderOutput(
            loss=loss, latents=latents, reconstruction=reconstruction,
            hidden_states=tuple(stages) if output_hidden_states else None,
        )

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
        """Decodes `steps` evenly spaced points on the line between the latents of images `a` and `b`
        (each (num_channels, image_size, image_size)), both ends included: (steps, num_channels, height, width)."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2 (both ends are included), got {steps}")
        start, end = self.encode(torch.stack([a, b]))  # (latent_dim,) each
        weights = torch.linspace(0, 1, steps, device=start.device, dtype=start.dtype)[:, None]  # (steps, 1)
        return self.decode(torch.lerp(start, end, weights))


__all__ = ["AutoencoderPreTrainedModel", "AutoencoderModel", "AutoencoderOutput"]
