"""Configuration of the fusion model: a vision encoder and a text encoder (any transformers encoders) whose pooled
feature vectors are projected, concatenated and classified by a small MLP head.

The two encoders' configs are nested, like transformers' `VisionTextDualEncoderConfig`. A built-in encoder (BERT,
ViT, ...) or one registered in this process (an hfmodels family, once `hfmodels` is imported) resolves through
`AutoConfig`. Any other encoder must have its code saved beside the fusion model
(`FusionForClassification.save_pretrained` does that) and named in its sub-config's `auto_map`, transformers' own way
of naming remote code; it is then loaded with `get_class_from_dynamic_module` from the folder the fusion config came
from, but only when this file itself runs as remote code from that folder (`trust_remote_code=True`), which already
trusts every code file in it.
"""

from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.dynamic_module_utils import get_class_from_dynamic_module
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from .validation import ValidatedConfig

# transformers imports remote code as modules of this package (transformers.utils.TRANSFORMERS_DYNAMIC_MODULE_NAME)
REMOTE_CODE_PACKAGE = "transformers_modules"
ENCODERS = ("vision_config", "text_config")


def runs_as_remote_code(cls: type) -> bool:
    return cls.__module__.split(".")[0] == REMOTE_CODE_PACKAGE


def remote_class(field: str, config: dict | PreTrainedConfig, auto_class: str, source: str | None) -> type | None:
    """The class `auto_map[auto_class]` of a sub-config names, from the code files in `source` (a folder or Hub id);
    None when this module is not itself remote code from there, or the sub-config names no such class."""
    auto_map = (config.get("auto_map") if isinstance(config, dict) else getattr(config, "auto_map", None)) or {}
    reference = auto_map.get(auto_class)
    if not reference or not source or not runs_as_remote_code(FusionConfig):
        return None
    if "--" in reference:
        raise ValueError(
            f"FusionConfig.{field}.auto_map[{auto_class!r}]={reference!r} points to code in another repository; "
            "only code saved beside the fusion model is loaded"
        )
    return get_class_from_dynamic_module(reference, source)


def resolve_sub_config(field: str, value: Any, source: str | None) -> PreTrainedConfig:
    """A sub-config as a config object: kept if it is one, else built from its dict by `model_type`."""
    if isinstance(value, PreTrainedConfig):
        return value
    if not isinstance(value, dict) or not isinstance(value.get("model_type"), str):
        raise ValueError(
            f"FusionConfig.{field}={value!r} is invalid: give the encoder's config, a PreTrainedConfig or its dict "
            "with a `model_type`"
        )
    model_type = value["model_type"]
    if model_type in CONFIG_MAPPING:  # built into transformers, or registered (e.g. by `import hfmodels`)
        return CONFIG_MAPPING[model_type].from_dict(value)
    config_class = remote_class(field, value, "AutoConfig", source)
    if config_class is None:
        raise ValueError(
            f"FusionConfig.{field} has model_type={model_type!r}, which transformers does not know: use a built-in "
            "encoder type, import the package that registers this one (e.g. `import hfmodels`), or load a saved "
            "fusion model with `trust_remote_code=True` from a folder holding the encoder's code and `auto_map`"
        )
    return config_class.from_dict(value)


class FusionConfig(ValidatedConfig, PreTrainedConfig):
    r"""
    Image + text -> class. Each encoder's pooled feature vector (its `pooler_output`, else the mean of its last hidden
    states over the real tokens / pixels) is projected to `projection_dim` and layer-normalised; the two are
    concatenated and go through dropout, a `head_hidden_size` GELU layer, dropout and a linear layer to the classes.

    Args:
        vision_config: the image encoder's config (a `PreTrainedConfig`, or its dict with `model_type`).
        text_config: the text encoder's config (same).
        projection_dim: width each modality's features are projected to before they are concatenated.
        head_hidden_size: width of the hidden layer of the classification head.
        dropout: dropout probability on the fused features and in the head.
        freeze_vision_encoder / freeze_text_encoder: keep that encoder's weights (and batch-norm statistics) fixed
            while training: its parameters do not require gradients and it stays in eval mode.
        num_labels / id2label / label2id: the classes (standard transformers fields).
    """

    model_type = "hfmodels-fusion"
    # transformers < 5.20 builds a default FusionConfig() to compare with when it prints or saves one; there is
    # none (the encoders have no default), as for its own VisionTextDualEncoderConfig
    has_no_defaults_at_init = True
    # a composite config, as transformers knows them: what is set on it for every part (attn_implementation, dtype)
    # reaches the encoders' configs
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    vision_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    projection_dim: int = 64
    head_hidden_size: int = 128
    dropout: float = 0.1
    freeze_vision_encoder: bool = False
    freeze_text_encoder: bool = False

    def __post_init__(self, **kwargs):
        source = kwargs.get("name_or_path")  # the folder or Hub id being loaded, where remote encoder code lives
        for field in ENCODERS:
            setattr(self, field, resolve_sub_config(field, getattr(self, field), source))
        super().__post_init__(**kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        # AutoConfig passes the source (where remote encoder code lives) along, a direct call does not: give it for
        # the sub-configs, then leave `name_or_path` as other configs do (the model's from_pretrained sets it)
        if "name_or_path" in kwargs:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        config = super().from_pretrained(
            pretrained_model_name_or_path, name_or_path=str(pretrained_model_name_or_path), **kwargs
        )
        loaded = config[0] if isinstance(config, tuple) else config  # (config, unused kwargs) with return_unused_kwargs
        loaded.name_or_path = ""
        return config

    def check_fields(self) -> None:
        for field in ("projection_dim", "head_hidden_size"):
            self.require(field, getattr(self, field) >= 1, "must be a positive integer")
        self.require("dropout", 0.0 <= self.dropout < 1.0, "must be in [0, 1)")
        self.require("num_labels", self.num_labels is not None and self.num_labels >= 1,
                     "must be >= 1 (1: regression of one number)")
        for field in ENCODERS:  # set after __post_init__ (from_pretrained's keyword arguments), it is no config yet
            self.require(field, isinstance(getattr(self, field), PreTrainedConfig),
                         "give the encoder's config, a PreTrainedConfig or its dict with a `model_type`")
            feature_size(field, getattr(self, field))


def feature_size(field: str, config: PreTrainedConfig) -> int:
    """Width of an encoder's pooled features: `hidden_size`, else the last of `hidden_sizes` (CNNs); for an encoder
    on a transformers backbone (its `backbone_config`), the backbone's."""
    backbone = getattr(config, "backbone_config", None)
    widths = backbone if isinstance(backbone, dict) else vars(config)
    size = widths.get("hidden_size")
    if size is None and widths.get("hidden_sizes"):
        size = widths["hidden_sizes"][-1]
    if not isinstance(size, int) or size < 1:
        raise ValueError(
            f"FusionConfig.{field} (model_type={config.model_type!r}) is invalid: it has neither `hidden_size` nor "
            "`hidden_sizes`, so the width of its features is unknown"
        )
    return size


__all__ = ["FusionConfig"]
