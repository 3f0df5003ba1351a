"""Image processor of the segmentation model: images and their masks resized together; logits back to masks."""

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import ImagesKwargs

# Copied from hfmodels.models.image_classifier.image_processing_image_classifier with ImageClassifier->UNet:
# LUMA_WEIGHTS, the channel handling (_prepare_images_structure, process_image, add_channel_axis, convert_channels).
# (A model folder imports no other; tests/test_segmentation.py checks that the copies stay the same.)

# ITU-R 601-2 luma, the weights PIL uses for its "L" mode.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class UNetImageProcessorKwargs(ImagesKwargs, total=False):
    num_channels: int


class UNetImageProcessor(PilBackend):
    r"""
    Turns PIL images, numpy arrays or torch tensors (grayscale, RGB or RGBA; one image or a batch)
    into `pixel_values` of shape (batch, num_channels, height, width), and their masks, when given as
    `segmentation_maps`, into `labels` of shape (batch, height, width).

    Images are converted to `num_channels` channels (RGB(A) to grayscale by luma, grayscale to RGB
    by repetition, RGBA to RGB by dropping alpha) and resized bilinearly. A mask is a single-channel
    image or 2-D array of class ids of its image's size; it is resized with nearest neighbours, so
    it keeps holding class ids, and lines up with its resized image.
    """

    valid_kwargs = UNetImageProcessorKwargs
    model_input_names = ["pixel_values"]
    num_channels = 3
    size = {"height": 64, "width": 64}
    resample = PILImageResampling.BILINEAR
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    do_convert_rgb = False

    def preprocess(self, images, segmentation_maps=None, **kwargs) -> BatchFeature:
        """`images` -> `pixel_values`; with `segmentation_maps` (one mask per image) also `labels`."""
        return super().preprocess(images, segmentation_maps, **kwargs)

    def _preprocess_image_like_inputs(self, images, segmentation_maps=None, **kwargs) -> BatchFeature:
        return_tensors = kwargs.pop("return_tensors", None)
        prepared = self._prepare_image_like_inputs(images, **kwargs)  # each (channels, height, width)
        data = {"pixel_values": self._preprocess(prepared, return_tensors=None, **kwargs)["pixel_values"]}
        if segmentation_maps is not None:
            masks = [mask_array(mask, index) for index, mask in enumerate(as_mask_list(segmentation_maps))]
            if len(masks) != len(prepared):
                raise ValueError(f"Got {len(prepared)} images but {len(masks)} segmentation maps; give one mask per image")
            for index, (image, mask) in enumerate(zip(prepared, masks)):
                if mask.shape != image.shape[1:]:
                    raise ValueError(
                        f"Segmentation map {index} has size (height, width) {mask.shape}, its image {image.shape[1:]}: "
                        "a mask must have its image's size"
                    )
            if kwargs["do_resize"]:
                masks = [resize_nearest(mask, (kwargs["size"].height, kwargs["size"].width)) for mask in masks]
            data["labels"] = masks  # each (height, width), int64 class ids
        return BatchFeature(data=data, tensor_type=return_tensors)

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

    def post_process_semantic_segmentation(self, outputs, target_sizes: list[tuple[int, int]] | None = None) -> list[torch.Tensor]:
        """The class id of every pixel, (height, width) per image: the argmax of the logits, resized bilinearly
        to `target_sizes[i]` = (height, width) first when given (the pipeline passes the original image sizes)."""
        logits = outputs.logits  # (batch, num_labels, height, width)
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        if len(target_sizes) != len(logits):
            raise ValueError(f"Got {len(target_sizes)} target sizes for {len(logits)} images; give one (height, width) each")
        return [
            torch.nn.functional.interpolate(image_logits[None], size=tuple(int(s) for s in size), mode="bilinear",
                                            align_corners=False)[0].argmax(dim=0)
            for image_logits, size in zip(logits, target_sizes)
        ]


def as_mask_list(segmentation_maps) -> list:
    """One mask, or a batch of them (a list, or a 3-D array or tensor), as a list."""
    if isinstance(segmentation_maps, (list, tuple)):
        return list(segmentation_maps)
    if getattr(segmentation_maps, "ndim", None) == 3:
        return list(segmentation_maps)
    return [segmentation_maps]


def mask_array(mask, index: int) -> np.ndarray:
    """A mask as a (height, width) int64 array of class ids."""
    array = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(
            f"Segmentation map {index} must be a single-channel image or 2-D integer array of class ids, got shape "
            f"{array.shape} and dtype {array.dtype}"
            + (f" (PIL mode {mask.mode})" if hasattr(mask, "mode") else "")
        )
    return array.astype(np.int64)


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize that samples the mask at the centres of the output pixels, like PIL's NEAREST."""
    rows = ((np.arange(size[0]) + 0.5) * mask.shape[0] / size[0]).astype(np.int64)
    columns = ((np.arange(size[1]) + 0.5) * mask.shape[1] / size[1]).astype(np.int64)
    return mask[rows[:, None], columns[None, :]]


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


__all__ = ["UNetImageProcessor"]
