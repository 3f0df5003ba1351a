"""A small ResNet-style CNN image classifier, as a transformers model."""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)
from transformers.utils import can_return_tuple

from .backbone import backbone_from_config
from .configuration_image_classifier import ImageClassifierConfig
from .conv_blocks import ConvNormAct
from .loading import RENAMED_CNN_WEIGHTS, StrictLoadingMixin
from .validation import check_classification_labels, classification_problem


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (a strided 1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, stride=stride)
        self.conv2 = ConvNormAct(out_channels, out_channels, activation=False)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvNormAct(in_channels, out_channels, stride=stride, activation=False, kernel_size=1)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv2(self.conv1(hidden_states)) + self.shortcut(hidden_states))


class ImageClassifierPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = ImageClassifierConfig
    config: ImageClassifierConfig
    base_model_prefix = "image_classifier"
    # the head was `classifier`, a suffix of the body's name, which peft's `modules_to_save` took for the head too
    renamed_weights = {**RENAMED_CNN_WEIGHTS, r"^classifier\.": "head."}
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["ResidualBlock"]
    _can_compile_fullgraph = True  # tests/model_tester.py compiles a training step with fullgraph=True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, std=0.01)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, ImageClassifierForImageClassification) and module.class_weights is not None:
            init.copy_(module.class_weights, torch.tensor(self.config.class_weights))


class ImageClassifierModel(ImageClassifierPreTrainedModel):
    """The convolutional backbone: images -> feature maps -> pooled feature vector (`num_features` wide). With
    `config.backbone_config`, a transformers backbone (`self.backbone`) makes the feature maps."""

    def __init__(self, config: ImageClassifierConfig):
        super().__init__(config)
        self.pooler = nn.AdaptiveAvgPool2d(1)
        if config.backbone_config is not None:
            self.backbone = backbone_from_config(config.backbone_config)
            self.num_features = self.backbone.channels[-1]
            self.post_init()
            return
        self.num_features = config.hidden_sizes[-1]
        self.stem = ConvNormAct(config.num_channels, config.hidden_sizes[0])
        stages = []
        in_channels = config.hidden_sizes[0]
        for index, (channels, depth) in enumerate(zip(config.hidden_sizes, config.depths)):
            blocks = [ResidualBlock(in_channels, channels, stride=1 if index == 0 else 2)]
            blocks += [ResidualBlock(channels, channels, stride=1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = channels
        self.stages = nn.ModuleList(stages)
        self.post_init()

    @can_return_tuple
    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs
    ) -> BaseModelOutputWithPoolingAndNoAttention:
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(
                f"pixel_values must have shape (batch, {self.config.num_channels}, height, width) for this model "
                f"(config.num_channels={self.config.num_channels}), got {tuple(pixel_values.shape)}"
            )

        if self.config.backbone_config is not None:
            feature_maps = self.backbone(pixel_values, return_dict=True).feature_maps  # (batch, channels[i], h, w)
            hidden_states, all_hidden_states = feature_maps[-1], tuple(feature_maps) if output_hidden_states else None
        else:
            hidden_states = self.stem(pixel_values)  # (batch, hidden_sizes[0], height, width)
            all_hidden_states = (hidden_states,) if output_hidden_states else None
            for stage in self.stages:
                hidden_states = stage(hidden_states)  # (batch, hidden_sizes[i], height / 2**i, width / 2**i)
                if output_hidden_states:
                    all_hidden_states += (hidden_states,)
        pooled_output = self.pooler(hidden_states).flatten(1)  # (batch, num_features)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled_output, hidden_states=all_hidden_states
        )


class ImageClassifierForImageClassification(ImageClassifierPreTrainedModel):
    """The backbone with a dropout + linear head; cross-entropy loss when `labels` are given."""

    def __init__(self, config: ImageClassifierConfig):
        super().__init__(config)
        self.image_classifier = ImageClassifierModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.image_classifier.num_features, config.num_labels)
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
    ) -> ImageClassifierOutputWithNoAttention:
        r"""labels: by `config.problem_type` (see `check_classification_labels`): (batch,) class ids in
        0 .. num_labels - 1, (batch, num_labels) 0/1 targets for multi-label classification, (batch,) or
        (batch, num_labels) numbers for regression."""
        outputs = self.image_classifier(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.head(self.dropout(outputs.pooler_output))  # (batch, num_labels)

        loss = None
        if labels is not None:
            check_classification_labels(labels, self.config)
            if classification_problem(labels, self.config) == "single_label_classification":
                # transformers' loss (self.loss_function) takes no class weights
                weight = self.class_weights.to(logits.dtype) if self.class_weights is not None else None
                loss = nn.functional.cross_entropy(logits, labels.to(logits.device), weight=weight)
            elif self.class_weights is not None:
                raise ValueError(
                    f"class_weights weigh the classes of single-label classification, not {self.config.problem_type} "
                    "(config.problem_type)"
                )
            else:  # mean squared error, or binary cross-entropy per label
                loss = self.loss_function(labels, logits, self.config)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["ImageClassifierPreTrainedModel", "ImageClassifierModel", "ImageClassifierForImageClassification"]
