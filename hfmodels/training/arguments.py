"""The arguments of a training run: one dataclass for the CLI, `scripts/train.py` and Python callers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class TrainingArguments:
    model: str = field(default="image-classifier", metadata={"help": "The model family to train."})
    dataset: str | None = field(default=None, metadata={"help": "Data source (default: the family's embedded one)."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Run folder; the model files are written at its top. Default runs/<model>-<dataset>."}
    )
    epochs: int | None = field(default=None, metadata={"help": "Passes over the training data (default: the family's)."})
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps to train for; overrides --epochs."})
    batch_size: int = field(default=64, metadata={"help": "Samples per process and step."})
    eval_batch_size: int | None = field(default=None, metadata={"help": "Default: --batch-size."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate (default: the family's)."})
    weight_decay: float = 0.01
    lr_scheduler: str = field(default="cosine", metadata={"help": "A transformers scheduler name (linear, cosine, ...)."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of the steps spent warming up."})
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "Gradient clipping norm; none to disable."})
    gradient_accumulation_steps: int = 1
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    seed: int = 0
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    logging_steps: int = field(default=10, metadata={"help": "Log the training loss every N steps."})
    push_to_hub: str | None = field(default=None, metadata={"help": "After training, publish the run to this Hub repo id."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    model_config: list[str] = field(
        default_factory=list, metadata={"help": "Model config overrides as key=value (values parsed as JSON)."}
    )

    def __post_init__(self):
        positive = {"batch_size": self.batch_size, "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "logging_steps": self.logging_steps}
        for name in ("epochs", "max_steps", "eval_batch_size"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        self.model_config_overrides()  # fail early on a malformed override

    def model_config_overrides(self) -> dict[str, Any]:
        overrides = {}
        for item in self.model_config:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--model-config expects key=value, got {item!r}")
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value  # a bare string such as norm=batch
        return overrides

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
