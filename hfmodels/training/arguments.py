"""The arguments of a training run: one dataclass for the CLI, `scripts/train.py` and Python callers.

Light to import (the standard library only): `hfmodels train --help` and a bad flag answer before torch,
transformers or datasets are imported."""

from __future__ import annotations

import argparse
import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..data import DataOptions


@dataclass
class TrainingArguments:
    model: str = field(default="image-classifier", metadata={"help": "The model family to train."})
    dataset: str | None = field(default=None, metadata={"help": "Data source (default: the family's embedded one)."})
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of a Hub dataset."})
    revision: str | None = field(default=None, metadata={"help": "Revision (branch, tag, commit) of a Hub dataset."})
    image_column: str = field(
        default="image", metadata={"help": "Column of csv/json/parquet/Hub data holding images (paths)."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding texts."})
    label_column: str = field(default="label", metadata={"help": "Column holding labels."})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "Text families: a tokenizer folder or Hub id (default: train a byte-level BPE one on "
                  "train)."},
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "Start from a saved model instead of random weights: a run folder or a Hub repo id, "
                  "REPO@REVISION for a branch, tag or commit. Its family's runs take every weight (a new head for "
                  "other labels); a text classifier takes a gpt run's body; gpt and text-classifier take a "
                  "transformers GPT-2. The model keeps its processor (tokenizer, image size, normalisation)."},
    )
    backbone: str | None = field(
        default=None,
        metadata={"help": "A pretrained encoder: a transformers vision backbone (folder or Hub id; anything "
                  "AutoBackbone knows: ResNet, ConvNeXt, Swin, DINOv2, ...) for image-classifier and segmentation, "
                  "whose preprocessing (mean, std, size, channels) the processor takes; for fusion the image "
                  "encoder: an image-classifier run or a transformers vision model (ResNet-like)."},
    )
    text_backbone: str | None = field(
        default=None,
        metadata={"help": "fusion: the text encoder starts from this gpt or text-classifier run, or a transformers "
                  "text encoder (BERT-like; folder or Hub id), with its tokenizer."},
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={"help": "Train only what is around the backbone (the head): the backbone's weights and its "
                  "normalisation statistics stay as they were (fine-tuning a pretrained model)."},
    )
    freeze_epochs: int | None = field(
        default=None,
        metadata={"help": "Fine-tune in two phases: the backbone frozen for the first N epochs (the new head learns), "
                  "then everything trains."},
    )
    backbone_learning_rate: float | None = field(
        default=None,
        metadata={"help": "The backbone's peak learning rate (the head keeps --learning-rate): a pretrained body "
                  "often wants a smaller one."},
    )
    lora: str | None = field(
        default=None,
        metadata={"help": "Train a LoRA adapter (peft) on the --init-from model instead of every weight: "
                  "r=RANK,alpha=ALPHA[,dropout=P][,target=REGEX]. The default targets are the body's linear and "
                  "convolution layers (the GPT's attention and MLP projections); target= names others by their full "
                  "module names. A new head trains in full. The run folder holds the adapter."},
    )
    merge_lora: bool = field(
        default=False,
        metadata={"help": "With --lora: also save the merged model, a plain one, in the run folder."},
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "Read the train split as a stream (data too big for the disk cache); needs --max-steps."},
    )
    streaming_validation_size: int = field(
        default=1000, metadata={"help": "With --streaming and no validation split: rows taken from the stream's start."}
    )
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Run folder; the model files are written at its top. Default runs/<model>-<dataset>."},
    )
    epochs: int | None = field(
        default=None, metadata={"help": "Passes over the training data (default: the family's)."}
    )
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps to train for; overrides --epochs."})
    batch_size: int = field(default=64, metadata={"help": "Samples per process and step."})
    eval_batch_size: int | None = field(default=None, metadata={"help": "Default: --batch-size."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate (default: the family's)."})
    weight_decay: float = 0.01
    lr_scheduler: str = field(
        default="cosine", metadata={"help": "A transformers scheduler name (linear, cosine, ...)."}
    )
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of the steps spent warming up."})
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "Gradient clipping norm; none to disable."})
    gradient_accumulation_steps: int = 1
    ema_decay: float | None = field(
        default=None,
        metadata={"help": "Evaluate and save an exponential moving average of the weights with this decay (e.g. "
                  "0.999); 0 turns it off. Default: the family's (diffusion: 0.999; the others: off)."},
    )
    mixed_precision: Literal["no", "fp16", "bf16"] | None = field(
        default=None, metadata={"help": "Default: what accelerate's config says (`accelerate launch`), else no."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward (saves memory)."}
    )
    torch_compile: bool = field(default=False, metadata={"help": "Compile the model with torch.compile (inductor)."})
    seed: int = 0
    image_size: int | None = field(
        default=None,
        metadata={"help": "Side of the square images image models read: the shorter side is resized to it and the "
                  "centre kept. Default: the first training image's shorter side, at most 64."},
    )
    validation_from_train: float | None = field(
        default=None,
        metadata={"help": "Pick the best epoch on this fraction of train (stratified, seeded) instead of the source's "
                  "validation split (e.g. 0.1 when that split is too small to choose on)."},
    )
    num_workers: str = field(
        default="auto",
        metadata={"help": "DataLoader worker processes per training process, or auto: the cores this process may use "
                  "minus those training uses (torch's threads on a CPU, one on a GPU), at most 8."},
    )
    logging_steps: int = field(default=10, metadata={"help": "Log the training loss every N steps."})
    checkpoint_every: int | None = field(default=None, metadata={"help": "Save a checkpoint every N optimizer steps."})
    keep_checkpoints: int = field(default=2, metadata={"help": "How many of the newest checkpoints to keep."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, `latest` (must exist) or `auto` (resume if one exists)."}
    )
    report_to: str = field(
        default="auto",
        metadata={"help": "mlflow, tensorboard, trackio, wandb, all, none; auto = mlflow when installed."},
    )
    tracking_uri: str | None = field(
        default=None, metadata={"help": "MLflow tracking server (default: a store in the run folder)."}
    )
    push_to_hub: str | None = field(
        default=None, metadata={"help": "After training, publish the run to this Hub repo id."}
    )
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    medical: bool | None = field(
        default=None,
        metadata={"help": "The model reads medical data (X-rays, scans, ...): its card and app then say it is not a "
                  "diagnostic device. Default: what the data folder's hfmodels_data.json says, else no."},
    )
    class_weights: Literal["auto"] | None = field(
        default=None,
        metadata={"help": "auto: weight each class in the loss by its inverse frequency in train (imbalanced data)."},
    )
    model_config: list[str] = field(
        default_factory=list, metadata={"help": "Model config overrides as key=value (values parsed as JSON)."}
    )

    def __post_init__(self):
        positive = {"batch_size": self.batch_size, "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "logging_steps": self.logging_steps}
        positive["keep_checkpoints"] = self.keep_checkpoints
        positive["streaming_validation_size"] = self.streaming_validation_size
        for name in ("epochs", "max_steps", "eval_batch_size", "checkpoint_every", "image_size"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"--ema-decay must be in [0, 1) (0: off), got {self.ema_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.num_workers != "auto" and not (str(self.num_workers).isdigit()):
            raise ValueError(f"--num-workers must be auto or a whole number >= 0, got {self.num_workers!r}")
        if self.validation_from_train is not None and not 0 < self.validation_from_train < 1:
            raise ValueError(f"--validation-from-train must be a fraction in (0, 1), got {self.validation_from_train}")
        if self.validation_from_train is not None and self.streaming:
            raise ValueError("--validation-from-train cannot carve a stream; use --streaming-validation-size")
        if self.image_size is not None and "image_size" in self.model_config_overrides():
            raise ValueError("--image-size and --model-config image_size=... both set the image size; pick one")
        if self.streaming and self.max_steps is None:
            raise ValueError("--streaming needs --max-steps: a stream has no length to count epochs by")
        for flag, value in (("--backbone", self.backbone), ("--text-backbone", self.text_backbone)):
            if value and self.init_from:
                raise ValueError(f"{flag} with --init-from: the saved model already has its encoders; leave out one "
                                 "of them")
        if self.freeze_backbone and self.freeze_epochs:
            raise ValueError("--freeze-backbone freezes the backbone throughout, --freeze-epochs for the first epochs "
                             "only; pick one")
        if self.freeze_epochs is not None and self.freeze_epochs < 1:
            raise ValueError(f"--freeze-epochs must be >= 1, got {self.freeze_epochs}")
        if self.freeze_epochs and self.streaming:
            raise ValueError("--freeze-epochs counts epochs, which a stream does not have (--streaming)")
        if self.freeze_epochs and self.epochs is not None and self.freeze_epochs >= self.epochs:
            raise ValueError(f"--freeze-epochs {self.freeze_epochs} must be fewer than --epochs {self.epochs}, or "
                             "the backbone never trains (--freeze-backbone)")
        if self.backbone_learning_rate is not None and self.backbone_learning_rate <= 0:
            raise ValueError(f"--backbone-learning-rate must be > 0, got {self.backbone_learning_rate}")
        if self.backbone_learning_rate is not None and self.freeze_backbone:
            raise ValueError("--backbone-learning-rate with --freeze-backbone: a frozen backbone does not learn")
        if self.init_from and (self.tokenizer or self.image_size):
            flag = "--tokenizer" if self.tokenizer else "--image-size"
            raise ValueError(f"{flag} with --init-from: the model keeps the processor it was trained with (its "
                             "tokenizer, its image size); leave out one of them")
        if self.lora is not None:
            from ..pretrained.adapters import LoraSettings

            LoraSettings.parse(self.lora)
            if not self.init_from:
                raise ValueError("--lora adapts a saved model: give it with --init-from (a run folder or Hub repo), "
                                 "which is then the adapter's base model")
            refused = {"--freeze-backbone": self.freeze_backbone, "--freeze-epochs": self.freeze_epochs,
                       "--backbone-learning-rate": self.backbone_learning_rate is not None}
            for flag, given in refused.items():
                if given:
                    raise ValueError(f"{flag} with --lora: the adapter leaves the body's weights as they are and "
                                     "trains beside them; leave out one of them")
        if self.merge_lora and self.lora is None:
            raise ValueError("--merge-lora merges a LoRA adapter into its base model: it needs --lora")
        if self.class_weights not in (None, "auto"):
            raise ValueError(f"--class-weights must be auto (or left out), got {self.class_weights!r}")
        # model_config_overrides() also fails early on a malformed --model-config
        if self.class_weights and "class_weights" in self.model_config_overrides():
            raise ValueError(
                "--class-weights auto and --model-config class_weights=... both set the class weights; pick one"
            )

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

    def data_options(self) -> DataOptions:
        from ..data import DataOptions

        return DataOptions(
            image_column=self.image_column, text_column=self.text_column, label_column=self.label_column,
            config=self.dataset_config, revision=self.revision,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_training_arguments(argv: list[str], prog: str = "hfmodels train") -> TrainingArguments:
    """Flags, or `--config run.yaml` with flags overriding the file's values."""
    parser = argument_parser(prog)
    parser.add_argument("--config", help="A YAML file of arguments (flags given too override it).")
    config_file = parser.parse_known_args(argv)[0].config
    if config_file:
        values = read_yaml_arguments(Path(config_file))
        known = {f.name for f in fields(TrainingArguments)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{config_file}: unknown argument(s) {unknown}; known: {sorted(known)}")
        parser.set_defaults(**values)
    namespace = vars(parser.parse_args(argv))
    namespace.pop("config")
    return TrainingArguments(**namespace)


def argument_parser(prog: str) -> argparse.ArgumentParser:
    """A flag per field of TrainingArguments, `--batch-size` or `--batch_size`, typed by its annotation, as
    transformers' HfArgumentParser makes them (which would import transformers before the arguments are read)."""
    parser = argparse.ArgumentParser(prog=prog, description="Train a model family.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(TrainingArguments)
    for item in fields(TrainingArguments):
        kind = hints[item.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            (kind,) = [member for member in typing.get_args(kind) if member is not type(None)]
        default = item.default_factory() if item.default_factory is not MISSING else item.default
        options: dict[str, Any] = {"default": default, "help": item.metadata.get("help", " ")}
        if kind is bool:  # `--streaming`, or `--streaming false`
            options.update(type=parse_bool, nargs="?", const=True)
        elif typing.get_origin(kind) is Literal:
            options.update(choices=typing.get_args(kind))
        elif typing.get_origin(kind) is list:
            options.update(type=typing.get_args(kind)[0], nargs="+")
        else:
            options["type"] = kind
        names = dict.fromkeys([f"--{item.name.replace('_', '-')}", f"--{item.name}"])
        parser.add_argument(*names, dest=item.name, **options)
    return parser


def parse_bool(value: str) -> bool:
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def read_yaml_arguments(path: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ValueError(f"--config {path}: cannot read it ({error})") from error
    except yaml.YAMLError as error:
        raise ValueError(f"--config {path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise ValueError(f"--config {path}: expected a mapping of argument names to values")
    return {key.replace("-", "_"): value for key, value in values.items()}
