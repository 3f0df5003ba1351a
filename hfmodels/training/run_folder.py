"""A run folder as `train` writes it: which files make the model, and the records of the run (read by the
trackers, the model card and the Hub push)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedConfig
from transformers.dynamic_module_utils import get_relative_import_files

from ..families import Family, family_of_config, load_config

# Files a processor or tokenizer writes beside the weights (transformers' own names).
PROCESSOR_FILES = (
    "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json",
    "feature_extractor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja",
    "chat_template.json", "generation_config.json",
)
RECORD_FILES = ("eval_results.json", "training_args.json", "run_info.json", "training_log.json", "samples.json")


class NotAModelError(ValueError):
    """The folder lacks what `from_pretrained` needs."""


@dataclass
class RunFolder:
    path: Path
    config: PreTrainedConfig
    family: Family
    eval_results: dict[str, Any]
    training_args: dict[str, Any]
    run_info: dict[str, Any]
    training_log: list[dict[str, Any]]
    samples: list[dict[str, str]]  # a generative model's outputs for fixed prompts, when it wrote them

    @property
    def name(self) -> str:
        """The run's name: that of the folder training wrote it to (it may be read from its staging folder)."""
        return Path(self.training_args.get("output_dir") or ".").name or self.path.resolve().name

    def weight_files(self) -> list[str]:
        """The model's weights; of a LoRA run, its adapter (and the config that names its base)."""
        from ..pretrained.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, is_adapter_run

        if is_adapter_run(self.path):
            return [ADAPTER_CONFIG, ADAPTER_WEIGHTS]
        index = self.path / "model.safetensors.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [index.name, *shards]
        return ["model.safetensors"]

    def code_files(self) -> list[str]:
        """The modules named in the `auto_map` of config.json and of the processor files, and their relative imports."""
        modules = set()
        for name in ("config.json", *PROCESSOR_FILES):
            file = self.path / name
            if file.suffix == ".json" and file.is_file():
                auto_map = json.loads(file.read_text()).get("auto_map", {})
                for reference in auto_map.values():
                    for item in reference if isinstance(reference, list) else [reference]:
                        if item:  # tokenizer auto_maps hold [slow, fast], either may be None
                            modules.add(item.split("--")[-1].split(".")[0] + ".py")
        files = set()
        for module in sorted(modules):
            if not (self.path / module).is_file():
                raise NotAModelError(f"{self.path / module} is missing: it is named in an auto_map")
            files.add(module)
            files.update(Path(f).name for f in get_relative_import_files(str(self.path / module)))
        return sorted(files)

    def model_files(self) -> list[str]:
        """What `from_pretrained` needs: config, weights, code and processor files, relative to the run folder."""
        processor = [name for name in PROCESSOR_FILES if (self.path / name).is_file()]
        return ["config.json", *self.weight_files(), *self.code_files(), *processor]

    def record_files(self) -> list[str]:
        """The run's records, its card and its pictures, as far as they exist."""
        present = [name for name in (*RECORD_FILES, "README.md") if (self.path / name).is_file()]
        return [*present, *sorted(p.name for p in self.path.glob("*.png"))]

    def publishable_files(self) -> list[str]:
        """Everything that goes to the Hub, relative to the run folder; the card and plots must exist by now."""
        return [*self.model_files(), *self.record_files()]


def read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def read_run(run_dir: str | Path) -> RunFolder:
    """Reads a run folder written by `hfmodels train` (or any `save_pretrained` folder of an hfmodels family)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise NotAModelError(f"{path} is not a folder")
    if not (path / "config.json").is_file():
        raise NotAModelError(f"{path} is not a model folder: it has no config.json")
    config = load_config(path)
    run = RunFolder(
        path=path, config=config, family=family_of_config(config),
        eval_results=read_json(path / "eval_results.json", {}),
        training_args=read_json(path / "training_args.json", {}),
        run_info=read_json(path / "run_info.json", {}),
        training_log=read_json(path / "training_log.json", []),
        samples=read_json(path / "samples.json", []),
    )
    missing = [name for name in run.weight_files() if not (path / name).is_file()]
    if missing:
        raise NotAModelError(f"{path} is not a complete model folder: missing {', '.join(missing)}")
    return run
