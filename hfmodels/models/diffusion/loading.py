# Generated from hfmodels/models/loading.py by `make fix-copies`: edit that file, not this copy.
"""Strict weight loading: a weight that fails to load is an error, never a quiet re-initialisation (DESIGN rule 8),
except the one re-initialisation transformers' contract asks for: a new head.

Every model folder holds a copy of this file (`make fix-copies` writes them, `make test` fails when one differs), so
each stays self-contained: it imports it relatively, and `save_pretrained` copies it beside the weights with the rest
of the folder's code.
"""

import logging
import os

PICKLE_WEIGHT_ENDINGS = (".bin", ".pt", ".pth", ".ckpt")
# The image classifier's CNN layers had index names (`stem.0`, `convs.0.1`, `shortcut.1`) before they had names
# people (and a LoRA `target=`) can read: its folders, and those of a fusion model with that CNN as its image
# encoder, saved before load through these (`StrictLoadingMixin.renamed_weights`).
RENAMED_CNN_WEIGHTS = {
    r"stem\.0\.": "stem.conv.", r"stem\.1\.": "stem.norm.",
    r"convs\.0\.0\.": "conv1.conv.", r"convs\.0\.1\.": "conv1.norm.",
    r"convs\.1\.0\.": "conv2.conv.", r"convs\.1\.1\.": "conv2.norm.",
    r"shortcut\.0\.": "shortcut.conv.", r"shortcut\.1\.": "shortcut.norm.",
}

logger = logging.getLogger(__name__)


class WeightsDoNotFitError(ValueError, RuntimeError):
    """The folder's weights do not fit the model class. A RuntimeError too: that is what transformers raises for
    mis-shaped weights, and what its callers catch."""


class StrictLoadingMixin:
    """`from_pretrained` without silent weight surprises. Against transformers' own loading, which warns:

    - a weight of the body (under `base_model_prefix`) that the folder lacks is an error, unless `strict=False`;
    - a weight outside the body that the folder lacks is a new head, initialised anew with a warning naming it, when
      the folder was saved by another class (a classifier started from a base model or a language model: the
      field's fine-tuning path); from a folder saved by the same class it is an error;
    - a weight in the folder the model has no place for (unexpected) is an error when the folder was saved by the
      same class, unless `strict=False`; loading another class (the backbone out of a classifier) drops it;
    - a weight of another shape is an error unless `ignore_mismatched_sizes=True` (then it is initialised anew, with
      transformers' warning), e.g. a head for another number of labels;
    - weights load from safetensors only: a pickle file (`pytorch_model.bin`) needs `use_safetensors=False`.

    The errors list the keys. Put it first among the bases:
    `class XPreTrainedModel(StrictLoadingMixin, PreTrainedModel)`.

    A class whose weights were renamed declares `renamed_weights` (pattern -> replacement, transformers'
    `key_mapping`): folders saved under the old names load as before.
    """

    renamed_weights: dict[str, str] = {}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, **kwargs):
        source = str(pretrained_model_name_or_path)
        if cls.renamed_weights:
            kwargs.setdefault("key_mapping", cls.renamed_weights)
        output_loading_info = kwargs.pop("output_loading_info", False)
        ignore_mismatched_sizes = kwargs.pop("ignore_mismatched_sizes", False)
        refuse_pickle = kwargs.setdefault("use_safetensors", True)
        try:
            # mis-shaped weights are reported below with their keys, rather than by transformers' RuntimeError
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, ignore_mismatched_sizes=True,
                **kwargs,
            )
        except OSError as error:
            if os.path.isfile(os.path.join(source, "adapter_config.json")):
                raise OSError(
                    f"{source} holds a LoRA adapter (adapter_config.json), not a model: load the base model its "
                    "base_model_name_or_path names with this folder's config, then the adapter with peft "
                    f"(`PeftModel.from_pretrained(base, {source!r})`)"
                ) from error
            pickles = pickle_weight_files(source) if refuse_pickle else []
            if pickles:
                raise OSError(
                    f"{source} holds its weights only as pickle ({', '.join(pickles)}), which can run code when "
                    "loaded: hfmodels loads safetensors only. Convert the weights, or pass use_safetensors=False to "
                    "load a pickle you trust"
                ) from error
            raise
        saved_by_this_class = cls.__name__ in (getattr(model.config, "architectures", None) or [cls.__name__])
        new_head = [] if saved_by_this_class else sorted(k for k in info["missing_keys"] if outside_body(model, k))
        missing = sorted(set(info["missing_keys"]) - set(new_head))
        problems = []
        if strict and missing:
            problems.append(f"missing from the folder (would be randomly initialised): {missing}")
        if strict and saved_by_this_class and info["unexpected_keys"]:
            problems.append(f"in the folder but not in the model: {sorted(info['unexpected_keys'])}")
        if not ignore_mismatched_sizes and info["mismatched_keys"]:
            shapes = [f"{key} (folder {tuple(saved)}, model {tuple(expected)})"
                      for key, saved, expected in sorted(info["mismatched_keys"])]
            problems.append(f"of another shape: {shapes}")
        if problems:
            raise WeightsDoNotFitError(
                f"{source}: the weights do not fit {cls.__name__}; " + "; ".join(problems)
                + ". Pass strict=False to load it anyway or ignore_mismatched_sizes=True to initialise mis-shaped "
                "weights anew (a head for other labels)"
            )
        if new_head:
            logger.warning("%s: a new head for %s, initialised anew (train it before use): %s", source, cls.__name__,
                           new_head)
        return (model, info) if output_loading_info else model


def outside_body(model, key: str) -> bool:
    """Whether a weight belongs to a head around the body (the module named `base_model_prefix`), not to the body."""
    prefix = model.base_model_prefix
    return hasattr(model, prefix) and model.base_model is not model and not key.startswith(f"{prefix}.")


def pickle_weight_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if name.endswith(PICKLE_WEIGHT_ENDINGS))
