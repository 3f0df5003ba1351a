# Generated from hfmodels/models/backbone.py by `make fix-copies`: edit that file, not this copy.
"""A transformers vision backbone (anything `AutoBackbone` knows: ResNet, ConvNeXt, Swin, DINOv2, ...) as the encoder
of an hfmodels model, built from the config the model saved: no download when the model is built or loaded (the
backbone's weights are the model's own, in its safetensors; training loads the pretrained ones into it first).
"""

from transformers import AutoBackbone, AutoConfig, PreTrainedConfig, PreTrainedModel

# what a backbone's config holds that is not the backbone: the labels of the head it was saved with, bookkeeping
NOT_THE_BACKBONE = ("id2label", "label2id", "architectures", "_name_or_path", "transformers_version")


def backbone_config_dict(config: PreTrainedConfig) -> dict:
    """What a model saves of its backbone's config (`backbone_config`): the backbone's own fields, JSON-safe."""
    return {key: value for key, value in config.to_dict().items() if key not in NOT_THE_BACKBONE}


def backbone_from_config(backbone_config: dict) -> PreTrainedModel:
    """The backbone of a saved `backbone_config` (the transformers config's dict, with its `model_type` and the
    `out_features` the model reads), randomly initialised."""
    fields = dict(backbone_config)
    config: PreTrainedConfig = AutoConfig.for_model(fields.pop("model_type"), **fields)
    return AutoBackbone.from_config(config)
