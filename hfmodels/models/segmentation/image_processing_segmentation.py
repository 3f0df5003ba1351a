"""Image processor of the segmentation model: images and their masks resized together; logits back to masks."""

import numpy as np
import torch
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature

from .image_processing_base import ChannelsImageProcessor, tensor_as_array


class UNetImageProcessor(ChannelsImageProcessor):
    r"""
    Turns PIL images, numpy arrays or torch tensors (grayscale, RGB or RGBA; one image or a batch)
    into `pixel_values` of shape (batch, num_channels, height, width), and their masks, when given as
    `segmentation_maps`, into `labels` of shape (batch, height, width).

    Images are converted to `num_channels` channels (RGB(A) to grayscale by luma, grayscale to RGB
    by repetition, RGBA to RGB by dropping alpha) and resized bilinearly. A mask is a single-channel
    image or 2-D array of class ids of its image's size; it is resized with nearest neighbours, so
    it keeps holding class ids, and lines up with its resized image. PIL images are read as the colours
    they show (PIL converts palette, 1-bit, CMYK, ... images first); a palette mask holds its class ids.

    Pixels are on the 0-255 scale; for float images in [0, 1] pass `do_rescale=False` (transformers'
    convention). Input that is no image (None, a string array, no pixels, NaN, ...) is a ValueError
    or TypeError that names it.
    """

    num_channels = 3
    size = {"height": 64, "width": 64}
    do_normalize = True
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]

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
                raise ValueError(
                    f"Got {len(prepared)} images but {len(masks)} segmentation maps; give one mask per image"
                )
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

    def post_process_semantic_segmentation(
        self, outputs, target_sizes: list[tuple[int, int]] | None = None
    ) -> list[torch.Tensor]:
        """The class id of every pixel, (height, width) per image: the argmax of the logits, resized bilinearly
        to `target_sizes[i]` = (height, width) first when given (the pipeline passes the original image sizes)."""
        logits = outputs.logits  # (batch, num_labels, height, width)
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        if len(target_sizes) != len(logits):
            raise ValueError(
                f"Got {len(target_sizes)} target sizes for {len(logits)} images; give one (height, width) each"
            )
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
    if isinstance(mask, torch.Tensor):
        mask = tensor_as_array(mask)
    try:
        array = np.asarray(mask)
    except ValueError:  # a ragged nested list
        array = np.asarray(None)
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        scalar = array.ndim == 0 or array.dtype == object
        raise ValueError(
            f"Segmentation map {index} must be a single-channel image or 2-D integer array of class ids, got "
            + (f"an object of type {type(mask).__name__}" if scalar else f"shape {array.shape} and dtype {array.dtype}")
            + (f" (PIL mode {mask.mode})" if isinstance(mask, Image.Image) else "")
        )
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"Segmentation map {index} holds class ids up to {array.max()}, more than an int64 holds")
    return array.astype(np.int64)


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize that samples the mask at the centres of the output pixels, like PIL's NEAREST."""
    rows = ((np.arange(size[0]) + 0.5) * mask.shape[0] / size[0]).astype(np.int64)
    columns = ((np.arange(size[1]) + 0.5) * mask.shape[1] / size[1]).astype(np.int64)
    return mask[rows[:, None], columns[None, :]]


__all__ = ["UNetImageProcessor"]
