"""Interruptions and damaged files: a process killed at any moment loses nothing that was complete, and a damaged
checkpoint or folder is an error naming the file, never a quiet fallback."""

import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from hfmodels import ImageClassifierForImageClassification
from hfmodels.atomic import replaced_folder, write_atomically
from hfmodels.hub import write_card
from hfmodels.training import TrainingArguments, train

from .test_training import assert_same_weights

DIE_AT = str(Path(__file__).parent / "die_at.py")
TINY = {"model_config": ["hidden_sizes=[8,8]", "depths=[1,1]"], "report_to": "none", "batch_size": 16}

class Bomb:
    """A pickle that runs a command when loaded with plain `pickle`/`torch.load(weights_only=False)`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_run_killed_while_saving_leaves_the_previous_version_whole(tmp_path):
    run = tmp_path / "run"
    train(TrainingArguments(**TINY, max_steps=4, output_dir=str(run)), after_save={"the model card": write_card})
    before = {name: (run / name).read_bytes() for name in ("model.safetensors", "config.json", "eval_results.json")}
    (run / "README.md").write_text((run / "README.md").read_text() + "\nA note of the author.\n")

    # a wider model into the same folder: its weights alone would not load with the old config
    wider = ["--model-config", "hidden_sizes=[16,16]", "depths=[1,1]", "--report-to", "none",
             "--batch-size", "16", "--max-steps", "4", "--output-dir", str(run)]
    killed = subprocess.run([sys.executable, DIE_AT, "weights", *wider], capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert {name: (run / name).read_bytes() for name in before} == before
    ImageClassifierForImageClassification.from_pretrained(run)
    assert "A note of the author." in (run / "README.md").read_text()

    finished = subprocess.run([sys.executable, "-m", "hfmodels.cli", "train", *wider], capture_output=True, text=True,
                              check=False)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert ImageClassifierForImageClassification.from_pretrained(run).config.hidden_sizes == [16, 16]
    assert "your-name/run" in (run / "README.md").read_text()  # named after the run folder, not its staging folder
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "run")
    assert all(name.startswith(".tmp-run-") for name in leftovers)  # only the staging folder of the killed save


def test_a_failed_folder_write_leaves_the_old_folder_and_kept_entries_are_links(tmp_path):
    folder = tmp_path / "folder"
    (folder / "history").mkdir(parents=True)
    (folder / "history" / "log.txt").write_text("old log")
    (folder / "model.bin").write_text("old model")
    with pytest.raises(RuntimeError, match="half way"), replaced_folder(folder, keep=("history",)) as staging:
        (staging / "model.bin").write_text("new model")
        raise RuntimeError("half way")
    assert (folder / "model.bin").read_text() == "old model"
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]

    with replaced_folder(folder, keep=("history", "absent")) as staging:
        (staging / "model.bin").write_text("new model")
        assert (staging / "history" / "log.txt").stat().st_ino == (folder / "history" / "log.txt").stat().st_ino
    assert sorted(p.name for p in folder.iterdir()) == ["history", "model.bin"]
    assert (folder / "model.bin").read_text() == "new model"
    assert (folder / "history" / "log.txt").read_text() == "old log"
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]

    write_atomically(folder / "model.bin", b"newer")
    assert (folder / "model.bin").read_bytes() == b"newer"
    assert sorted(p.name for p in folder.iterdir()) == ["history", "model.bin"]
    umask = os.umask(0)
    os.umask(umask)  # staged like any new folder and file: not tempfile's private 0700 / 0600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((folder / "model.bin").stat().st_mode) == 0o666 & ~umask


def test_gradient_accumulation_killed_during_evaluation_resumes_bit_identically(tmp_path):
    # 75 batches an epoch, 2 per step: an evaluation after step 38 (its last step has a single batch)
    options = {**TINY, "gradient_accumulation_steps": 2, "max_steps": 48, "checkpoint_every": 15}
    train(TrainingArguments(**options, output_dir=str(tmp_path / "reference")))
    interrupted = tmp_path / "interrupted"
    arguments = [f"--{key.replace('_', '-')}={value}" for key, value in options.items() if key != "model_config"]
    killed = subprocess.run([sys.executable, DIE_AT, "evaluation", "--model-config", *TINY["model_config"], *arguments,
                             "--output-dir", str(interrupted)], capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(p.name for p in (interrupted / "checkpoints").iterdir()) == ["step-15", "step-30"]
    train(TrainingArguments(**options, output_dir=str(interrupted), resume_from_checkpoint="latest"))
    assert_same_weights(tmp_path / "reference" / "model.safetensors", interrupted / "model.safetensors")
    evaluations = [[record for record in json.loads((folder / "training_log.json").read_text())
                    if "eval_loss" in record]
                   for folder in (tmp_path / "reference", interrupted)]
    assert evaluations[0] == evaluations[1] and len(evaluations[0]) == 2


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("checkpointed") / "run"
    train(TrainingArguments(**TINY, max_steps=4, checkpoint_every=4, output_dir=str(run)))
    return run / "checkpoints" / "step-4"


def damaged_copy(checkpoint: Path, folder: Path, name: str, content: bytes | None, record_size: bool = False) -> Path:
    """A copy of `checkpoint` with file `name` deleted (None) or replaced, its recorded size updated if asked
    (as someone who rewrote the checkpoint on purpose would)."""
    copy = folder / "checkpoint"
    shutil.copytree(checkpoint, copy)
    if content is None:
        (copy / name).unlink()
        return copy
    (copy / name).write_bytes(content)
    if record_size:
        state = json.loads((copy / "trainer_state.json").read_text())
        state["files"][name] = len(content)
        (copy / "trainer_state.json").write_text(json.dumps(state))
    return copy


@pytest.mark.parametrize("name, damage, record_size, message", [
    ("optimizer.bin", "delete", False, "incomplete: optimizer.bin is missing"),
    ("model.safetensors", "truncate", False, r"model.safetensors is damaged: \d+ bytes, \d+ when saved"),
    ("optimizer.bin", "bomb", True, "cannot be loaded.*Weights only load failed"),
    ("random_states_0.pkl", "bomb", True, "random_states_0.pkl cannot be loaded"),
])
def test_a_damaged_checkpoint_is_refused_naming_the_file(
    checkpointed_run, tmp_path, name, damage, record_size, message
):
    marker = tmp_path / "the pickle ran"
    content = {"delete": None, "truncate": (checkpointed_run / name).read_bytes()[:100],
               "bomb": pickle.dumps(Bomb(marker))}[damage]
    copy = damaged_copy(checkpointed_run, tmp_path, name, content, record_size)
    with pytest.raises(ValueError, match=message):
        train(TrainingArguments(**TINY, max_steps=8, output_dir=str(tmp_path / "resumed"),
                                resume_from_checkpoint=str(copy)))
    assert not marker.exists()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()


def test_the_undamaged_checkpoint_resumes(checkpointed_run, tmp_path):
    train(TrainingArguments(**TINY, max_steps=8, output_dir=str(tmp_path / "resumed"),
                            resume_from_checkpoint=str(checkpointed_run)))
    assert load_file(tmp_path / "resumed" / "model.safetensors")


def test_a_failed_space_export_leaves_no_folder(checkpointed_run, tmp_path, monkeypatch):
    from hfmodels.app import space

    def disk_full(*args):
        raise OSError("No space left on device")

    monkeypatch.setattr(space, "write_examples", disk_full)  # after the model files are copied
    with pytest.raises(OSError, match="No space left"):
        space.export_space(checkpointed_run.parent.parent, tmp_path / "space")
    assert list(tmp_path.iterdir()) == []
