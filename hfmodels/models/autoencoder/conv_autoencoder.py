# Generated from hfmodels/models/conv_autoencoder.py by `make fix-copies`: edit that file, not this copy.
"""The convolutional encoder and decoder that the autoencoder and the VAE share, and their input checks.

Each of the two model folders holds a copy of this file (`make fix-copies` writes them, `make test` fails when one
differs), so each stays self-contained.
"""

from collections import OrderedDict

import torch
from torch import nn

# The stages were one plain sequence each (`encoder.convs.0`, `decoder.convs.1`, `decoder.proj.0`) before they had
# names people (and a LoRA `target=`) can read: folders saved before load through these (the models'
# `renamed_weights`). The old index of encoder stage i's convolution is 2i, of decoder stage i's 3i + 1, and the
# output convolution's 3 * (number of stages).
MOST_STAGES = 16
RENAMED_CONV_AUTOENCODER_WEIGHTS = {
    r"decoder\.proj\.0\.": "decoder.proj.",
    **{rf"encoder\.convs\.{2 * stage}\.": f"encoder.stages.{stage}.conv." for stage in range(MOST_STAGES)},
    **{rf"decoder\.convs\.{3 * stage + 1}\.": f"decoder.stages.{stage}.conv." for stage in range(MOST_STAGES)},
    **{rf"decoder\.convs\.{3 * stages}\.": "decoder.output." for stages in range(1, MOST_STAGES + 1)},
}


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, one per stage (`stages.i.conv`, each followed by a GELU), then a linear layer
    (`proj`): images -> `out_features` numbers."""

    def __init__(self, num_channels: int, image_size: int, hidden_sizes: list[int], out_features: int):
        super().__init__()
        in_sizes = [num_channels, *hidden_sizes[:-1]]
        self.stages = nn.ModuleList(
            nn.Sequential(OrderedDict(conv=nn.Conv2d(in_size, size, kernel_size=3, stride=2, padding=1), act=nn.GELU()))
            for in_size, size in zip(in_sizes, hidden_sizes)
        )
        side = image_size // 2 ** len(hidden_sizes)
        self.proj = nn.Linear(hidden_sizes[-1] * side * side, out_features)

    def forward(self, pixel_values: torch.Tensor, feature_maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`feature_maps`, where given, gets the feature map of each stage appended."""
        hidden_states = run_stages(self.stages, pixel_values, feature_maps)  # (batch, hidden_sizes[-1], side, side)
        return self.proj(hidden_states.flatten(1))  # (batch, out_features)


class ConvDecoder(nn.Module):
    """The encoder's mirror: a linear layer (`proj`, then a GELU), per stage a 2x nearest upsampling and a 3x3
    convolution (`stages.i.conv`, then a GELU), and a last 3x3 convolution (`output`): latent vectors -> image logits
    (apply a sigmoid for pixels in [0, 1])."""

    def __init__(self, num_channels: int, image_size: int, hidden_sizes: list[int], latent_dim: int):
        super().__init__()
        self.side = image_size // 2 ** len(hidden_sizes)
        self.proj = nn.Linear(latent_dim, hidden_sizes[-1] * self.side * self.side)
        sizes = [*reversed(hidden_sizes[:-1]), hidden_sizes[0]]
        in_sizes = [hidden_sizes[-1], *sizes[:-1]]
        self.stages = nn.ModuleList(
            nn.Sequential(OrderedDict(upsample=nn.Upsample(scale_factor=2, mode="nearest"),
                                      conv=nn.Conv2d(in_size, size, kernel_size=3, padding=1), act=nn.GELU()))
            for in_size, size in zip(in_sizes, sizes)
        )
        self.output = nn.Conv2d(sizes[-1], num_channels, kernel_size=3, padding=1)

    def forward(self, latents: torch.Tensor, feature_maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`feature_maps`, where given, gets the feature map of each upsampling stage appended."""
        hidden_states = nn.functional.gelu(self.proj(latents))  # (batch, hidden_sizes[-1] * side * side)
        hidden_states = hidden_states.unflatten(1, (-1, self.side, self.side))  # (batch, hidden_sizes[-1], side, side)
        hidden_states = run_stages(self.stages, hidden_states, feature_maps)  # (batch, hidden_sizes[0], size, size)
        return self.output(hidden_states)  # (batch, num_channels, image_size, image_size)


def run_stages(stages: nn.ModuleList, hidden_states: torch.Tensor,
               feature_maps: list[torch.Tensor] | None) -> torch.Tensor:
    """`stages` applied in turn; each one's output is appended to `feature_maps` where given."""
    for stage in stages:
        hidden_states = stage(hidden_states)
        if feature_maps is not None:
            feature_maps.append(hidden_states)
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
