"""Image processor of the VAE: channels, resize, rescale to [0, 1] (PIL/numpy backend)."""

from .image_processing_base import ChannelsImageProcessor


class VAEImageProcessor(ChannelsImageProcessor):
    r"""
    Turns PIL images, numpy arrays or torch tensors (grayscale, RGB or RGBA; one image or a batch)
    into `pixel_values` of shape (batch, num_channels, height, width).

    Every input is first converted to `num_channels` channels: RGB(A) to grayscale by luma for a
    1-channel model (the image pipelines hand the processor RGB images, even for a grayscale
    model), grayscale to RGB by repetition for a 3-channel model, RGBA to RGB by dropping
    alpha. Any other channel count is an error. PIL images are read as the colours they show (PIL
    converts palette, 1-bit, CMYK, YCbCr, ... images first), boolean arrays as black and white.

    Pixels are on the 0-255 scale; for float images in [0, 1] pass `do_rescale=False` (transformers'
    convention). Input that is no image (None, a string array, no pixels, NaN, ...) is a ValueError
    or TypeError that names it.
    """

    # pixels are rescaled to [0, 1] and not normalised: the range the decoder's sigmoid produces
    num_channels = 1
    size = {"height": 8, "width": 8}
    do_normalize = False


__all__ = ["VAEImageProcessor"]
