"""Configuration of the segmentation model: a U-Net that gives every pixel a class."""

from transformers import PreTrainedConfig

NORMS = ("batch", "group", "none")


class UNetConfig(PreTrainedConfig):
    r"""
    A U-Net (Ronneberger et al., 2015). The encoder has `depth + 1` levels of two 3x3 convolutions
    (each followed by the normalisation and a ReLU); a 2x2 max-pool halves the spatial size between
    levels. Level `i` has `base_channels * channel_multiplier ** i` channels. The decoder climbs back
    up: at each level it upsamples (bilinear) to the size of the encoder's feature map there,
    concatenates that map (the skip connection) and applies two 3x3 convolutions. A 1x1 convolution
    gives one logit per class and pixel, at the input's resolution.

    Args:
        num_channels: channels of the input images (1 for grayscale, 3 for RGB).
        image_size: side of the square images the processor produces (the model takes any size of at
            least `2 ** depth`).
        depth: how many times the encoder halves the spatial size.
        base_channels: channels of the first level.
        channel_multiplier: factor between the channels of one level and the next.
        norm: normalisation after each convolution: "batch", "group" (groups of up to 8 channels) or "none".
        semantic_loss_ignore_index: mask value whose pixels the loss and the metrics skip (e.g. unlabelled
            borders); it must not be a class id.
        class_weights: optional weight of each class in the pixel cross-entropy (`num_labels` positive numbers).
        num_labels / id2label / label2id: the classes, background included (standard transformers fields).
    """

    model_type = "hfmodels-segmentation"

    num_channels: int = 3
    image_size: int = 64
    depth: int = 3
    base_channels: int = 8
    channel_multiplier: int = 2
    norm: str = "batch"
    semantic_loss_ignore_index: int = 255
    class_weights: list[float] | None = None

    def __post_init__(self, **kwargs):
        if self.class_weights is not None:
            self.class_weights = as_list(self.class_weights)
        super().__post_init__(**kwargs)
        self._validate()

    def level_channels(self) -> list[int]:
        """Channels of each level, from the input's resolution down to the bottleneck."""
        return [self.base_channels * self.channel_multiplier**level for level in range(self.depth + 1)]

    def _validate(self) -> None:
        def fail(field: str, value, allowed: str):
            raise ValueError(f"{type(self).__name__}.{field}={value!r} is invalid: {allowed}.")

        if not is_int(self.num_channels) or self.num_channels not in (1, 3):
            fail("num_channels", self.num_channels, "must be 1 (grayscale) or 3 (RGB)")
        if not is_int(self.depth) or not 1 <= self.depth <= 8:
            fail("depth", self.depth, "must be an integer from 1 to 8")
        if not is_int(self.image_size) or self.image_size < 2**self.depth:
            fail("image_size", self.image_size, f"must be an integer >= {2**self.depth} (2 ** depth, depth={self.depth})")
        if not is_int(self.base_channels) or self.base_channels < 1:
            fail("base_channels", self.base_channels, "must be a positive integer")
        if not is_int(self.channel_multiplier) or self.channel_multiplier < 1:
            fail("channel_multiplier", self.channel_multiplier, "must be a positive integer")
        if not isinstance(self.norm, str) or self.norm not in NORMS:
            fail("norm", self.norm, f"must be one of {', '.join(NORMS)}")
        if self.num_labels is None or self.num_labels < 2:
            fail("num_labels", self.num_labels, "must be >= 2 (background and at least one class)")
        if not is_int(self.semantic_loss_ignore_index) or 0 <= self.semantic_loss_ignore_index < self.num_labels:
            fail("semantic_loss_ignore_index", self.semantic_loss_ignore_index,
                 f"must be an integer that is not a class id (outside 0..{self.num_labels - 1})")
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


__all__ = ["UNetConfig"]
