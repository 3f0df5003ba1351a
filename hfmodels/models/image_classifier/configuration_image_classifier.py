"""Configuration of the image classifier: a small ResNet-style CNN."""

from transformers import PreTrainedConfig

from .validation import ValidatedConfig


class ImageClassifierConfig(ValidatedConfig, PreTrainedConfig):
    r"""
    A ResNet-style CNN: a 3x3 stem, then one stage per entry of `hidden_sizes`, each made of
    `depths[i]` residual blocks (two 3x3 convolutions with batch norm). Every stage after the
    first halves the spatial size. Global average pooling, dropout and a linear head follow.
    With `backbone_config`, a transformers vision backbone replaces the CNN (`hidden_sizes` and `depths` are then
    unused): its last feature map is pooled.

    Args:
        num_channels: channels of the input images (1 for grayscale, 3 for RGB).
        image_size: side of the square images the processor produces and the model expects.
        hidden_sizes: output channels of each stage.
        depths: residual blocks in each stage (same length as `hidden_sizes`).
        dropout: dropout probability before the classification head.
        backbone_config: None (the CNN), or the dict of a transformers backbone config (its `model_type`, sizes and
            `out_features`), e.g. a pretrained ResNet's, built with `AutoBackbone.from_config`.
        class_weights: optional weight of each class in the cross-entropy (`num_labels` positive numbers), e.g. to
            count the rarer class more on imbalanced data (`hfmodels train --class-weights auto`); single-label
            classification only.
        num_labels / id2label / label2id / problem_type: the classes, and the loss as transformers' classification
            heads pick it (standard transformers fields): "single_label_classification" (cross-entropy),
            "multi_label_classification" (binary cross-entropy per label) or "regression" (mean squared error);
            when None, regression for num_labels=1, else by the labels' dtype.
    """

    model_type = "hfmodels-image-classifier"
    replaced_by_backbone = ("hidden_sizes", "depths")  # what a backbone_config makes unused

    num_channels: int = 1
    image_size: int = 8
    hidden_sizes: list[int] | tuple[int, ...] = (32, 64, 128)
    depths: list[int] | tuple[int, ...] = (1, 1, 1)
    dropout: float = 0.1
    class_weights: list[float] | None = None
    backbone_config: dict | None = None

    def check_fields(self) -> None:
        self.require("num_channels", self.num_channels in (1, 3), "must be 1 (grayscale) or 3 (RGB)")
        self.require("hidden_sizes", self.hidden_sizes and min(self.hidden_sizes) >= 1,
                     "must be a non-empty list of positive integers")
        self.require("depths", len(self.depths) == len(self.hidden_sizes) and min(self.depths) >= 1,
                     f"must hold one positive integer per stage of hidden_sizes={self.hidden_sizes}")
        smallest = max(2, 2 ** (len(self.hidden_sizes) - 1))  # every stage after the first halves the size
        self.require("image_size", self.backbone_config is not None or self.image_size >= smallest,
                     f"must be >= {smallest} for the {len(self.hidden_sizes)} stages of hidden_sizes")
        self.require("backbone_config", self.backbone_config is None or (
            isinstance(self.backbone_config, dict) and "model_type" in self.backbone_config
            and self.backbone_config.get("num_channels", 3) == self.num_channels),
            f"must be None or a backbone config's dict with its model_type, of num_channels={self.num_channels}")
        self.require("dropout", 0.0 <= self.dropout < 1.0, "must be in [0, 1)")
        self.require("num_labels", self.num_labels is not None and self.num_labels >= 1,
                     "must be >= 1 (1: regression of one number)")
        self.require_class_weights()

__all__ = ["ImageClassifierConfig"]
