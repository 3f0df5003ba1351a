"""Checkpoints: `accelerator.save_state` plus the loop's own state, written atomically.

A checkpoint is written into `checkpoints/.tmp-step-N` and renamed to `checkpoints/step-N` only once
complete (its `trainer_state.json` is the last file written), so a run killed mid-save leaves a
`.tmp-` folder that is never picked up.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import load
from accelerate.utils.constants import RNG_STATE_NAME
from safetensors.torch import load_file, save_file

from ..atomic import put_in_place
from ..errors import first_line

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
BEST_WEIGHTS_FILE = "best_model.safetensors"
MANIFEST = "files"  # in STATE_FILE: the size of every file of the checkpoint


@dataclass
class TrainState:
    """Where the loop is: enough to continue exactly where a checkpoint was taken."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # data loader batches of `epoch` already consumed
    best_score: list[float] | None = None
    best_metric: float | None = None
    best_epoch: int | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)


def checkpoints_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


def is_checkpoint(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and (path / STATE_FILE).is_file()


def save_checkpoint(
    accelerator: Accelerator, output_dir: Path, state: TrainState, best_weights: dict[str, torch.Tensor] | None,
    keep: int,
) -> Path:
    """Called on every process. Keeps the newest `keep` checkpoints."""
    folder = checkpoints_dir(output_dir)
    final, temporary = folder / f"step-{state.step}", folder / f".tmp-step-{state.step}"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()  # every process's random states are written
    if accelerator.is_main_process:
        if best_weights is not None:
            save_file(best_weights, temporary / BEST_WEIGHTS_FILE)
        sizes = {file.name: file.stat().st_size for file in sorted(temporary.iterdir())}
        (temporary / STATE_FILE).write_text(json.dumps({**asdict(state), MANIFEST: sizes}, indent=2))
        put_in_place(temporary, final)
        shutil.rmtree(temporary, ignore_errors=True)  # a checkpoint of the same step saved before
        for old in sorted((p for p in folder.iterdir() if is_checkpoint(p)), key=checkpoint_step)[:-keep]:
            shutil.rmtree(old)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def checkpoint_step(path: Path) -> int:
    return int(path.name.removeprefix("step-"))


def find_checkpoint(output_dir: Path, resume_from: str) -> Path | None:
    """`latest` (must exist), `auto` (None when there is none) or a checkpoint folder's path."""
    if resume_from in ("latest", "auto"):
        folder = checkpoints_dir(output_dir)
        found = (sorted((p for p in folder.iterdir() if is_checkpoint(p)), key=checkpoint_step)
                 if folder.is_dir() else [])
        if found:
            return found[-1]
        if resume_from == "latest":
            raise ValueError(f"--resume-from-checkpoint latest: no complete checkpoint in {folder}")
        return None
    path = Path(resume_from)
    if not is_checkpoint(path):
        raise ValueError(
            f"--resume-from-checkpoint {resume_from}: not a checkpoint folder (a complete one holds {STATE_FILE})"
        )
    return path


def load_checkpoint(accelerator: Accelerator, path: Path) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    """Restores model, optimizer, scheduler and RNG states; returns the loop state and the best weights."""
    saved = json.loads((path / STATE_FILE).read_text())
    check_files(path, saved.pop(MANIFEST), accelerator.process_index)
    try:
        accelerator.load_state(str(path))
    except Exception as error:  # pickle files are read with torch's weights-only unpickler: no code runs
        raise ValueError(f"checkpoint {path} cannot be loaded: {type(error).__name__}: {first_line(error)}") from error
    best_file = path / BEST_WEIGHTS_FILE
    return TrainState(**saved), load_file(best_file) if best_file.is_file() else None


def check_files(path: Path, sizes: dict[str, int], process_index: int) -> None:
    """Every file the checkpoint was saved with is there, whole. The random states are loaded once here because
    accelerate, failing to load them, would only log it and resume with other random numbers."""
    for name, size in sizes.items():
        file = path / name
        if not file.is_file():
            raise ValueError(f"checkpoint {path} is incomplete: {name} is missing")
        if file.stat().st_size != size:
            raise ValueError(f"checkpoint {path}: {name} is damaged: {file.stat().st_size} bytes, {size} when saved")
    random_states = path / f"{RNG_STATE_NAME}_{process_index}.pkl"
    try:
        load(random_states)  # accelerate's weights-only load, as load_state uses
    except Exception as error:
        raise ValueError(f"checkpoint {path}: {random_states.name} cannot be loaded: {first_line(error)}") from error
