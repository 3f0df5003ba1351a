"""`--init-from FOLDER|REPO[@REVISION]`: a run that starts from a saved model instead of random weights.

What a saved model can start:
- a model of its own family: every weight; for another label set a new head (said in the log and the card);
- a model of another family with the same config type, whose body fits (a text classifier from a `gpt` run, a `gpt`
  from a text classifier): the body's weights, a new head where the target has one;
- a `gpt` or text classifier from a transformers GPT-2 (converted by `GPTForCausalLM.from_gpt2`).

The model and its processor come from the saved folder (its tokenizer, its image size and normalisation: what the
weights were trained on); the labels come from the new data. The lineage (where it started, which layers are new)
goes into run_info.json, and from there into the card's `base_model` metadata and its training section.

A saved model can also become one part of a new one: fusion's encoders (`load_encoder`, `--backbone` and
`--text-backbone`); the vision backbones of the image families are in `vision.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedConfig, PreTrainedModel

from ..errors import first_line
from ..families import Family, family_of_config
from ..models.loading import outside_body

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelReference:
    """A saved model named on the command line: a local folder, or a Hub repo id with an optional @revision."""

    flag: str  # the command-line flag that named it, for messages
    name: str
    revision: str | None = None

    @classmethod
    def parse(cls, flag: str, value: str) -> ModelReference:
        if Path(value).exists():  # a folder may have an @ in its name
            return cls(flag, value)
        name, at, revision = value.partition("@")
        if at and not (name and revision):
            raise ValueError(f"{flag} {value}: expected a folder, or a Hub repo id as REPO or REPO@REVISION")
        return cls(flag, name, revision or None)

    @property
    def is_local(self) -> bool:
        return Path(self.name).is_dir()

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision else self.name

    def error(self, what: str, error: Exception | None = None) -> ValueError:
        cause = f" ({first_line(error)})" if error else ""
        return ValueError(f"{self.flag} {self}: {what}{cause}")

    def load_config(self) -> PreTrainedConfig:
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(self.name, revision=self.revision)
        except (OSError, ValueError) as error:
            raise self.error("not a model folder, nor a Hub model repo that could be loaded", error) from error

    def lineage(self, config: PreTrainedConfig, source_class: str, new_layers: list[str] | None) -> dict[str, Any]:
        """What run_info.json records of a model the run started from (`started_from`, a list), for the card.
        `new_layers`: the layers initialised anew; None where the saved model is one part of the new one (an encoder
        or backbone), so that everything around it is new."""
        return {
            "flag": self.flag,
            "base_model": Path(self.name).resolve().name if self.is_local else self.name,  # a folder: by its name
            "on_hub": not self.is_local,
            "revision": self.revision,
            "commit": None if self.is_local else getattr(config, "_commit_hash", None),
            "relation": "finetune",
            "source_class": source_class,
            "new_layers": new_layers,
            "license": base_model_license(self),
        }


def start_from(
    family: Family, reference: ModelReference, train_split: Dataset, overrides: dict[str, Any]
) -> tuple[PreTrainedModel, Any, dict[str, Any]]:
    """The model and processor of `family` for `train_split`, started from the saved model `reference`, and the
    lineage to record. `overrides` (`--model-config`) change the saved config; one that changes the body's shapes is
    an error naming the weights."""
    saved = reference.load_config()
    if saved.model_type == "gpt2" and family.config_class.model_type == "hfmodels-gpt":
        model, processor, source_class, new_weights = from_transformers_gpt2(family, reference, train_split, overrides)
    else:
        source = family_of_saved(reference, saved)
        if source.config_class is not family.config_class:
            raise reference.error(
                f"a {source.name} model cannot start a {family.name} model: their parts do not fit (a "
                f"{saved.model_type} config, where {family.name} needs {family.config_class.model_type}). It starts "
                f"a {', '.join(sorted(startable_families(source)))} run"
            )
        source_class = (saved.architectures or [source.model_class.__name__])[0]
        labels = new_labels(family, saved, train_split)
        model, new_weights = load_weights(family, reference, {**labels, **overrides}, new_head=bool(labels))
        processor = load_processor(family, reference)
    new_layers = sorted({key.rsplit(".", 1)[0] for key in new_weights})
    family.finish_build(model, processor)
    lineage = reference.lineage(saved, source_class, new_layers)
    logger.info("%s %s: started from its %s weights; new (initialised anew): %s", reference.flag, reference,
                source_class, ", ".join(new_layers) or "none")
    return model, processor, lineage


def load_encoder(family: Family, reference: ModelReference, text: bool) -> tuple[PreTrainedModel, Any]:
    """The body (`AutoModel`: a classifier's backbone, a language model's transformer) of a saved run of `family`
    and its processor: one encoder of a model of another family (fusion). It may also be a transformers model: a
    `text` encoder (BERT-like) with its own tokenizer, or a vision model (ResNet-like), whose processor is then None
    (the caller makes one: transformers' image processors do not read grayscale images)."""
    source = hfmodels_family(reference.load_config())
    if source is None:
        return load_body(reference), load_text_tokenizer(reference) if text else None
    if source.config_class is not family.config_class:
        raise reference.error(f"a {source.name} model is no encoder here: give a "
                              f"{', '.join(sorted(startable_families(family)))} run or a transformers "
                              + ("text encoder (BERT-like)" if text else "vision model (ResNet-like)"))
    return load_body(reference), load_processor(family, reference)


def load_text_encoder(reference: ModelReference) -> tuple[PreTrainedModel, Any]:
    """A transformers text encoder (`AutoModel`, BERT-like) and its tokenizer: the text classifier's `--backbone`."""
    saved = reference.load_config()
    source = hfmodels_family(saved)
    if source is not None:
        raise reference.error(f"a saved {source.name} model, not a transformers text encoder: --init-from starts a "
                              "text classifier from a gpt or text-classifier run")
    if not isinstance(getattr(saved, "vocab_size", None), int):
        raise reference.error(f"not a text encoder: a {saved.model_type} model has no vocabulary (a vision backbone "
                              "is for the image families' --backbone)")
    return load_body(reference), load_text_tokenizer(reference)


def hfmodels_family(config: PreTrainedConfig) -> Family | None:
    """The family of a saved config, None for a transformers model."""
    try:
        return family_of_config(config)
    except ValueError:
        return None


def load_body(reference: ModelReference) -> PreTrainedModel:
    from transformers import AutoModel

    try:
        encoder = AutoModel.from_pretrained(reference.name, revision=reference.revision)
    except (OSError, ValueError) as error:
        raise reference.error("its body could not be loaded", error) from error
    logger.info("%s %s: the encoder starts from its %s", reference.flag, reference, type(encoder).__name__)
    return encoder


def load_text_tokenizer(reference: ModelReference):
    from ..families.text import load_tokenizer

    return load_tokenizer(reference.name, revision=reference.revision, flag=reference.flag)


def part_lineage(flag: str, value: str) -> dict[str, Any]:
    """The lineage of a saved model that became one part (an encoder, a backbone) of the new one."""
    reference = ModelReference.parse(flag, value)
    config = reference.load_config()
    return reference.lineage(config, (config.architectures or [type(config).__name__])[0], None)


def family_of_saved(reference: ModelReference, config: PreTrainedConfig) -> Family:
    try:
        return family_of_config(config)
    except ValueError as error:
        raise reference.error("not a model of an hfmodels family (a transformers GPT-2 starts a gpt or "
                              "text-classifier run)", error) from error


def startable_families(source: Family) -> list[str]:
    from ..families import FAMILIES

    return [family.name for family in FAMILIES.values() if family.config_class is source.config_class]


def new_labels(family: Family, saved: PreTrainedConfig, train_split: Dataset) -> dict[str, Any]:
    """The label fields of the new data's config where they differ from the saved model's (none: the same labels)."""
    return {field: value for field, value in family.label_fields(train_split).items()
            if value != getattr(saved, field, None)}


def load_weights(
    family: Family, reference: ModelReference, config_changes: dict[str, Any], new_head: bool
) -> tuple[PreTrainedModel, list[str]]:
    """`family.model_class` from the saved weights, and the names of its new weights: those the saved model lacks
    outside the body (a head for another task), and with `new_head` (other labels) every weight outside the body,
    even where the old head's shapes would fit. The body must load whole and in its shapes."""
    try:
        model, info = family.model_class.from_pretrained(
            reference.name, revision=reference.revision, output_loading_info=True, ignore_mismatched_sizes=True,
            **config_changes,
        )
    except (OSError, ValueError) as error:
        raise reference.error(f"its weights do not load into {family.model_class.__name__}", error) from error
    new_weights = sorted({*info["missing_keys"], *(key for key, _, _ in info["mismatched_keys"])})
    in_body = [key for key in new_weights if not outside_body(model, key)]
    if in_body:
        raise reference.error(f"these weights of the model's body do not fit its saved ones: {in_body}; a "
                              "--model-config that changes the architecture cannot start from it")
    if new_head:  # the saved model's head scores other classes: it starts anew, the body is kept
        fresh = family.model_class(model.config)
        body = {key: value for key, value in model.state_dict().items() if not outside_body(model, key)}
        fresh.load_state_dict(body, strict=False)
        model, new_weights = fresh, sorted(key for key in fresh.state_dict() if outside_body(fresh, key))
    return model, new_weights


def load_processor(family: Family, reference: ModelReference):
    try:
        return family.processor_class.from_pretrained(reference.name, revision=reference.revision)
    except (OSError, ValueError, TypeError) as error:
        raise reference.error("it has no processor (tokenizer or image processor) that could be loaded",
                              error) from error


def from_transformers_gpt2(
    family: Family, reference: ModelReference, train_split: Dataset, overrides: dict[str, Any]
) -> tuple[PreTrainedModel, Any, str, list[str]]:
    """A `gpt` or text classifier from a transformers GPT-2 checkpoint and its tokenizer; the names of the new
    weights (a classifier's head)."""
    from transformers import GPT2LMHeadModel

    from ..models.gpt import GPTForCausalLM

    try:
        gpt2 = GPT2LMHeadModel.from_pretrained(reference.name, revision=reference.revision)
    except (OSError, ValueError) as error:
        raise reference.error("its GPT-2 weights could not be loaded", error) from error
    converted = GPTForCausalLM.from_gpt2(gpt2)
    tokenizer = load_text_tokenizer(reference)
    config = converted.config
    config.update({**new_labels(family, config, train_split), **overrides, "pad_token_id": tokenizer.pad_token_id})
    model = family.model_class(config)
    # a classifier takes the body; a language model the head too (tied to the token embeddings)
    missing, _ = model.load_state_dict(converted.state_dict(), strict=False)
    if any(not outside_body(model, key) for key in missing):
        raise reference.error(f"the converted GPT-2 does not fit {family.model_class.__name__}: missing {missing}")
    return model, tokenizer, type(gpt2).__name__, sorted(missing)


def base_model_license(reference: ModelReference) -> str | None:
    """The license the base model's card declares (Hub repos; a local run folder's card too), None without one."""
    from huggingface_hub import ModelCard, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        readme = (Path(reference.name, "README.md") if reference.is_local
                  else Path(hf_hub_download(reference.name, "README.md", revision=reference.revision)))
        return ModelCard.load(readme).data.license if readme.is_file() else None
    except (OSError, ValueError, HfHubHTTPError):
        return None  # no card, or none that can be read: the license is unknown
