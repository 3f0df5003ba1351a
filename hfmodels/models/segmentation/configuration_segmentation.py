"""Configuration of the segmentation model: a U-Net that gives every pixel a class."""

from transformers import PreTrainedConfig

from .validation import ValidatedConfig

NORMS = ("batch", "group", "none")


class UNetConfig(ValidatedConfig, PreTrainedConfig):
    r"""
    A U-Net (Ronneberger et al., 2015). The encoder has `depth + 1` levels of two 3x3 convolutions
    (each followed by the normalisation and a ReLU); a 2x2 max-pool halves the spatial size between
    levels. Level `i` has `base_channels * channel_multiplier ** i` channels. The decoder climbs back
    up: at each level it upsamples (bilinear) to the size of the encoder's feature map there,
    concatenates that map (the skip connection) and applies two 3x3 convolutions. A 1x1 convolution
    gives one logit per class and pixel, at the input's resolution.

    With `backbone_config`, a transformers vision backbone is the encoder and a feature pyramid (FPN) decoder
    merges its feature maps into `base_channels` features upsampled to the input's resolution (`depth` and
    `channel_multiplier` are then unused).

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
        backbone_config: None (the U-Net's own encoder), or the dict of a transformers backbone config (its
            `model_type`, sizes and the `out_features` the decoder merges), built with `AutoBackbone.from_config`.
        num_labels / id2label / label2id: the classes, background included (standard transformers fields).
    """

    model_type = "hfmodels-segmentation"
    replaced_by_backbone = ("depth", "channel_multiplier")  # what a backbone_config makes unused

    num_channels: int = 3
    image_size: int = 64
    depth: int = 3
    base_channels: int = 8
    channel_multiplier: int = 2
    norm: str = "batch"
    semantic_loss_ignore_index: int = 255
    class_weights: list[float] | None = None
    backbone_config: dict | None = None

    def level_channels(self) -> list[int]:
        """Channels of each level, from the input's resolution down to the bottleneck."""
        return [self.base_channels * self.channel_multiplier**level for level in range(self.depth + 1)]

    def check_fields(self) -> None:
        self.require("num_channels", self.num_channels in (1, 3), "must be 1 (grayscale) or 3 (RGB)")
        self.require("depth", 1 <= self.depth <= 8, "must be an integer from 1 to 8")
        self.require("image_size", self.backbone_config is not None or self.image_size >= 2**self.depth,
                     f"must be an integer >= {2**self.depth} (2 ** depth, depth={self.depth})")
        self.require("base_channels", self.base_channels >= 1, "must be a positive integer")
        self.require("channel_multiplier", self.channel_multiplier >= 1, "must be a positive integer")
        self.require("norm", self.norm in NORMS, f"must be one of {', '.join(NORMS)}")
        self.require("num_labels", self.num_labels is not None and self.num_labels >= 2,
                     "must be >= 2 (background and at least one class)")
        self.require("semantic_loss_ignore_index", not 0 <= self.semantic_loss_ignore_index < self.num_labels,
                     f"must be an integer that is not a class id (outside 0..{self.num_labels - 1})")
        self.require("backbone_config", self.backbone_config is None or (
            isinstance(self.backbone_config, dict) and "model_type" in self.backbone_config
            and self.backbone_config.get("num_channels", 3) == self.num_channels),
            f"must be None or a backbone config's dict with its model_type, of num_channels={self.num_channels}")
        self.require_class_weights()


__all__ = ["UNetConfig"]
