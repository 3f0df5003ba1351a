# Generated from hfmodels/models/loading.py by `make fix-copies`: edit that file, not this copy.
"""Strict weight loading: a weight that fails to load is an error, never a quiet re-initialisation (DESIGN rule 8).

Every model folder holds a copy of this file (`make fix-copies` writes them, `make test` fails when one differs), so
each stays self-contained: it imports it relatively, and `save_pretrained` copies it beside the weights with the rest
of the folder's code.
"""

import os

PICKLE_WEIGHT_ENDINGS = (".bin", ".pt", ".pth", ".ckpt")


class StrictLoadingMixin:
    """`from_pretrained` without silent weight surprises. Against transformers' own loading, which warns:

    - a weight the model has but the folder lacks (missing) is an error, unless `strict=False` (a new head on
      purpose, e.g. a sequence classifier started from a language model);
    - a weight in the folder the model has no place for (unexpected) is an error when the folder was saved by the
      same architecture, unless `strict=False`; loading another class (the backbone out of a classifier) drops
      what it has no place for;
    - a weight of another shape is an error unless `ignore_mismatched_sizes=True` (then it is re-initialised);
    - weights load from safetensors only: a pickle file (`pytorch_model.bin`) needs `use_safetensors=False`.

    The errors list the keys. Put it first among the bases:
    `class XPreTrainedModel(StrictLoadingMixin, PreTrainedModel)`.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, **kwargs):
        source = str(pretrained_model_name_or_path)
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
            pickles = pickle_weight_files(source) if refuse_pickle else []
            if pickles:
                raise OSError(
                    f"{source} holds its weights only as pickle ({', '.join(pickles)}), which can run code when "
                    "loaded: hfmodels loads safetensors only. Convert the weights, or pass use_safetensors=False to "
                    "load a pickle you trust"
                ) from error
            raise
        problems = []
        if strict and info["missing_keys"]:
            problems.append(f"missing from the folder (would be randomly initialised): {sorted(info['missing_keys'])}")
        saved_as = getattr(model.config, "architectures", None) or [cls.__name__]
        if strict and cls.__name__ in saved_as and info["unexpected_keys"]:
            problems.append(f"in the folder but not in the model: {sorted(info['unexpected_keys'])}")
        if not ignore_mismatched_sizes and info["mismatched_keys"]:
            shapes = [f"{key} (folder {tuple(saved)}, model {tuple(expected)})"
                      for key, saved, expected in sorted(info["mismatched_keys"])]
            problems.append(f"of another shape: {shapes}")
        if problems:
            raise ValueError(
                f"{source}: the weights do not fit {cls.__name__}; " + "; ".join(problems)
                + ". Pass strict=False to load it anyway (a new head on purpose) or ignore_mismatched_sizes=True to "
                "re-initialise mis-shaped weights"
            )
        return (model, info) if output_loading_info else model


def pickle_weight_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if name.endswith(PICKLE_WEIGHT_ENDINGS))
