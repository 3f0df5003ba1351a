"""Bad input, fuzzed: any combination of config values is either a working model or a ValueError naming a field
it was given, never an error from deeper down (a shape mismatch in forward, a TypeError in a layer, ...)."""

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hfmodels import (
    AutoencoderConfig,
    AutoencoderModel,
    FusionConfig,
    FusionForClassification,
    GPTConfig,
    GPTForCausalLM,
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    UNetConfig,
    UNetForSemanticSegmentation,
    VAEConfig,
    VAEModel,
)

# Values of every kind a config file or `--model-config key=value` can hold, small enough to build quickly.
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.floats(-1.5, 3.0), st.just(float("nan")), st.sampled_from(
        ["", "batch", "layer", "group", "none", "rotary", "learned", "layernorm", "rmsnorm", "gelu", "relu", "x"]
    ), st.lists(st.integers(-2, 24), max_size=4), st.lists(st.floats(-1.0, 3.0), max_size=4),
)


def image_inputs(config) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.rand(2, config.num_channels, config.image_size, config.image_size)}


FAMILIES = {
    "image-classifier": (ImageClassifierConfig, ImageClassifierForImageClassification,
                         {"hidden_sizes": [4, 8], "depths": [1, 1]}, image_inputs),
    "autoencoder": (AutoencoderConfig, AutoencoderModel, {"hidden_sizes": [4, 8], "latent_dim": 3}, image_inputs),
    "vae": (VAEConfig, VAEModel, {"hidden_sizes": [4, 8], "latent_dim": 3}, image_inputs),
    "segmentation": (UNetConfig, UNetForSemanticSegmentation,
                     {"num_channels": 1, "image_size": 16, "depth": 2, "base_channels": 4}, image_inputs),
    "gpt": (GPTConfig, GPTForCausalLM,
            {"vocab_size": 64, "max_position_embeddings": 16, "hidden_size": 16, "num_hidden_layers": 1,
             "num_attention_heads": 2},
            lambda config: {"input_ids": torch.randint(0, config.vocab_size, (2, min(5, config.max_position_embeddings)))}),
    "fusion": (FusionConfig, FusionForClassification,
               {"vision_config": ImageClassifierConfig(image_size=8, hidden_sizes=[4, 8], depths=[1, 1]),
                "text_config": GPTConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         max_position_embeddings=16),
                "num_labels": 3, "projection_dim": 8, "head_hidden_size": 16},
               lambda config: {**image_inputs(config.vision_config),
                               "input_ids": torch.randint(0, config.text_config.vocab_size, (2, 5))}),
}


def declared_fields(config_class) -> list[str]:
    return sorted(name for name in config_class.__annotations__ if not name.startswith("_"))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_any_config_values_give_a_working_model_or_a_value_error_naming_the_field(family):
    config_class, model_class, small, make_inputs = FAMILIES[family]
    fields = declared_fields(config_class)

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(overrides=st.dictionaries(st.sampled_from(fields), ANY_VALUE, min_size=1, max_size=3))
    def check(overrides):
        try:
            config = config_class(**{**small, **overrides})
        except ValueError as error:
            assert any(field in str(error) for field in overrides), f"{overrides}: {error}"
            return
        with torch.device("meta"):  # valid but huge configs (a multiplier of 40 on 3 levels) are not built here
            assume(model_class(config).num_parameters() <= 2_000_000)
        model = model_class(config).eval()
        with torch.no_grad():
            model(**make_inputs(config))

    check()
