# Generated from hfmodels/models/image_processing_base.py by `make fix-copies`: edit that file, not this copy.
"""The part of the image processors every image family shares: input checks, channels, resize (PIL/numpy backend).

Each image model folder (image classifier, autoencoder, VAE, segmentation) holds a copy of this file (`make
fix-copies` writes them, `make test` fails when one differs), so each stays self-contained: its
`image_processing_<family>.py` imports it relatively, and `save_pretrained` copies it beside the weights with the rest
of the folder's code.
"""

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import ImagesKwargs

# ITU-R 601-2 luma, the weights PIL uses for its "L" mode.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ChannelsImageProcessorKwargs(ImagesKwargs, total=False):
    num_channels: int


class ChannelsImageProcessor(PilBackend):
    """Reads PIL images, numpy arrays or torch tensors (one image or a batch), checks them, and converts each to
    `num_channels` channels before transformers resizes, rescales and normalises it. A family subclasses it and sets
    its defaults: `num_channels`, `size`, `do_normalize`, `image_mean`, `image_std`."""

    valid_kwargs = ChannelsImageProcessorKwargs
    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_convert_rgb = False

    def _prepare_images_structure(self, images, expected_ndims: int = 3):
        check_images_structure(images)
        # a 2-D array or tensor is one grayscale image: give it its channel axis
        if isinstance(images, (list, tuple)):
            images = [add_channel_axis(image) for image in images]
        else:
            images = add_channel_axis(images)
        images = super()._prepare_images_structure(images, expected_ndims=expected_ndims)
        if len(images) == 0:
            raise ValueError("images is empty: give at least one image")
        return images

    def process_image(self, image, input_data_format=None, num_channels=None, **kwargs) -> np.ndarray:
        image = readable_image(image)
        try:
            image = super().process_image(image, do_convert_rgb=False, input_data_format=input_data_format)
        except ValueError as error:
            raise ValueError(
                f"Cannot read an image of shape {tuple(getattr(image, 'shape', ()))}: the channels must be "
                f"1 (grayscale), 3 (RGB) or 4 (RGBA), first or last ({error})"
            ) from error
        check_pixels(image)
        return convert_channels(image, num_channels if num_channels is not None else self.num_channels)

    def resize(self, image: np.ndarray, size, resample=None, **kwargs) -> np.ndarray:
        # transformers resizes through an 8-bit PIL image: it quantises floats in [0, 1] but refuses fractions above 1,
        # so a float image on the 0-255 scale (the luma of a float RGB image, a PIL "F" image) is rounded first
        if np.issubdtype(image.dtype, np.floating) and image.max() > 1:
            image = np.rint(image)
        return super().resize(image, size, resample=resample, **kwargs)


def check_images_structure(images, name: str = "images", depth: int = 0) -> str:
    """What `images` is, "image", "batch" or "list", or a clear error where it is none, before transformers' structure
    checks misread it: a PIL image, a path or a 2-D or 3-D array or tensor is an image, a 4-D one a batch of them; a
    list holds one kind of these, or lists of images."""
    if isinstance(images, (list, tuple)) and depth < 2:
        kinds = {check_images_structure(item, f"{name}[{index}]", depth + 1) for index, item in enumerate(images)}
        if len(kinds) > 1:
            mixed = " and ".join(sorted({"image": "images", "batch": "4-D batches", "list": "lists"}[k] for k in kinds))
            raise ValueError(f"{name} mixes {mixed}: give a list of one kind (images, 4-D batches or lists of images)")
        return "list"
    if isinstance(images, (str, Image.Image)):
        return "image"
    if not isinstance(images, (np.ndarray, torch.Tensor)):
        raise TypeError(
            f"{name} must be a PIL image, a numpy array or a torch tensor (or a list of them), "
            f"got {type(images).__name__}"
        )
    if images.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} has shape {tuple(images.shape)}: an image is 2-D (height, width) or 3-D (channels first or last), "
            "a batch of images 4-D"
        )
    return "batch" if images.ndim == 4 else "image"


def readable_image(image):
    """`image` as transformers' PIL backend reads it right: a PIL image in a mode whose values are its colours (L, RGB,
    RGBA, or 16-bit, 32-bit or float grayscale), a tensor as a numpy array, booleans as 0 and 255 (like a 1-bit PIL
    image); an array of anything but numbers is an error."""
    if isinstance(image, Image.Image):
        if image.mode in ("L", "RGB", "RGBA", "F") or image.mode.startswith("I"):
            return image
        if image.mode == "La":  # premultiplied alpha: PIL converts it through LA only
            image = image.convert("LA")
        return image.convert("L" if image.mode in ("1", "LA") else "RGB")  # palette, CMYK, YCbCr, LAB, HSV, ...
    if isinstance(image, torch.Tensor):
        image = tensor_as_array(image)
    if isinstance(image, np.ndarray):
        if image.dtype == bool:
            return image.astype(np.uint8) * 255
        if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
            raise TypeError(f"images must hold numbers, got an array of dtype {image.dtype} and shape {image.shape}")
    return image


def tensor_as_array(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array (detached, on the CPU); floats of a dtype numpy lacks (bfloat16, float8) as float32."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float16, torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.numpy()


def check_pixels(image: np.ndarray) -> None:
    """An error for an image, now (channels, height, width), with no pixels or with NaN or infinite ones."""
    if image.ndim != 3:
        raise ValueError(
            f"images holds an array of shape {tuple(image.shape)} where one image belongs: give 2-D or 3-D ones"
        )
    if 0 in image.shape:
        raise ValueError(
            f"images holds an image of shape {tuple(image.shape)} (channels, height, width): it has no pixels"
        )
    if not np.isfinite(image).all():
        raise ValueError(f"images holds an image (shape {tuple(image.shape)}) with NaN or infinite values")


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
