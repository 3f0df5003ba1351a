"""Fine-tuning a pretrained model: weight decay on the weights that decay only, a frozen backbone left bit-identical
(batch-norm statistics included), the two phases of --freeze-epochs resuming bit-identically, discriminative learning
rates, and the refusals."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import get_scheduler

from hfmodels.data import load_source
from hfmodels.families import get_family
from hfmodels.hub.card import write_card
from hfmodels.training import TrainingArguments, train
from hfmodels.training.fine_tuning import FineTuning

from .conftest import REPO
from .test_interruptions import DIE_AT, assert_same_weights
from .test_training import launch_two_processes

TINY = ["hidden_sizes=[8,8]", "depths=[1,1]"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """An image classifier of digits as a saved model: the backbone the runs below start from."""
    family = get_family("image-classifier")
    model, processor = family.build(load_source("digits")["train"], {"hidden_sizes": [8, 8], "depths": [1, 1]})
    folder = tmp_path_factory.mktemp("pretrained")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def plan(**flags):
    family = get_family("image-classifier")
    model = family.build_model(load_source("digits")["train"], {"hidden_sizes": [8, 8], "depths": [1, 1]})
    return model, FineTuning.plan(TrainingArguments(**flags), family, model)


def test_only_matrices_and_kernels_decay_and_the_head_comes_first():
    model, fine_tuning = plan()
    groups = fine_tuning.parameter_groups(model, learning_rate=1e-3, weight_decay=0.05)
    assert [group["name"] for group in groups] == ["head, decay", "head, no decay"]
    names = {id(p): name for name, p in model.named_parameters()}
    decaying = {names[id(p)] for p in groups[0]["params"]}
    assert decaying == {name for name, p in model.named_parameters() if p.ndim >= 2}
    assert "head.weight" in decaying and "head.bias" not in decaying
    assert not any(name.endswith("norm.weight") for name in decaying)  # batch-norm scales
    assert [group["weight_decay"] for group in groups] == [0.05, 0.0]
    assert sum(len(group["params"]) for group in groups) == len(list(model.parameters()))


def test_the_backbone_learning_rate_follows_the_schedule_beside_the_heads():
    model, fine_tuning = plan(backbone_learning_rate=1e-4)
    groups = fine_tuning.parameter_groups(model, learning_rate=1e-3, weight_decay=0.01)
    assert [(group["name"], group["lr"]) for group in groups] == [
        ("head, decay", 1e-3), ("head, no decay", 1e-3), ("backbone, decay", 1e-4), ("backbone, no decay", 1e-4)]
    optimizer = torch.optim.AdamW(groups)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=2, num_training_steps=10)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        head, backbone = scheduler.get_last_lr()[0], scheduler.get_last_lr()[2]
        assert backbone == pytest.approx(head / 10)
    backbone_ids = {id(p) for p in model.image_classifier.parameters()}
    assert all(id(p) in backbone_ids for group in groups[2:] for p in group["params"])


def test_a_frozen_backbone_stays_bit_identical_statistics_included(pretrained, tmp_path):
    output = tmp_path / "frozen"
    train(TrainingArguments(init_from=str(pretrained), freeze_backbone=True, max_steps=12, batch_size=32,
                            output_dir=str(output), report_to="none"))
    before, after = load_file(pretrained / "model.safetensors"), load_file(output / "model.safetensors")
    backbone = [key for key in before if key.startswith("image_classifier.")]
    assert any("running_mean" in key for key in backbone) and any("num_batches_tracked" in key for key in backbone)
    assert all(torch.equal(before[key], after[key]) for key in backbone)
    assert not torch.equal(before["head.weight"], after["head.weight"])  # the head trained
    record = json.loads((output / "run_info.json").read_text())["fine_tuning"]
    assert record["backbone"] == ["image_classifier"] and record["frozen"] == "throughout"
    head = sum(before[key].numel() for key in ("head.weight", "head.bias"))
    assert record["trainable_parameters"] == head < record["parameters"]
    card = write_card(output).read_text()
    assert "the backbone (`image_classifier`) was frozen throughout (its weights and normalisation statistics" in card
    assert f"{head:,} of {record['parameters']:,} parameters trained." in card


def test_freeze_epochs_trains_the_head_first_then_everything_and_resumes_across_the_phases(pretrained, tmp_path):
    # digits: 1,212 training rows, 37 steps an epoch at batch 32; checkpoints at step 30 (epoch 1, frozen) and 60
    options = {"init_from": str(pretrained), "freeze_epochs": 1, "epochs": 2, "batch_size": 32,
               "checkpoint_every": 30, "backbone_learning_rate": 3e-4}
    reference = tmp_path / "reference"
    train(TrainingArguments(**options, output_dir=str(reference), report_to="none"))
    before = load_file(pretrained / "model.safetensors")
    in_phase_one = load_file(reference / "checkpoints" / "step-30" / "model.safetensors")
    in_phase_two = load_file(reference / "checkpoints" / "step-60" / "model.safetensors")
    backbone = [key for key in before if key.startswith("image_classifier.")]
    assert all(torch.equal(before[key], in_phase_one[key]) for key in backbone)
    assert not torch.equal(before["head.weight"], in_phase_one["head.weight"])
    assert not all(torch.equal(before[key], in_phase_two[key]) for key in backbone)  # then the backbone trained

    interrupted = tmp_path / "interrupted"
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    killed = subprocess.run([sys.executable, DIE_AT, "checkpoint-30", *flags, "--report-to", "none",
                             "--output-dir", str(interrupted)], capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    train(TrainingArguments(**options, output_dir=str(interrupted), report_to="none",
                            resume_from_checkpoint="latest"))
    for weights in ("model.safetensors", "checkpoints/step-60/model.safetensors"):
        assert_same_weights(reference / weights, interrupted / weights)


def test_two_processes_train_through_a_frozen_first_epoch(pretrained, tmp_path):
    launch = launch_two_processes(REPO / "scripts" / "train.py", "--init-from", str(pretrained), "--freeze-epochs",
                                  "1", "--epochs", "2", "--batch-size", "16", "--report-to", "none",
                                  "--output-dir", str(tmp_path / "two"))
    assert launch.returncode == 0, launch.stderr[-3000:]
    info = json.loads((tmp_path / "two" / "run_info.json").read_text())
    assert info["num_processes"] == 2 and info["fine_tuning"]["frozen"] == "for the first 1 epoch(s)"


@pytest.mark.parametrize(("flags", "message"), [
    ({"model": "autoencoder", "freeze_backbone": True}, r"the autoencoder model has no head apart from its body"),
    ({"model": "gpt", "freeze_backbone": True, "model_config": ["hidden_size=16", "num_hidden_layers=1",
                                                                "num_attention_heads=2"]},
     r"--freeze-backbone: nothing of the gpt model is left to train"),
    ({"freeze_epochs": 3, "max_steps": 20}, r"--freeze-epochs 3: the run has only 2 epoch\(s\) \(20 steps\)"),
])
def test_fine_tuning_flags_that_cannot_work_are_refused(flags, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        train(TrainingArguments(**flags, output_dir=str(tmp_path / "run"), report_to="none"))


@pytest.mark.parametrize(("flags", "message"), [
    ({"freeze_backbone": True, "freeze_epochs": 1}, "pick one"),
    ({"freeze_epochs": 0}, r"--freeze-epochs must be >= 1"),
    ({"freeze_epochs": 3, "epochs": 3}, r"must be fewer than --epochs 3"),
    ({"freeze_epochs": 1, "streaming": True, "max_steps": 5}, r"a stream does not have"),
    ({"backbone_learning_rate": 0}, r"--backbone-learning-rate must be > 0"),
    ({"backbone_learning_rate": 1e-4, "freeze_backbone": True}, r"a frozen backbone does not learn"),
])
def test_fine_tuning_arguments_are_checked(flags, message):
    with pytest.raises(ValueError, match=message):
        TrainingArguments(**flags)
