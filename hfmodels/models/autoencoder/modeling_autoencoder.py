"""A convolutional autoencoder, as a transformers model: image -> latent vector -> image."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_autoencoder import AutoencoderConfig
from .loading import StrictLoadingMixin


@dataclass
class AutoencoderOutput(ModelOutput):
    """
    Args:
        loss: mean squared error between `reconstruction` and `labels` (the target images), when labels are given.
        latents: (batch, latent_dim) the bottleneck codes; the first field, so the image-feature-extraction
            pipeline returns them.
        reconstruction: (batch, num_channels, height, width) decoded images, pixels in [0, 1].
    """

    loss: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None


# The encoder and decoder are copied into hfmodels/models/vae/modeling_vae.py (a model folder imports no other);
# tests/test_vae.py checks that the copies stay the same.
class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, one per stage, then a linear layer: images -> `out_features` numbers."""

    def __init__(self, num_channels: int, image_size: int, hidden_sizes: list[int], out_features: int):
        super().__init__()
        layers, in_channels = [], num_channels
        for channels in hidden_sizes:
            layers += [nn.Conv2d(in_channels, channels, kernel_size=3, stride=2, padding=1), nn.GELU()]
            in_channels = channels
        self.convs = nn.Sequential(*layers)
        side = image_size // 2 ** len(hidden_sizes)
        self.proj = nn.Linear(hidden_sizes[-1] * side * side, out_features)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden_states = self.convs(pixel_values)  # (batch, hidden_sizes[-1], side, side)
        return self.proj(hidden_states.flatten(1))  # (batch, out_features)


class ConvDecoder(nn.Module):
    """The encoder's mirror: latent vectors -> image logits (apply a sigmoid for pixels in [0, 1])."""

    def __init__(self, num_channels: int, image_size: int, hidden_sizes: list[int], latent_dim: int):
        super().__init__()
        self.side = image_size // 2 ** len(hidden_sizes)
        self.proj = nn.Sequential(nn.Linear(latent_dim, hidden_sizes[-1] * self.side * self.side), nn.GELU())
        layers, in_channels = [], hidden_sizes[-1]
        for channels in [*reversed(hidden_sizes[:-1]), hidden_sizes[0]]:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
                nn.GELU(),
            ]
            in_channels = channels
        layers.append(nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1))
        self.convs = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden_states = self.proj(latents)  # (batch, hidden_sizes[-1] * side * side)
        hidden_states = hidden_states.unflatten(1, (-1, self.side, self.side))  # (batch, hidden_sizes[-1], side, side)
        return self.convs(hidden_states)  # (batch, num_channels, image_size, image_size)


def check_pixel_values(pixel_values: torch.Tensor, config) -> None:
    expected = (config.num_channels, config.image_size, config.image_size)
    if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
        raise ValueError(
            f"pixel_values must have shape (batch, {', '.join(map(str, expected))}) for this model "
            f"(config.num_channels, config.image_size), got {tuple(pixel_values.shape)}"
        )


def check_latents(latents: torch.Tensor, config) -> None:
    if latents.ndim != 2 or latents.shape[1] != config.latent_dim:
        raise ValueError(
            f"latents must have shape (batch, {config.latent_dim}) (config.latent_dim), got {tuple(latents.shape)}"
        )


def check_targets(labels: torch.Tensor, pixel_values: torch.Tensor) -> None:
    if labels.shape != pixel_values.shape:
        raise ValueError(
            f"labels are the target images and must have the shape of pixel_values {tuple(pixel_values.shape)}, "
            f"got {tuple(labels.shape)}"
        )


# End of the copied code.


class AutoencoderPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = AutoencoderConfig
    config: AutoencoderConfig
    base_model_prefix = "autoencoder"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["ConvEncoder", "ConvDecoder"]

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

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> AutoencoderOutput | tuple:
        r"""
        labels: the target images, shaped like `pixel_values`: the input itself for a plain autoencoder
            (what the autoencoder family passes), a clean image for a denoising one.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        latents = self.encode(pixel_values)  # (batch, latent_dim)
        reconstruction = self.decode(latents)  # (batch, num_channels, height, width)

        loss = None
        if labels is not None:
            check_targets(labels, pixel_values)
            loss = nn.functional.mse_loss(reconstruction, labels.to(reconstruction.dtype))

        output = AutoencoderOutput(loss=loss, latents=latents, reconstruction=reconstruction)
        return output if return_dict else output.to_tuple()

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
