"""The fusion model: an image encoder and a text encoder, their pooled features projected and concatenated, and an
MLP head that classifies the pair. Either encoder can be any transformers encoder, or one of ours."""

import os

import torch
from torch import nn
from transformers import AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .backbone import pooled_features
from .configuration_fusion import ENCODERS, FusionConfig, feature_size, remote_class
from .loading import RENAMED_CNN_WEIGHTS, StrictLoadingMixin
from .validation import check_classification_labels

ENCODER_MODULES = {"vision_config": "vision_model", "text_config": "text_model"}


def is_custom_class(cls: type) -> bool:
    """A class transformers does not ship, whose code must travel with the weights."""
    return cls.__module__.split(".")[0] != "transformers"


def code_reference(cls: type) -> str:
    """`module.Class`, the form of an `auto_map` entry for a code file saved beside the weights."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def encoder_from_config(field: str, config: PreTrainedConfig, source: str | None) -> PreTrainedModel:
    """The encoder (a base model, randomly initialised) of a sub-config: through `AutoModel` when transformers knows
    its type, else from the code saved beside the fusion model (see configuration_fusion)."""
    model_class = remote_class(field, config, "AutoModel", source)
    if model_class is not None:
        return model_class._from_config(config)
    try:
        return AutoModel.from_config(config)
    except ValueError as error:
        raise ValueError(
            f"FusionConfig.{field}: no encoder model for model_type={config.model_type!r} ({error})"
        ) from error


class FusionPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = FusionConfig
    config: FusionConfig
    base_model_prefix = "fusion"
    renamed_weights = RENAMED_CNN_WEIGHTS  # an image classifier's CNN as the image encoder, saved before
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    _can_compile_fullgraph = True  # its own code; with encoders that compile whole too (ours and BERT are tested)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # the encoders are PreTrainedModels: transformers dispatches their own `_init_weights` to them
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=0.02)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class FusionForClassification(FusionPreTrainedModel):
    """`vision_model` and `text_model` (base models), one projection + layer norm per modality, and the head."""

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        source = config.name_or_path or None
        self.vision_model = encoder_from_config("vision_config", config.vision_config, source)
        self.text_model = encoder_from_config("text_config", config.text_config, source)
        projection = config.projection_dim
        self.vision_projection = nn.Sequential(
            nn.Linear(feature_size("vision_config", config.vision_config), projection), nn.LayerNorm(projection)
        )
        self.text_projection = nn.Sequential(
            nn.Linear(feature_size("text_config", config.text_config), projection), nn.LayerNorm(projection)
        )
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(2 * projection, config.head_hidden_size),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.head_hidden_size, config.num_labels),
        )
        self.post_init()
        self.loss_type = "ForSequenceClassification"  # self.loss_function's; transformers reads it off the class name
        for encoder in self.frozen_encoders():
            encoder.requires_grad_(False)

    def get_input_embeddings(self) -> nn.Module:
        """The text encoder's token embeddings."""
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.text_model.set_input_embeddings(value)

    def frozen_encoders(self) -> list[nn.Module]:
        return [encoder for encoder, frozen in ((self.vision_model, self.config.freeze_vision_encoder),
                                                (self.text_model, self.config.freeze_text_encoder)) if frozen]

    def train(self, mode: bool = True) -> "FusionForClassification":
        """As `nn.Module.train`, but a frozen encoder stays in eval mode (no dropout, batch-norm statistics fixed)."""
        super().train(mode)
        for encoder in self.frozen_encoders():
            encoder.eval()
        return self

    @classmethod
    def from_encoders_pretrained(
        cls,
        vision_model_name_or_path: str | os.PathLike,
        text_model_name_or_path: str | os.PathLike,
        freeze_vision_encoder: bool = False,
        freeze_text_encoder: bool = False,
        **config_kwargs,
    ) -> "FusionForClassification":
        """A fusion model whose encoders are two trained models (folders or Hub ids, loaded with `AutoModel`: a saved
        classifier gives its backbone), with a new head; `config_kwargs` are further `FusionConfig` fields."""
        encoders = {
            "vision_config": AutoModel.from_pretrained(vision_model_name_or_path),
            "text_config": AutoModel.from_pretrained(text_model_name_or_path),
        }
        config = FusionConfig(
            **{field: encoder.config for field, encoder in encoders.items()},
            freeze_vision_encoder=freeze_vision_encoder, freeze_text_encoder=freeze_text_encoder, **config_kwargs,
        )
        model = cls(config)
        for field, encoder in encoders.items():
            getattr(model, ENCODER_MODULES[field]).load_state_dict(encoder.state_dict(), strict=True)
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """As `PreTrainedModel.save_pretrained`, plus the code of custom encoders (config and model files, named in
        their sub-config's `auto_map`), so the folder loads with `trust_remote_code=True` where only transformers is."""
        custom = [(field, getattr(self, ENCODER_MODULES[field])) for field in ENCODERS]
        custom = [(field, encoder) for field, encoder in custom if is_custom_class(type(encoder))]
        for field, encoder in custom:
            sub_config = getattr(self.config, field)
            sub_config.auto_map = {
                "AutoConfig": code_reference(type(sub_config)), "AutoModel": code_reference(type(encoder))
            }
        super().save_pretrained(save_directory, *args, **kwargs)
        for field, encoder in custom:
            for obj in (getattr(self.config, field), encoder):
                custom_object_save(obj, save_directory)  # its module file and the files that imports, relatively

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        pixel_values: (batch, channels, height, width) images, as the fusion processor makes them.
        input_ids / attention_mask / token_type_ids: (batch, seq) the texts, one per image.
        labels: by `config.problem_type` (see `check_classification_labels`): (batch,) class ids in
            0 .. num_labels - 1, (batch, num_labels) 0/1 targets for multi-label classification, (batch,) or
            (batch, num_labels) numbers for regression.
        """
        if pixel_values is None or input_ids is None:
            given = [name for name, value in (("pixel_values", pixel_values), ("input_ids", input_ids))
                     if value is not None]
            raise ValueError(
                f"The fusion model needs both images (pixel_values) and texts (input_ids), one text per image; got "
                f"{' and '.join(given) or 'neither'} only"
            )
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"pixel_values holds {pixel_values.shape[0]} images but input_ids {input_ids.shape[0]} texts; "
                "give one text per image"
            )
        text_inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            text_inputs["token_type_ids"] = token_type_ids
        image_features = pooled_features(self.vision_model(pixel_values=pixel_values, return_dict=True))
        text_features = pooled_features(self.text_model(**text_inputs, return_dict=True), attention_mask)
        fused = torch.cat(
            [self.vision_projection(image_features), self.text_projection(text_features)], dim=-1
        )  # (batch, 2 * projection_dim)
        logits = self.classifier(fused)  # (batch, num_labels)

        loss = None
        if labels is not None:
            check_classification_labels(labels, self.config)
            loss = self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["FusionForClassification", "FusionPreTrainedModel"]
