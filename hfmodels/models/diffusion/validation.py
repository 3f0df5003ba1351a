# Generated from hfmodels/models/validation.py by `make fix-copies`: edit that file, not this copy.
"""Bad input, refused by name (DESIGN rule 8): the checks of config fields and of tensor values every model folder
shares. Each error is a ValueError naming the field or input, the bad value and what is allowed.

Every model folder holds a copy of this file (`make fix-copies` writes them, `make test` fails when one differs), so
each stays self-contained.

Configs are checked the transformers 5 way, typed fields first, then rules across fields in `validate`, which
`save_pretrained` runs again, but not with huggingface_hub's `@strict` itself: its errors
(`StrictDataclassFieldValidationError`, `StrictDataclassClassValidationError`) are no ValueErrors, and it refuses an
int for a float field (`dropout=0` from a JSON file or the command line).
"""

from types import UnionType
from typing import Union, get_args, get_origin

import torch
from transformers.utils.versions import require_version

# The versions this code runs on: the ranges pyproject.toml declares (a test keeps the two equal), whose lower bounds
# tests/test_compat.py loads saved folders with. A folder loaded with trust_remote_code elsewhere says so at once,
# instead of failing deeper down.
REQUIRED_VERSIONS = ("transformers>=5.18,<6", "torch>=2.13")
for requirement in REQUIRED_VERSIONS:
    require_version(requirement, f"this model's code (saved by hfmodels) needs it: pip install '{requirement}'")

# how a type reads in an error message: (one value, several)
TYPE_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"),
              bool: ("true or false", "booleans")}


# the losses of transformers' classification heads (PreTrainedConfig.problem_type)
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


class ValidatedConfig:
    """Put first among the bases: `class XConfig(ValidatedConfig, PreTrainedConfig)`. When the config is made (after
    `__post_init__`) and again when it is saved, `validate` checks each field annotated on the config class against its
    annotation, then the config's own rules (`check_fields`), then transformers' rules."""

    def __post_init__(self, **kwargs):
        for name in type(self).__annotations__:  # a tuple from a Python caller is a list, as JSON gives it back
            if isinstance(getattr(self, name), tuple):
                setattr(self, name, list(getattr(self, name)))
        super().__post_init__(**kwargs)
        self.validate()

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """transformers' `from_dict`, then `validate` again: it sets the keyword arguments of `from_pretrained`
        (`AutoConfig.from_pretrained(folder, dropout=5.0)`) on the config after making it."""
        loaded = super().from_dict(config_dict, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded).validate()
        return loaded

    def validate(self) -> None:
        for name, annotation in type(self).__annotations__.items():
            if not has_type(getattr(self, name), annotation):
                self.require(name, False, f"must be {type_name(annotation)}")
        self.require("problem_type", self.problem_type in (None, *PROBLEM_TYPES),
                     f"must be None or one of {PROBLEM_TYPES}")
        self.check_fields()
        super().validate()

    def check_fields(self) -> None:
        """The rules of this config's fields, whose types are right by now: override it, calling `self.require`."""

    def require_class_weights(self) -> None:
        """`class_weights` (of a class-weighted loss) is None or one positive number per class."""
        weights = self.class_weights
        one_per_class = weights is not None and len(weights) == self.num_labels and all(w > 0 for w in weights)
        self.require("class_weights", weights is None or one_per_class,
                     f"must be None or {self.num_labels} positive numbers, one per class")
        self.require("class_weights", weights is None or self.problem_type in (None, "single_label_classification"),
                     f"weighs the classes of single-label classification, not of problem_type={self.problem_type!r}")

    def require(self, field: str, ok: bool, allowed: str) -> None:
        """A ValueError naming `field`, its value and `allowed` (what it may be) unless `ok`."""
        if not ok:
            raise ValueError(f"{type(self).__name__}.{field}={getattr(self, field)!r} is invalid: {allowed}.")


def has_type(value, annotation) -> bool:
    """Whether `value` is of the type `annotation` (int, float, str, bool, a class, None, unions, list[...] and
    tuple[..., ...]): an int is also a number, a bool never an integer or a number."""
    if annotation is None or annotation is type(None):
        return value is None
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(has_type(value, option) for option in get_args(annotation))
    if origin in (list, tuple):
        return isinstance(value, origin) and all(has_type(item, get_args(annotation)[0]) for item in value)
    if isinstance(value, bool):
        return annotation is bool
    if annotation is float:
        return isinstance(value, (int, float))
    return isinstance(value, annotation)


def type_name(annotation, plural: bool = False) -> str:
    """`annotation` in words: "an integer or None", "a list of numbers", ..."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return " or ".join(dict.fromkeys(type_name(option, plural) for option in get_args(annotation)))
    if origin in (list, tuple):  # a tuple is a list by the time it is checked
        return f"{'lists' if plural else 'a list'} of {type_name(get_args(annotation)[0], plural=True)}"
    names = TYPE_NAMES.get(annotation, (f"a {annotation.__name__}", f"{annotation.__name__}s"))
    return names[plural]


def values_are_readable(tensor: torch.Tensor) -> bool:
    """Whether `forward` may read the values of `tensor` to check them: on the CPU and outside torch.compile, where
    that costs nothing. Reading a tensor that lives on an accelerator makes the host wait for the device (at every
    training step and every generated token) and breaks compiled graphs, so there the data goes unchecked by the model
    and the kernels' own device-side asserts stop ids out of range."""
    return tensor.device.type == "cpu" and not torch.compiler.is_compiling()


def check_class_ids(labels: torch.Tensor, num_labels: int, ignore_index: int | None = None) -> None:
    """A ValueError when `labels` holds other ids than 0 .. num_labels - 1 (and `ignore_index`), where that is free to
    know (`values_are_readable`)."""
    if not values_are_readable(labels):
        return
    wrong = (labels < 0) | (labels >= num_labels)
    if ignore_index is not None:
        wrong &= labels != ignore_index
    if wrong.any():
        ignored = f" or {ignore_index} (config.semantic_loss_ignore_index)" if ignore_index is not None else ""
        raise ValueError(
            f"labels must be class ids in 0 .. {num_labels - 1} (config.num_labels={num_labels}){ignored}, got "
            f"{labels[wrong].unique().tolist()[:10]}"
        )


def classification_problem(labels: torch.Tensor, config) -> str:
    """The problem of a classification head: `config.problem_type`, else what transformers' sequence-classification
    loss infers and then sets on the config (so it is saved): regression for one label, single-label classification
    for integer labels, else multi-label classification."""
    if config.problem_type is None:
        if config.num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    return config.problem_type


def check_classification_labels(labels: torch.Tensor, config) -> None:
    """A ValueError when `labels` do not fit the head's problem (`classification_problem`): class ids in
    0 .. num_labels - 1 (single-label), (batch, num_labels) targets (multi-label, and regression of several numbers)
    or (batch,) numbers (regression of one)."""
    problem = classification_problem(labels, config)
    if problem == "single_label_classification":
        check_class_ids(labels, config.num_labels)
        return
    one_number = problem == "regression" and config.num_labels == 1 and labels.ndim == 1
    if not one_number and (labels.ndim != 2 or labels.shape[1] != config.num_labels):
        raise ValueError(
            f"labels for {problem} (config.problem_type) must have shape (batch, {config.num_labels}) "
            f"(config.num_labels){', or (batch,)' if config.num_labels == 1 else ''}, got {tuple(labels.shape)}"
        )
