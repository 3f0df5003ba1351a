"""Configuration of the convolutional autoencoder."""

from transformers import PreTrainedConfig


class AutoencoderConfig(PreTrainedConfig):
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

    def __post_init__(self, **kwargs):
        self.hidden_sizes = as_list(self.hidden_sizes)
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        def fail(field: str, value, allowed: str):
            raise ValueError(f"{type(self).__name__}.{field}={value!r} is invalid: {allowed}.")

        if not is_int(self.num_channels) or self.num_channels not in (1, 3):
            fail("num_channels", self.num_channels, "must be 1 (grayscale) or 3 (RGB)")
        if not isinstance(self.hidden_sizes, list) or not self.hidden_sizes or any(
            not is_int(h) or h < 1 for h in self.hidden_sizes
        ):
            fail("hidden_sizes", self.hidden_sizes, "must be a non-empty list of positive integers")
        reduction = 2 ** len(self.hidden_sizes)
        if not is_int(self.image_size) or self.image_size < reduction or self.image_size % reduction:
            stages = len(self.hidden_sizes)
            allowed = f"must be a positive multiple of {reduction} for the {stages} stages of hidden_sizes"
            fail("image_size", self.image_size, f"{allowed}={self.hidden_sizes}")
        if not is_int(self.latent_dim) or self.latent_dim < 1:
            fail("latent_dim", self.latent_dim, "must be a positive integer")


def as_list(value):
    """A tuple (from a Python caller) as a list, as JSON gives it; anything else as it is, for the checks to name."""
    return list(value) if isinstance(value, tuple) else value


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not to a config


__all__ = ["AutoencoderConfig"]
