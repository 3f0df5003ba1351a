"""Configuration of the convolutional autoencoder."""

from transformers import PreTrainedConfig

from .conv_autoencoder import check_sizes
from .validation import ValidatedConfig


class AutoencoderConfig(ValidatedConfig, PreTrainedConfig):
    r"""
    A convolutional autoencoder. The encoder has one stride-2 3x3 convolution per entry of
    `hidden_sizes` (each halves the spatial size), then a linear layer to `latent_dim` numbers.
    The decoder mirrors it: a linear layer back to the smallest feature map, then one
    (nearest 2x upsampling, 3x3 convolution) step per stage, and a 3x3 convolution to the image
    channels with a sigmoid, so reconstructions are pixels in [0, 1].

    Args:
        num_channels: channels of the input images (1 for grayscale, 3 for RGB).
        image_size: side of the square images; a multiple of 2 ** len(hidden_sizes).
        hidden_sizes: output channels of each encoder stage (the decoder uses them in reverse).
        latent_dim: size of the latent vector, the bottleneck.
    """

    model_type = "hfmodels-autoencoder"

    num_channels: int = 1
    image_size: int = 8
    hidden_sizes: list[int] | tuple[int, ...] = (32, 64)
    latent_dim: int = 8

    def check_fields(self) -> None:
        check_sizes(self)


__all__ = ["AutoencoderConfig"]
