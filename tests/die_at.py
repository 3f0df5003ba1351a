"""`python tests/die_at.py POINT ARGS...` runs `scripts/train.py ARGS...` (the arguments of `hfmodels train`) and kills
the process with SIGKILL, so no clean-up code runs, at POINT:

- `weights`: right after the final model's weights are written (the rest of the run folder is not);
- `checkpoint-N`: right after the checkpoint of step N is complete;
- `evaluation`: during an evaluation, after its first batch.

`accelerate launch tests/die_at.py POINT ARGS...` kills every rank at that point.
"""

import os
import runpy
import signal
import sys
from pathlib import Path

from transformers import PreTrainedModel

from hfmodels.training import loop


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_after(function, when=lambda *args: True):
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        if when(*args):
            die()
        return result

    return wrapped


point, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]
if point == "weights":
    PreTrainedModel.save_pretrained = die_after(PreTrainedModel.save_pretrained)
elif point.startswith("checkpoint-"):
    step = int(point.removeprefix("checkpoint-"))
    loop.save_checkpoint = die_after(loop.save_checkpoint,
                                     lambda accelerator, output_dir, state, *rest: state.step == step)
elif point == "evaluation":
    def evaluate_a_batch_and_die(model, loader, *args):
        model(**next(iter(loader)))
        die()

    loop.evaluate_model = evaluate_a_batch_and_die
else:
    raise SystemExit(f"unknown point {point!r}")
runpy.run_path(str(Path(__file__).parent.parent / "scripts" / "train.py"), run_name="__main__")
