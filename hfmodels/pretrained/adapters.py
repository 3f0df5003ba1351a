"""`--lora r=8,alpha=16[,dropout=0.05][,target=REGEX]`: a LoRA adapter (peft) on a saved model instead of training
every weight.

What is adapted: the body's linear and 2-D convolution layers (the body is what `Family.backbone_parts` names:
under `base_model_prefix`, fusion's two encoders, segmentation's backbone), narrowed by the model class's own
`lora_target_modules` (the GPT: its attention and MLP projections) where the body is the class's own code, or to the
modules whose full name matches `target`. What is new around the body (a head for the new labels, a new decoder)
trains in full: peft's `modules_to_save`, which peft matches by name suffix, so each name must be a suffix of no
other module's. The body's batch-norm statistics stay fixed (eval mode) while the adapter trains: the base model's
statistics are then the adapted model's too, and a reload through peft is exact.

The run folder holds the adapter (`adapter_config.json`, `adapter_model.safetensors`, `base_model_name_or_path` the
`--init-from` model: a Hub id or the run folder), beside the adapted model's config, code and processor; with
`--merge-lora` also the merged model, a plain model folder of its own (`merged/`).
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn
from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MERGED_DIR = "merged"  # `--merge-lora`: the merged model, a plain model folder inside the run folder
ADAPTED_TYPES = (nn.Linear, nn.Conv2d)  # what the default targets are; peft adapts these (and more, by name)
PEFT_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Embedding", "MultiheadAttention", "Conv1D")


@dataclass(frozen=True)
class LoraSettings:
    """The `--lora` value: rank, alpha (the update is scaled by alpha / rank), dropout, and a regex over module names
    (the full names, as `model.named_modules()` gives them) instead of the model's default targets."""

    rank: int
    alpha: float
    dropout: float = 0.0
    target: str | None = None

    @classmethod
    def parse(cls, value: str) -> LoraSettings:
        """`r=8,alpha=16[,dropout=0.05][,target=REGEX]`; `target` comes last and takes the rest (a regex may hold
        commas)."""
        fields, _, target = value.partition("target=")
        if target and fields and not fields.endswith(","):
            raise ValueError(f"--lora {value}: target= must be its own field, after a comma")
        given: dict[str, str] = {}
        for item in filter(None, fields.rstrip(",").split(",")):
            key, equals, number = item.partition("=")
            if not equals or key.strip() not in ("r", "alpha", "dropout"):
                raise ValueError(f"--lora {value}: {item!r} is not r=N, alpha=X, dropout=P or target=REGEX")
            given[key.strip()] = number.strip()
        missing = [key for key in ("r", "alpha") if key not in given]
        if missing:
            raise ValueError(f"--lora {value}: give {' and '.join(missing)} (e.g. --lora r=8,alpha=16)")
        try:
            settings = cls(int(given["r"]), float(given["alpha"]), float(given.get("dropout", 0.0)), target or None)
        except ValueError as error:
            raise ValueError(f"--lora {value}: r must be an integer, alpha and dropout numbers ({error})") from None
        settings.check(value)
        return settings

    def check(self, value: str) -> None:
        if self.rank < 1:
            raise ValueError(f"--lora {value}: the rank r={self.rank} must be at least 1")
        if not self.alpha > 0:
            raise ValueError(f"--lora {value}: alpha={self.alpha} must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--lora {value}: dropout={self.dropout} must be in [0, 1)")
        if self.target is not None:
            try:
                re.compile(self.target)
            except re.error as error:
                raise ValueError(f"--lora {value}: target={self.target!r} is not a regular expression ({error})") \
                    from None


def body_parts(family, model: PreTrainedModel) -> dict[str, nn.Module]:
    """What the adapter adapts, by full name: the family's backbone parts, or the whole model for a family whose
    model has no head around its body (the autoencoders, diffusion)."""
    if model.base_model is model:
        return {"": model}
    return family.backbone_parts(model)


def module_names(model: nn.Module) -> dict[int, str]:
    return {id(module): name for name, module in model.named_modules()}


def default_targets(model: PreTrainedModel, parts: dict[str, nn.Module]) -> list[str]:
    """The body's linear and convolution layers; in a body of the class's own code, only those named in its
    `lora_target_modules` when it declares them."""
    names, declared = module_names(model), getattr(type(model), "lora_target_modules", None)
    own_code = getattr(model.config, "backbone_config", None) is None
    targets = []
    for part in parts.values():
        for module in part.modules():
            name = names[id(module)]
            if isinstance(module, ADAPTED_TYPES) and getattr(module, "groups", 1) == 1 and (
                    not (declared and own_code) or name.rsplit(".", 1)[-1] in declared):
                targets.append(name)
    return targets


def matching_targets(model: PreTrainedModel, parts: dict[str, nn.Module], target: str) -> list[str]:
    """The layers of the body whose full name matches `target` (re.search) and that LoRA adapts. Matched layers of
    other kinds (a norm, a dropout) are named in the log, or, where nothing adaptable matched, in the error."""
    names = module_names(model)
    matched = [(names[id(m)], m) for part in parts.values() for m in part.modules()
               if names[id(m)] and re.search(target, names[id(m)])]
    if not matched:
        raise ValueError(f"--lora target={target!r} matches no module of the model's body (its layers are named "
                         f"like {', '.join(default_targets(model, parts)[:3]) or 'nothing adaptable'})")
    layers = [name for name, module in matched if type(module).__name__ in PEFT_TYPES]
    others = [f"{name} ({type(module).__name__})" for name, module in matched
              if type(module).__name__ not in PEFT_TYPES and next(module.children(), None) is None]
    if not layers:
        raise ValueError(f"--lora target={target!r} matches only modules LoRA cannot adapt: {others[:5]}; peft "
                         f"adapts {', '.join(PEFT_TYPES)} layers")
    if others:
        logger.warning("--lora target=%r also matches modules LoRA cannot adapt, left as they are: %s", target,
                       ", ".join(others[:10]))
    return layers


def trained_in_full(model: PreTrainedModel, parts: dict[str, nn.Module]) -> list[str]:
    """The modules around the body, by full name, at the highest level that holds no part of the body: the head,
    a new decoder. A module whose weights are all the body's (a language model's head tied to its embeddings) is
    left out."""
    in_body = {id(m) for part in parts.values() for m in part.modules()}
    body_parameters = {id(p) for part in parts.values() for p in part.parameters()}
    found = []

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            if id(child) in in_body:
                continue
            if any(id(m) in in_body for m in child.modules()):  # holds a part of the body: look inside
                visit(child, f"{prefix}{name}.")
            elif any(id(p) not in body_parameters for p in child.parameters()):
                found.append(f"{prefix}{name}")

    visit(model, "")
    return found


def check_unambiguous(model: PreTrainedModel, modules_to_save: list[str]) -> None:
    """peft takes every module whose full name ends with a `modules_to_save` entry: each must end no other's."""
    names = [name for name, _ in model.named_modules()]
    for saved in modules_to_save:
        others = [name for name in names if name.endswith(saved) and name != saved]
        if others:
            raise ValueError(f"--lora: the {type(model).__name__} module {saved!r}, trained in full beside the "
                             f"adapter, is also the end of the name of {others[:3]}, which peft would train in full "
                             "too; rename it in the model class")


def add_lora(family, model: PreTrainedModel, settings: LoraSettings, base: str, revision: str | None):
    """`model` (started from the saved model `base`) as a peft LoRA model: only the adapter and the new modules
    around the body train."""
    from peft import LoraConfig, get_peft_model

    parts = body_parts(family, model)
    targets = matching_targets(model, parts, settings.target) if settings.target else default_targets(model, parts)
    if not targets:
        raise ValueError(f"--lora: the {family.name} model's body has no layer LoRA adapts (linear or convolution); "
                         "name modules with target=REGEX")
    modules_to_save = trained_in_full(model, parts)
    check_unambiguous(model, modules_to_save)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=targets, modules_to_save=modules_to_save or None,
                        base_model_name_or_path=base, revision=revision)
    adapted = get_peft_model(model, config)
    trainable, total = adapted.get_nb_trainable_parameters()
    logger.info("--lora: rank %d, alpha %g, dropout %g on %d layers (%s); trained in full: %s; trainable parameters "
                "%s of %s (%.2f%%)", settings.rank, settings.alpha, settings.dropout, len(targets),
                ", ".join(targets[:4]) + (", ..." if len(targets) > 4 else ""), ", ".join(modules_to_save) or "none",
                f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    return adapted


def body_norms(family, model: PreTrainedModel) -> list[nn.Module]:
    """The body's batch norms, which the training loop keeps in eval mode after every `train()`: their running
    statistics do not move while the adapter trains."""
    return [module for part in body_parts(family, model).values() for module in part.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def lora_record(adapted, settings: LoraSettings) -> dict[str, Any]:
    """What run_info.json and the card say of the adapter."""
    config = adapted.peft_config["default"]
    trainable, total = adapted.get_nb_trainable_parameters()
    return {**asdict(settings), "targets": sorted(config.target_modules),
            "trained_in_full": sorted(config.modules_to_save or []), "base_model": config.base_model_name_or_path,
            "revision": config.revision, "trainable_parameters": trainable, "parameters": total,
            "trainable_fraction": trainable / total}


def is_adapted(model) -> bool:
    """Whether `model` is a peft model. No peft model exists before peft is imported, so a run without `--lora` does
    not pay for importing it (about 2 s)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def save_adapter_run(adapted, folder: Path, processor, merge: bool, save_function) -> None:
    """Into the run folder's new version: the adapter, and the adapted model's config and code (a base loaded with
    them takes the run's labels); with `merge` the merged, plain model in its own folder (MERGED_DIR) with the
    processor: beside an adapter, `from_pretrained` would put the adapter on the merged weights once more."""
    import copy

    from transformers.dynamic_module_utils import custom_object_save

    model = adapted.get_base_model()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:  # peft also writes a README, which the run has
        adapted.save_pretrained(scratch, save_function=save_function)
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            shutil.move(Path(scratch, name), folder / name)
    model.config.save_pretrained(folder)
    if model._auto_class is not None:
        custom_object_save(model, folder, config=model.config)
    if model.can_generate():
        model.generation_config.save_pretrained(folder)
    if merge:
        copy.deepcopy(adapted).merge_and_unload().save_pretrained(folder / MERGED_DIR, save_function=save_function)
        processor.save_pretrained(folder / MERGED_DIR)


MODEL_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def is_adapter_run(path: str | Path) -> bool:
    """A run folder or Hub repo holding a LoRA adapter and no model weights of its own (False for a Hub repo whose
    files cannot be listed: then it is loaded as a model, whose error says what it holds)."""
    folder = Path(path)
    if folder.is_dir():
        files = {name for name in (ADAPTER_CONFIG, *MODEL_WEIGHTS) if (folder / name).is_file()}
    else:
        from huggingface_hub import list_repo_files
        from huggingface_hub.errors import HfHubHTTPError

        try:
            files = set(list_repo_files(str(path)))
        except (HfHubHTTPError, OSError, ValueError):
            return False
    return ADAPTER_CONFIG in files and not files & set(MODEL_WEIGHTS)


def load_adapter_run(model_class: type[PreTrainedModel], path: str | Path, config=None, **options):
    """The model of an adapter run, merged for inference: the base (`base_model_name_or_path`) loaded as
    `model_class` with the run's config (its labels: its head is the adapter's), then the adapter. `options` go to
    the base's `from_pretrained` (`trust_remote_code`)."""
    from peft import PeftConfig, PeftModel

    from ..families import load_config

    adapter = PeftConfig.from_pretrained(str(path))
    base = adapter.base_model_name_or_path
    try:
        model = model_class.from_pretrained(base, revision=adapter.revision, config=config or load_config(path),
                                            strict=False, ignore_mismatched_sizes=True, **options)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: its adapter's base model {base} could not be loaded ({error})") from error
    return PeftModel.from_pretrained(model, str(path)).merge_and_unload()
