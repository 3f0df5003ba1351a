"""A U-Net for semantic segmentation, as a transformers model."""

from collections import OrderedDict

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithNoAttention, SemanticSegmenterOutput
from transformers.utils import can_return_tuple

from .backbone import backbone_from_config
from .configuration_segmentation import UNetConfig
from .conv_blocks import ConvNormAct
from .loading import StrictLoadingMixin
from .validation import check_class_ids


class DoubleConv(nn.Sequential):
    """Two 3x3 (convolution, normalisation, ReLU) units, `conv1` and `conv2`: the unit of every U-Net level."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__(OrderedDict(conv1=ConvNormAct(in_channels, out_channels, norm=norm),
                                     conv2=ConvNormAct(out_channels, out_channels, norm=norm)))


class FeaturePyramidDecoder(nn.Module):
    """A feature pyramid (Lin et al., 2017) over a backbone's feature maps: each map to `channels` by a 1x1
    convolution, summed from the coarsest down (each sum upsampled to the next finer map), two 3x3 convolutions on
    the finest sum, then upsampled to the input's size."""

    def __init__(self, in_channels: list[int], channels: int, norm: str):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(width, channels, kernel_size=1) for width in in_channels)
        self.output = DoubleConv(channels, channels, norm)

    def forward(self, feature_maps: tuple[torch.Tensor, ...], size: torch.Size) -> torch.Tensor:
        merged = self.lateral[-1](feature_maps[-1])  # (batch, channels, h, w) at the coarsest map's size
        for lateral, feature_map in zip(reversed(self.lateral[:-1]), reversed(feature_maps[:-1])):
            upsampled = nn.functional.interpolate(merged, size=feature_map.shape[2:], mode="bilinear",
                                                  align_corners=False)
            merged = lateral(feature_map) + upsampled
        return nn.functional.interpolate(self.output(merged), size=size, mode="bilinear", align_corners=False)


# A DoubleConv was a plain sequence (`encoder.0.0`, `encoder.0.1`, ..., `decoder.0.4`) before its layers had names
# people (and a LoRA `target=`) can read: folders saved before load through these
# (`StrictLoadingMixin.renamed_weights`).
RENAMED_DOUBLE_CONV_WEIGHTS = {
    rf"(encoder\.\d+|decoder\.\d+|pyramid\.output)\.{index}\.": rf"\1.{name}."
    for index, name in ((0, "conv1.conv"), (1, "conv1.norm"), (3, "conv2.conv"), (4, "conv2.norm"))
}


class UNetPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = UNetConfig
    config: UNetConfig
    base_model_prefix = "unet"
    renamed_weights = RENAMED_DOUBLE_CONV_WEIGHTS
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["DoubleConv"]
    _can_compile_fullgraph = True  # tests/model_tester.py compiles a training step with fullgraph=True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d):
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, UNetForSemanticSegmentation) and module.class_weights is not None:
            init.copy_(module.class_weights, torch.tensor(self.config.class_weights))


class UNetModel(UNetPreTrainedModel):
    """The encoder and decoder with skip connections: images -> per-pixel features at the input's resolution. With
    `config.backbone_config`, a transformers backbone (`self.backbone`) and a feature pyramid (`self.pyramid`)."""

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        if config.backbone_config is not None:
            self.backbone = backbone_from_config(config.backbone_config)
            self.pyramid = FeaturePyramidDecoder(self.backbone.channels, config.base_channels, config.norm)
            self.post_init()
            return
        channels = config.level_channels()
        inputs = [config.num_channels, *channels[:-1]]
        self.encoder = nn.ModuleList(DoubleConv(i, o, config.norm) for i, o in zip(inputs, channels))
        # decoder level i: the upsampled level i + 1 concatenated with the encoder's level i
        self.decoder = nn.ModuleList(
            DoubleConv(channels[level + 1] + channels[level], channels[level], config.norm)
            for level in range(config.depth)
        )
        self.post_init()

    @can_return_tuple
    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs
    ) -> BaseModelOutputWithNoAttention:
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if self.config.backbone_config is not None:
            feature_maps = self.backbone(pixel_values, return_dict=True).feature_maps  # (batch, channels[i], h, w)
            hidden_states = self.pyramid(feature_maps, pixel_values.shape[2:])  # (batch, base_channels, height, width)
            all_hidden_states = (*feature_maps, hidden_states) if output_hidden_states else None
            return BaseModelOutputWithNoAttention(last_hidden_state=hidden_states, hidden_states=all_hidden_states)
        smallest = 2**self.config.depth
        if (pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels
                or min(pixel_values.shape[2:]) < smallest):
            raise ValueError(
                f"pixel_values must have shape (batch, {self.config.num_channels}, height, width) with height and "
                f"width >= {smallest} for this model (config.num_channels={self.config.num_channels}, "
                f"depth={self.config.depth}), got {tuple(pixel_values.shape)}"
            )

        skips = []
        hidden_states = pixel_values  # (batch, num_channels, height, width)
        for level, block in enumerate(self.encoder):
            if level > 0:
                hidden_states = nn.functional.max_pool2d(hidden_states, 2)
            hidden_states = block(hidden_states)  # (batch, channels[level], height / 2**level, width / 2**level)
            skips.append(hidden_states)
        all_hidden_states = tuple(skips) if output_hidden_states else None
        for level in reversed(range(self.config.depth)):
            skip = skips[level]  # (batch, channels[level], h, w)
            upsampled = nn.functional.interpolate(
                hidden_states, size=skip.shape[2:], mode="bilinear", align_corners=False
            )
            hidden_states = self.decoder[level](torch.cat([skip, upsampled], dim=1))  # (batch, channels[level], h, w)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        return BaseModelOutputWithNoAttention(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


class UNetForSemanticSegmentation(UNetPreTrainedModel):
    """The U-Net with a 1x1 convolution to class logits; pixel cross-entropy when `labels` (masks) are given."""

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        self.unet = UNetModel(config)
        self.classifier = nn.Conv2d(config.base_channels, config.num_labels, kernel_size=1)
        # the loss's class weights, on the model's device: no copy to it at every step
        weights = None if config.class_weights is None else torch.tensor(config.class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> SemanticSegmenterOutput:
        r"""labels: (batch, height, width) masks of class ids (`semantic_loss_ignore_index` where there is none)."""
        outputs = self.unet(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(outputs.last_hidden_state)  # (batch, num_labels, height, width)

        loss = None
        if labels is not None:
            loss = self.loss(logits, labels.to(logits.device))
        return SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean (class-weighted) cross-entropy over the pixels whose label is not `semantic_loss_ignore_index`; 0
        when every pixel is ignored. transformers' segmentation loss (self.loss_function) takes no class weights and
        gives NaN there."""
        ignore_index = self.config.semantic_loss_ignore_index
        if labels.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(
                f"labels must be masks of shape (batch, height, width) = {(logits.shape[0], *logits.shape[2:])}, "
                f"the shape of the pixel_values, got {tuple(labels.shape)}"
            )
        check_class_ids(labels, self.config.num_labels, ignore_index=ignore_index)
        weight = self.class_weights.to(logits.dtype) if self.class_weights is not None else None
        loss = nn.functional.cross_entropy(logits, labels.long(), weight=weight, ignore_index=ignore_index)
        # a batch without labelled pixels: cross_entropy's mean is 0 / 0 (its gradient is 0 all the same)
        return torch.where((labels != ignore_index).any(), loss, 0.0)


__all__ = ["UNetPreTrainedModel", "UNetModel", "UNetForSemanticSegmentation"]
