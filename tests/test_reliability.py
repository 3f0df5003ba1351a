"""Bad input, fuzzed: any combination of config values is either a working model (the outputs its config describes,
finite, and a config that saves and reloads as it is) or a ValueError naming a field it was given, never an error
from deeper down (a shape mismatch in forward, a TypeError in a layer, ...)."""

from types import UnionType
from typing import Union, get_args, get_origin

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hfmodels import (
    AutoencoderConfig,
    AutoencoderModel,
    DiffusionConfig,
    DiffusionForImageGeneration,
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
WORDS = st.sampled_from(["", "batch", "group", "none", "rotary", "learned", "layernorm", "rmsnorm", "gelu", "x"])
WORKING_MODELS_AT_LEAST = 10  # of the 200 examples of a family


def values_of_type(annotation) -> st.SearchStrategy:
    """Values of a field's own type (so that the rules across fields, and the models they build, get fuzzed too)."""
    if annotation is type(None):
        return st.none()
    if get_origin(annotation) in (Union, UnionType):
        return st.one_of(*(values_of_type(option) for option in get_args(annotation)))
    if get_origin(annotation) in (list, tuple):
        return st.lists(values_of_type(get_args(annotation)[0]), min_size=1, max_size=4) | st.just([])
    strategies = {int: st.one_of(st.integers(1, 8), st.integers(-2, 40)), bool: st.booleans(), str: WORDS,
                  float: st.one_of(st.floats(0.0, 1.0), st.floats(-0.5, 3.0), st.just(float("nan")))}
    return strategies.get(annotation, ANY_VALUE)  # a sub-config: values of any kind


def overrides_of(config_class) -> st.SearchStrategy:
    """1 to 3 of the fields declared on the config class, each a value of any kind or one of its own type."""
    annotations = {name: value for name, value in config_class.__annotations__.items() if not name.startswith("_")}
    return st.lists(st.sampled_from(sorted(annotations)), min_size=1, max_size=3, unique=True).flatmap(
        lambda fields: st.fixed_dictionaries(
            {field: st.one_of(values_of_type(annotations[field]), ANY_VALUE) for field in fields}
        )
    )


def image_inputs(config) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.rand(2, config.num_channels, config.image_size, config.image_size)}


def gpt_inputs(config) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.randint(0, config.vocab_size, (2, min(5, config.max_position_embeddings)))}


def fusion_inputs(config) -> dict[str, torch.Tensor]:
    return {**image_inputs(config.vision_config), "input_ids": torch.randint(0, config.text_config.vocab_size, (2, 5))}


# family: (config class, model class, small values, inputs, (output field, its shape) for a config)
FAMILIES = {
    "image-classifier": (ImageClassifierConfig, ImageClassifierForImageClassification,
                         {"hidden_sizes": [4, 8], "depths": [1, 1]}, image_inputs,
                         lambda config: ("logits", (2, config.num_labels))),
    "autoencoder": (AutoencoderConfig, AutoencoderModel, {"hidden_sizes": [4, 8], "latent_dim": 3}, image_inputs,
                    lambda config: ("reconstruction", (2, config.num_channels, config.image_size, config.image_size))),
    "vae": (VAEConfig, VAEModel, {"hidden_sizes": [4, 8], "latent_dim": 3}, image_inputs,
            lambda config: ("reconstruction", (2, config.num_channels, config.image_size, config.image_size))),
    "diffusion": (DiffusionConfig, DiffusionForImageGeneration,
                  {"block_channels": [4, 8], "norm_num_groups": 4, "num_attention_heads": 2, "num_train_timesteps": 20},
                  image_inputs,
                  lambda config: ("prediction", (2, config.num_channels, config.image_size, config.image_size))),
    "segmentation": (UNetConfig, UNetForSemanticSegmentation,
                     {"num_channels": 1, "image_size": 16, "depth": 2, "base_channels": 4}, image_inputs,
                     lambda config: ("logits", (2, config.num_labels, config.image_size, config.image_size))),
    "gpt": (GPTConfig, GPTForCausalLM,
            {"vocab_size": 64, "max_position_embeddings": 16, "hidden_size": 16, "num_hidden_layers": 1,
             "num_attention_heads": 2}, gpt_inputs,
            lambda config: ("logits", (2, min(5, config.max_position_embeddings), config.vocab_size))),
    "fusion": (FusionConfig, FusionForClassification,
               {"vision_config": ImageClassifierConfig(image_size=8, hidden_sizes=[4, 8], depths=[1, 1]),
                "text_config": GPTConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         max_position_embeddings=16),
                "num_labels": 3, "projection_dim": 8, "head_hidden_size": 16},
               fusion_inputs, lambda config: ("logits", (2, config.num_labels))),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_any_config_values_give_a_working_model_or_a_value_error_naming_the_field(family):
    config_class, model_class, small, make_inputs, expected_output = FAMILIES[family]

    working = []

    @settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(overrides=overrides_of(config_class))
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
            outputs = model(**make_inputs(config))
        # a working model: the output the config describes, every number finite, and a config that saves and reloads
        field, shape = expected_output(config)
        assert tuple(outputs[field].shape) == shape, (overrides, field, tuple(outputs[field].shape), shape)
        assert all(torch.isfinite(value).all() for value in outputs.values() if torch.is_tensor(value)), overrides
        config.validate()
        assert config_class.from_dict(config.to_dict()).to_dict() == config.to_dict(), overrides
        working.append(overrides)

    check()
    assert len(working) >= WORKING_MODELS_AT_LEAST, f"only {len(working)} examples built a model: {working}"
