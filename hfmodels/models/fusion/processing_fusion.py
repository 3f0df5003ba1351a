"""The fusion processor: the image encoder's image processor and the text encoder's tokenizer, saved and loaded as
one (`AutoProcessor`)."""

from transformers.processing_utils import ProcessorMixin


class FusionProcessor(ProcessorMixin):
    r"""
    `processor(images=..., text=..., return_tensors="pt")` gives `pixel_values` (batch, channels, height, width) from
    the image processor and `input_ids` / `attention_mask` (batch, seq) from the tokenizer: one text per image.
    Pass `padding=True` (or "longest") for a batch of texts of different lengths.
    """

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer, **kwargs)

    def prepare_inputs_layout(self, images=None, text=None, videos=None, audio=None, **kwargs):
        try:  # transformers fetches the images here, before `validate_inputs`
            return super().prepare_inputs_layout(images=images, text=text, videos=videos, audio=audio, **kwargs)
        except TypeError as error:
            raise TypeError(
                f"{type(self).__name__} images must be PIL images, numpy arrays, torch tensors or paths, one or a list "
                f"({error})"
            ) from error

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        name = type(self).__name__
        if images is None or text is None:
            given = [argument for argument, value in (("images", images), ("text", text)) if value is not None]
            raise ValueError(
                f"{name} needs both images and texts, one text per image; "
                f"got {given[0] + ' only' if given else 'neither'}"
            )
        # text: str or list of str
        super().validate_inputs(images=images, text=text, videos=videos, audio=audio, **kwargs)
        image_count, text_count = count_images(images), len(text) if isinstance(text, list) else 1
        if image_count != text_count:
            raise ValueError(f"{name} got {image_count} images but {text_count} texts; give one text per image")
        if image_count == 0:
            raise ValueError(f"{name} got no images and no texts; give at least one image and its text")


def count_images(images) -> int:
    """How many images the image processor makes of `images`: it flattens lists of lists and 4-D batches."""
    if isinstance(images, (list, tuple)):
        return sum(count_images(image) for image in images)
    return images.shape[0] if getattr(images, "ndim", None) == 4 else 1


__all__ = ["FusionProcessor"]
