"""Image processor of the VAE: channels, resize, rescale to [0, 1] (PIL/numpy backend)."""

import numpy as np
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import ImagesKwargs

# Copied from hfmodels.models.image_classifier.image_processing_image_classifier with ImageClassifier->VAE,
# except the defaults: pixels are rescaled to [0, 1] and not normalised, the range the decoder's sigmoid produces.
# (A model folder imports no other; tests/test_vae.py checks that the copies stay the same.)

# ITU-R 601-2 luma, the weights PIL uses for its "L" mode.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class VAEImageProcessorKwargs(ImagesKwargs, total=False):
    num_channels: int


class VAEImageProcessor(PilBackend):
    r"""
    Turns PIL images, numpy arrays or torch tensors (grayscale, RGB or RGBA; one image or a batch)
    into `pixel_values` of shape (batch, num_channels, height, width).

    Every input is first converted to `num_channels` channels: RGB(A) to grayscale by luma for a
    1-channel model (the image pipelines hand the processor RGB images, even for a grayscale
    model), grayscale to RGB by repetition for a 3-channel model, RGBA to RGB by dropping
    alpha. Any other channel count is an error.
    """

    valid_kwargs = VAEImageProcessorKwargs
    model_input_names = ["pixel_values"]
    num_channels = 1
    size = {"height": 8, "width": 8}
    resample = PILImageResampling.BILINEAR
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = False
    do_convert_rgb = False

    def _prepare_images_structure(self, images, expected_ndims: int = 3):
        # a 2-D array or tensor is one grayscale image: give it its channel axis
        if isinstance(images, (list, tuple)):
            images = [add_channel_axis(image) for image in images]
        else:
            images = add_channel_axis(images)
        return super()._prepare_images_structure(images, expected_ndims=expected_ndims)

    def process_image(self, image, input_data_format=None, num_channels=None, **kwargs) -> np.ndarray:
        try:
            image = super().process_image(image, do_convert_rgb=False, input_data_format=input_data_format)
        except ValueError as error:
            raise ValueError(
                f"Cannot read an image of shape {tuple(getattr(image, 'shape', ()))}: the channels must be 1 (grayscale), "
                f"3 (RGB) or 4 (RGBA), first or last ({error})"
            ) from error
        return convert_channels(image, num_channels if num_channels is not None else self.num_channels)


def add_channel_axis(image):
    return image[None] if getattr(image, "ndim", None) == 2 else image


def convert_channels(image: np.ndarray, num_channels: int) -> np.ndarray:
    """Converts a channels-first image (channels, height, width) to `num_channels` channels."""
    channels = image.shape[0]
    if channels == num_channels:
        return image
    if channels == 4:  # RGBA: drop alpha
        image, channels = image[:3], 3
        if num_channels == 3:
            return image
    if channels == 3 and num_channels == 1:
        gray = np.tensordot(LUMA_WEIGHTS, image.astype(np.float32), axes=1)[None]
        # keep integer images integer, so resizing through PIL sees the same kind of data
        return np.rint(gray).astype(image.dtype) if np.issubdtype(image.dtype, np.integer) else gray
    if channels == 1 and num_channels == 3:
        return np.repeat(image, 3, axis=0)
    raise ValueError(
        f"Cannot convert an image with {channels} channels (shape {tuple(image.shape)}) to the "
        f"{num_channels} channel(s) this processor expects (num_channels={num_channels}); "
        "give grayscale (1), RGB (3) or RGBA (4) images."
    )


__all__ = ["VAEImageProcessor"]
