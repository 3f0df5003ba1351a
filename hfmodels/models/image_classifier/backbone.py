# Generated from hfmodels/models/backbone.py by `make fix-copies`: edit that file, not this copy.
"""A transformers vision backbone (anything `AutoBackbone` knows: ResNet, ConvNeXt, Swin, DINOv2, ...) as the encoder
of an hfmodels model, built from the config the model saved: no download when the model is built or loaded (the
backbone's weights are the model's own, in its safetensors; training loads the pretrained ones into it first).
"""

from transformers import AutoBackbone, AutoConfig, PreTrainedConfig, PreTrainedModel


def backbone_from_config(backbone_config: dict) -> PreTrainedModel:
    """The backbone of a saved `backbone_config` (the transformers config's dict, with its `model_type` and the
    `out_features` the model reads), randomly initialised."""
    fields = dict(backbone_config)
    config: PreTrainedConfig = AutoConfig.for_model(fields.pop("model_type"), **fields)
    return AutoBackbone.from_config(config)
