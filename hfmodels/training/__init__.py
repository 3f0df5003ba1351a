"""The one training loop (`loop.py`), its arguments, checkpoints, trackers and the run folder it writes.

The names below are imported from their modules when first used (PEP 562), so that `hfmodels.training.arguments`
(the flags of `hfmodels train`) is read without importing torch."""

from ..lazy import lazy_exports

ARGUMENTS, LOOP = "hfmodels.training.arguments", "hfmodels.training.loop"
EXPORTS = {
    "TrainingArguments": ARGUMENTS, "parse_training_arguments": ARGUMENTS,
    "train": LOOP, "evaluate_model": LOOP, "make_accelerator": LOOP, "make_loader": LOOP,
}
__all__ = list(EXPORTS)

__getattr__ = lazy_exports(__name__, EXPORTS)
