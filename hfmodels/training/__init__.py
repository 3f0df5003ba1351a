"""The one training loop (`loop.py`), its arguments, checkpoints, trackers and the run folder it writes.

The names below are imported from their modules when first used (PEP 562), so that `hfmodels.training.arguments`
(the flags of `hfmodels train`) is read without importing torch."""

from importlib import import_module

ARGUMENTS, LOOP = "hfmodels.training.arguments", "hfmodels.training.loop"
EXPORTS = {
    "TrainingArguments": ARGUMENTS, "parse_training_arguments": ARGUMENTS,
    "train": LOOP, "evaluate_model": LOOP, "make_accelerator": LOOP, "make_loader": LOOP,
}
__all__ = list(EXPORTS)


def __getattr__(name: str):
    if name in EXPORTS:
        return getattr(import_module(EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
