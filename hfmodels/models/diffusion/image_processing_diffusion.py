"""Image processor of the diffusion model: channels, resize, pixels to [-1, 1] (PIL/numpy backend)."""

from .image_processing_base import ChannelsImageProcessor


class DiffusionImageProcessor(ChannelsImageProcessor):
    r"""
    Turns PIL images, numpy arrays or torch tensors (grayscale, RGB or RGBA; one image or a batch)
    into `pixel_values` of shape (batch, num_channels, height, width), pixels in [-1, 1]: the range
    the noise schedule and its samplers' clipping assume.

    Every input is first converted to `num_channels` channels: RGB(A) to grayscale by luma for a
    1-channel model, grayscale to RGB by repetition for a 3-channel model, RGBA to RGB by dropping
    alpha. Pixels are on the 0-255 scale; for float images in [0, 1] pass `do_rescale=False`
    (transformers' convention). Input that is no image is a ValueError or TypeError that names it.
    """

    num_channels = 1
    size = {"height": 8, "width": 8}
    do_normalize = True
    image_mean = [0.5]
    image_std = [0.5]


__all__ = ["DiffusionImageProcessor"]
