# Generated from hfmodels/models/conv_autoencoder.py by `make fix-copies`: edit that file, not this copy.
"""The convolutional encoder and decoder that the autoencoder and the VAE share, and their input checks.

Each of the two model folders holds a copy of this file (`make fix-copies` writes them, `make test` fails when one
differs), so each stays self-contained.
"""

import torch
from torch import nn


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

    def forward(self, pixel_values: torch.Tensor, stages: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`stages`, where given, gets the feature map of each stage appended."""
        hidden_states = run_stages(self.convs, pixel_values, stages)  # (batch, hidden_sizes[-1], side, side)
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

    def forward(self, latents: torch.Tensor, stages: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`stages`, where given, gets the feature map of each upsampling stage appended."""
        hidden_states = self.proj(latents)  # (batch, hidden_sizes[-1] * side * side)
        hidden_states = hidden_states.unflatten(1, (-1, self.side, self.side))  # (batch, hidden_sizes[-1], side, side)
        return run_stages(self.convs, hidden_states, stages)  # (batch, num_channels, image_size, image_size)


def run_stages(convs: nn.Sequential, hidden_states: torch.Tensor, stages: list[torch.Tensor] | None) -> torch.Tensor:
    """`convs` applied; each stage ends with a GELU, whose output is appended to `stages` where given."""
    for layer in convs:
        hidden_states = layer(hidden_states)
        if stages is not None and isinstance(layer, nn.GELU):
            stages.append(hidden_states)
    return hidden_states


def check_sizes(config) -> None:
    """The rules of the config fields the autoencoder and the VAE share: channels, stages, image and latent sizes."""
    config.require("num_channels", config.num_channels in (1, 3), "must be 1 (grayscale) or 3 (RGB)")
    stages = len(config.hidden_sizes)
    config.require("hidden_sizes", stages and min(config.hidden_sizes) >= 1,
                   "must be a non-empty list of positive integers")
    reduction = 2**stages  # each stage halves the size
    config.require("image_size", config.image_size >= reduction and config.image_size % reduction == 0,
                   f"must be a positive multiple of {reduction} for the {stages} stages of hidden_sizes")
    config.require("latent_dim", config.latent_dim >= 1, "must be a positive integer")


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
