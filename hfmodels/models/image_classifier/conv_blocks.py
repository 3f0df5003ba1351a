# Generated from hfmodels/models/conv_blocks.py by `make fix-copies`: edit that file, not this copy.
"""The convolution unit the image classifier's CNN and the U-Net are made of, with layer names people (and a LoRA
`target=`) can read: `conv`, `norm`, `act`.

Each of the two model folders holds a copy of this file (`make fix-copies` writes them, `make test` fails when one
differs), so each stays self-contained.
"""

import math
from collections import OrderedDict

from torch import nn


def make_norm(norm: str, channels: int) -> nn.Module:
    """"batch", "group" (groups of up to 8 channels) or "none" normalisation of `channels` feature maps."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


class ConvNormAct(nn.Sequential):
    """A convolution (`conv`), its normalisation (`norm`) and a ReLU (`act`); without the ReLU, 1x1: a shortcut.
    The convolution has a bias only without a normalisation (one would cancel it)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: bool = True,
                 kernel_size: int = 3, norm: str = "batch"):
        layers = {
            "conv": nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                              padding=kernel_size // 2, bias=norm == "none"),
            "norm": make_norm(norm, out_channels),
        }
        if activation:
            layers["act"] = nn.ReLU(inplace=True)
        super().__init__(OrderedDict(layers))
