"""Configuration of the image classifier: a small ResNet-style CNN."""

from transformers import PreTrainedConfig


class ImageClassifierConfig(PreTrainedConfig):
    r"""
    A ResNet-style CNN: a 3x3 stem, then one stage per entry of `hidden_sizes`, each made of
    `depths[i]` residual blocks (two 3x3 convolutions with batch norm). Every stage after the
    first halves the spatial size. Global average pooling, dropout and a linear head follow.

    Args:
        num_channels: channels of the input images (1 for grayscale, 3 for RGB).
        image_size: side of the square images the processor produces and the model expects.
        hidden_sizes: output channels of each stage.
        depths: residual blocks in each stage (same length as `hidden_sizes`).
        dropout: dropout probability before the classification head.
        class_weights: optional weight of each class in the cross-entropy (`num_labels` positive numbers), e.g. to
            count the rarer class more on imbalanced data (`hfmodels train --class-weights auto`).
        num_labels / id2label / label2id: the classes (standard transformers fields).
    """

    model_type = "hfmodels-image-classifier"

    num_channels: int = 1
    image_size: int = 8
    hidden_sizes: list[int] | tuple[int, ...] = (32, 64, 128)
    depths: list[int] | tuple[int, ...] = (1, 1, 1)
    dropout: float = 0.1
    class_weights: list[float] | None = None

    def __post_init__(self, **kwargs):
        self.hidden_sizes = as_list(self.hidden_sizes)
        self.depths = as_list(self.depths)
        if self.class_weights is not None:
            self.class_weights = as_list(self.class_weights)
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        def fail(field: str, value, allowed: str):
            raise ValueError(f"ImageClassifierConfig.{field}={value!r} is invalid: {allowed}.")

        if not is_int(self.num_channels) or self.num_channels not in (1, 3):
            fail("num_channels", self.num_channels, "must be 1 (grayscale) or 3 (RGB)")
        if not is_int(self.image_size) or self.image_size < 2:
            fail("image_size", self.image_size, "must be an integer >= 2")
        if not isinstance(self.hidden_sizes, list) or not self.hidden_sizes or any(
            not is_int(h) or h < 1 for h in self.hidden_sizes
        ):
            fail("hidden_sizes", self.hidden_sizes, "must be a non-empty list of positive integers")
        if not isinstance(self.depths, list) or len(self.depths) != len(self.hidden_sizes) or any(
            not is_int(d) or d < 1 for d in self.depths
        ):
            fail("depths", self.depths, f"must hold one positive integer per stage of hidden_sizes={self.hidden_sizes}")
        if self.image_size < 2 ** (len(self.hidden_sizes) - 1):
            smallest = 2 ** (len(self.hidden_sizes) - 1)
            fail("image_size", self.image_size, f"must be >= {smallest} for hidden_sizes={self.hidden_sizes}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            fail("dropout", self.dropout, "must be in [0, 1)")
        if self.num_labels is None or self.num_labels < 2:
            fail("num_labels", self.num_labels, "must be >= 2")
        if self.class_weights is not None and (
            not isinstance(self.class_weights, list) or len(self.class_weights) != self.num_labels
            or any(not isinstance(w, (int, float)) or isinstance(w, bool) or not w > 0 for w in self.class_weights)
        ):
            fail("class_weights", self.class_weights, f"must be None or {self.num_labels} positive numbers, one per class")


def as_list(value):
    """A tuple (from a Python caller) as a list, as JSON gives it; anything else as it is, for the checks to name."""
    return list(value) if isinstance(value, tuple) else value


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not to a config


__all__ = ["ImageClassifierConfig"]
