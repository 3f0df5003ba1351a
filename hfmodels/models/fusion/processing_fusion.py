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

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        if images is None or text is None:
            given = [name for name, value in (("images", images), ("text", text)) if value is not None]
            raise ValueError(
                f"{type(self).__name__} needs both images and texts, one text per image; got {' and '.join(given) or 'neither'} only"
            )
        image_count = len(images) if isinstance(images, (list, tuple)) else images.shape[0] if getattr(images, "ndim", 0) == 4 else 1
        text_count = len(text) if isinstance(text, (list, tuple)) else 1
        if image_count != text_count:
            raise ValueError(f"{type(self).__name__} got {image_count} images but {text_count} texts; give one text per image")
        super().validate_inputs(images=images, text=text, videos=videos, audio=audio, **kwargs)


__all__ = ["FusionProcessor"]
