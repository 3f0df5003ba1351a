"""Scoring a saved model folder on a data source, with the same metrics as training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from ..data import DataOptions, load_source, require_columns, with_validation_split
from ..data.decoded import decoded_images
from ..families import Family, family_of_config, load_config
from ..families.base import held_out_split
from .loop import evaluate_model, make_accelerator, make_loader


def load_trained(path: str | Path) -> tuple[Any, Any, Family]:
    """The model, its processor and its family from a folder written by `train` (or `save_pretrained`); of a LoRA
    run, its base model with the adapter merged in."""
    from ..pretrained.adapters import is_adapter_run, load_adapter_run

    family = family_of_config(load_config(path))
    model = (load_adapter_run(family.model_class, path) if is_adapter_run(path)
             else family.model_class.from_pretrained(path))
    return model, family.processor_class.from_pretrained(path), family


def training_arguments_of(path: str | Path) -> dict[str, Any]:
    """The arguments a model folder or Hub repo was trained with ({} when it does not record them)."""
    if Path(path).exists():
        file = Path(path) / "training_args.json"
        return json.loads(file.read_text()) if file.is_file() else {}
    try:
        return json.loads(Path(hf_hub_download(str(path), "training_args.json")).read_text())
    except EntryNotFoundError:
        return {}


def evaluate_saved(
    path: str | Path, dataset: str | None = None, split: str | None = None, batch_size: int = 256
) -> dict[str, Any]:
    """Scores the model in `path` on a split of `dataset` (default: the dataset it was trained on) and `split`
    (default: the one training reports on, test when the source has one, else validation)."""
    model, processor, family = load_trained(path)
    trained_with = training_arguments_of(path)
    dataset = dataset or trained_with.get("dataset") or family.default_dataset
    data = load_source(dataset, check_images=not family.decodes_images)
    data = with_validation_split(data, seed=trained_with.get("seed", 0),
                                 fraction=trained_with.get("validation_from_train"))
    require_columns(data, family.columns, dataset, DataOptions())
    split = split or held_out_split(data)
    if family.decodes_images:  # decoded once, at the model's input size, as training did (data/decoded.py)
        data = decoded_images(data, model.config.image_size, model.config.num_channels)
    if split not in data:
        raise ValueError(f"Dataset {dataset!r} has no split {split!r}; it has: {', '.join(data)}")
    accelerator = make_accelerator()
    model, loader = accelerator.prepare(model, make_loader(data[split], family, processor, False, batch_size))
    metrics = evaluate_model(model, loader, family, accelerator)
    return {
        "model": str(path), "dataset": dataset, "split": split, "metrics": metrics,
        "baselines": family.baselines(data, split, config=model.config, processor=processor),
    }
