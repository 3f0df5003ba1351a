"""Tiny models of every model class, saved by one version of the model code and reloaded by another.

`python tests/saved_before.py PACKAGE_PARENT PACKAGE OUT_DIR` imports the model package PACKAGE (a copy of
`hfmodels/models` from some commit) from PACKAGE_PARENT, builds each model of `SPECS` with a fixed seed, saves it to
OUT_DIR/<name> and writes its inputs and eval-mode outputs to OUT_DIR/<name>/io.safetensors. tests/test_saved_before.py
runs it on the code of `BEFORE_COMMIT` and checks that today's code loads every folder and gives the same outputs, bit
for bit. The script imports nothing of hfmodels itself, so it runs against the old code alone.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import GenerationMixin

# The last commit before the model folders were reworked (issue 19): the models it saved must keep working.
BEFORE_COMMIT = "53dd404b60e6eaaf5c9a38c4b823638c47b3e12d"

IMAGE = {"num_channels": 1, "image_size": 8}
GPT = {"vocab_size": 16, "max_position_embeddings": 16, "hidden_size": 8, "num_hidden_layers": 2,
       "num_attention_heads": 2, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.3}

# name: (model class, config class, config fields (sub-configs as (config class, fields)), inputs)
SPECS = {
    "image_classifier_model": ("ImageClassifierModel", "ImageClassifierConfig",
                               {**IMAGE, "hidden_sizes": [4, 8], "depths": [1, 2]}, "images"),
    "image_classifier": ("ImageClassifierForImageClassification", "ImageClassifierConfig",
                         {**IMAGE, "hidden_sizes": [4, 8], "depths": [2, 1], "num_labels": 3,
                          "class_weights": [1.0, 2.0, 0.5]}, "images+classes"),
    "unet_model": ("UNetModel", "UNetConfig", {**IMAGE, "depth": 2, "base_channels": 4, "norm": "group"}, "images"),
    "unet": ("UNetForSemanticSegmentation", "UNetConfig",
             {**IMAGE, "depth": 2, "base_channels": 4, "num_labels": 3}, "images+masks"),
    "unet_no_norm": ("UNetForSemanticSegmentation", "UNetConfig",
                     {**IMAGE, "depth": 1, "base_channels": 2, "norm": "none", "num_labels": 3,
                      "class_weights": [1.0, 3.0, 0.5]}, "images+masks"),
    "autoencoder": ("AutoencoderModel", "AutoencoderConfig", {**IMAGE, "hidden_sizes": [4, 8], "latent_dim": 3},
                    "images+targets"),
    "vae": ("VAEModel", "VAEConfig", {**IMAGE, "hidden_sizes": [4, 8], "latent_dim": 3, "beta": 0.5},
            "images+targets"),
    "diffusion": ("DiffusionForImageGeneration", "DiffusionConfig",
                  {**IMAGE, "block_channels": [4, 8], "norm_num_groups": 4, "num_attention_heads": 2,
                   "num_classes": 3, "num_train_timesteps": 50}, "images+targets"),
    "gpt_model": ("GPTModel", "GPTConfig", {**GPT, "position_embedding_type": "learned"}, "tokens"),
    "gpt_model_unpadded": ("GPTModel", "GPTConfig", GPT, "unpadded tokens"),
    "gpt_causal_lm": ("GPTForCausalLM", "GPTConfig", {**GPT, "norm_type": "rmsnorm"}, "tokens+next"),
    "gpt_causal_lm_learned": ("GPTForCausalLM", "GPTConfig",
                              {**GPT, "position_embedding_type": "learned", "tie_word_embeddings": False},
                              "tokens+next"),
    "gpt_classifier": ("GPTForSequenceClassification", "GPTConfig", {**GPT, "num_labels": 3}, "tokens+classes"),
    "fusion": ("FusionForClassification", "FusionConfig",
               {"vision_config": ("ImageClassifierConfig", {**IMAGE, "hidden_sizes": [4, 8], "depths": [1, 1]}),
                "text_config": ("GPTConfig", GPT), "num_labels": 3, "projection_dim": 4, "head_hidden_size": 8},
               "images+tokens+classes"),
}

# the models of SPECS the code of BEFORE_COMMIT does not have (tests/test_saved_before.py leaves them out)
NEWER_THAN_BEFORE = ("diffusion",)


def make_inputs(kind: str) -> dict[str, torch.Tensor]:
    """Fixed inputs of a kind ("images+classes", ...): a batch of 3, the token rows left-padded to 6."""
    generator = torch.Generator().manual_seed(0)
    inputs = {}
    if "images" in kind:
        inputs["pixel_values"] = torch.rand(3, 1, 8, 8, generator=generator)
    if "tokens" in kind:
        attention_mask = torch.ones(3, 6, dtype=torch.long)
        if "unpadded" not in kind:
            attention_mask[1, :2] = 0
            attention_mask[2, :4] = 0
        inputs["input_ids"] = torch.randint(3, 16, (3, 6), generator=generator).masked_fill(attention_mask == 0, 0)
        inputs["attention_mask"] = attention_mask
    if "classes" in kind:
        inputs["labels"] = torch.tensor([0, 2, 1])
    elif "masks" in kind:
        labels = torch.randint(0, 3, (3, 8, 8), generator=generator)
        labels[0, :2] = 255  # ignored pixels
        inputs["labels"] = labels
    elif "targets" in kind:
        inputs["labels"] = inputs["pixel_values"].clone()
    elif "next" in kind:
        inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    return inputs


def tensors_of(outputs, prefix: str = "output") -> dict[str, torch.Tensor]:
    """Every tensor of a model output (nested tuples flattened), keyed `<prefix>.<field>[.<index>]`."""
    found = {}
    items = outputs.items() if hasattr(outputs, "items") else enumerate(outputs)
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, torch.Tensor):
            found[name] = value
        elif isinstance(value, (tuple, list)):
            found.update(tensors_of(value, name))
    return found


def run(model, kind: str) -> dict[str, torch.Tensor]:
    """The inputs and the eval-mode outputs of `model` on them (for a language model also a greedy continuation,
    for the VAE and the diffusion model samples)."""
    inputs = make_inputs(kind)
    model.eval()
    with torch.no_grad():
        takes_hidden_states = "output_hidden_states" in inspect.signature(model.forward).parameters
        extra = {"output_hidden_states": True} if takes_hidden_states else {}
        results = {**{f"input.{k}": v for k, v in inputs.items()}, **tensors_of(model(**inputs, **extra))}
        if isinstance(model, GenerationMixin):
            results["generated"] = model.generate(
                inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=5, min_new_tokens=5,
                do_sample=False, pad_token_id=0,
            )
        if hasattr(model, "sample"):
            results["samples"] = model.sample(4, generator=torch.Generator().manual_seed(0))
    return results


def build(package, name: str):
    model_class, config_class, fields, _ = SPECS[name]
    fields = {key: getattr(package, value[0])(**value[1]) if isinstance(value, tuple) else value
              for key, value in fields.items()}
    torch.manual_seed(0)
    return getattr(package, model_class)(getattr(package, config_class)(**fields))


def save_all(package, out_dir: Path) -> None:
    for name, (model_class, _, _, kind) in SPECS.items():
        if not hasattr(package, model_class):  # a model class newer than `package`'s code
            continue
        model = build(package, name)
        model.save_pretrained(out_dir / name)
        for code in (out_dir / name).glob("*.py"):  # only the weights and config are the saved model here
            code.unlink()
        save_file({k: v.clone() for k, v in run(model, kind).items()}, out_dir / name / "io.safetensors")


def load_io(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "io.safetensors")


if __name__ == "__main__":
    parent, package_name, out = sys.argv[1:]
    sys.path.insert(0, parent)
    save_all(importlib.import_module(package_name), Path(out))
