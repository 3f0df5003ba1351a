# Generated from hfmodels/models/backbone.py by `make fix-copies`: edit that file, not this copy.
"""A transformers encoder as the body of an hfmodels model, built from the config the model saved: no download when
the model is built or loaded (the encoder's weights are the model's own, in its safetensors; training loads the
pretrained ones into it first). A vision backbone is anything `AutoBackbone` knows (ResNet, ConvNeXt, Swin, DINOv2,
...), a text encoder anything `AutoModel` knows that reads token ids (BERT-like).
"""

import torch
from transformers import AutoBackbone, AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

# what an encoder's config holds that is not the encoder: the labels of the head it was saved with, bookkeeping
NOT_THE_BACKBONE = ("id2label", "label2id", "architectures", "_name_or_path", "transformers_version")


def backbone_config_dict(config: PreTrainedConfig) -> dict:
    """What a model saves of its encoder's config (`backbone_config`): the encoder's own fields, JSON-safe."""
    return {key: value for key, value in config.to_dict().items() if key not in NOT_THE_BACKBONE}


def config_of(backbone_config: dict) -> PreTrainedConfig:
    """The transformers config of a saved `backbone_config` (the config's dict, with its `model_type`)."""
    fields = dict(backbone_config)
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def backbone_from_config(backbone_config: dict) -> PreTrainedModel:
    """The vision backbone of a saved `backbone_config` (with the `out_features` the model reads), randomly
    initialised."""
    return AutoBackbone.from_config(config_of(backbone_config))


def text_encoder_from_config(backbone_config: dict) -> PreTrainedModel:
    """The text encoder (a base model) of a saved `backbone_config`, randomly initialised."""
    return AutoModel.from_config(config_of(backbone_config))


def pooled_features(outputs, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, width): an encoder's `pooler_output`, else the mean of its last hidden states over the real tokens
    (`attention_mask`) or over the pixels of a feature map."""
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is not None:
        return pooled.flatten(1)  # (batch, width)
    hidden_states = outputs.last_hidden_state
    if hidden_states.ndim == 4:  # (batch, width, height, width') feature map
        return hidden_states.mean((2, 3))
    if attention_mask is None:  # (batch, seq, width)
        return hidden_states.mean(1)
    weights = attention_mask[..., None].to(hidden_states.dtype)  # (batch, seq, 1)
    return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1)
