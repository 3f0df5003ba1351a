"""The registry of model families: `--model <name>` -> the `Family` that knows its data and metrics.

Every module of this package is imported here, and each declares its families with `@register_family`
(see `base.py`): a new family is a new module, and no list elsewhere names it."""

import importlib
import os
import pkgutil

from transformers import AutoConfig

from ..errors import first_line
from .base import FAMILIES, Family, register_family

for module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{module.name}")


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"Unknown model family --model {name!r}; choose one of: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def load_config(model: str | os.PathLike):
    """The config of a model folder or Hub repo id; an error naming `model` when it has none that can be read."""
    try:
        return AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{model}: not a model folder, nor a Hub model repo that could be loaded ({first_line(error)})"
        ) from error


def family_of_config(config) -> Family:
    """The family a saved model belongs to, from its config's `model_type` and, where families share a config
    (the text families), from the model class named in its `architectures`."""
    candidates = [family for family in FAMILIES.values() if family.config_class.model_type == config.model_type]
    for family in candidates:
        if len(candidates) == 1 or family.model_class.__name__ in (config.architectures or []):
            return family
    if candidates:
        raise ValueError(
            f"config.architectures={config.architectures!r} names none of "
            + ", ".join(family.model_class.__name__ for family in candidates)
        )
    raise ValueError(
        f"config.model_type={config.model_type!r} is not an hfmodels family; known: "
        + ", ".join(sorted(f.config_class.model_type for f in FAMILIES.values()))
    )


__all__ = ["FAMILIES", "Family", "family_of_config", "get_family", "load_config", "register_family"]
