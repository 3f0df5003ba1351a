"""A failure after training never loses the trained model: the run folder is complete, loads, and the error is one
line naming the step that failed and the folder the model is in."""

import json

import pytest
from transformers import AutoModelForImageClassification

from hfmodels.cli import main

TINY = ["--max-steps", "3", "--batch-size", "16", "--model-config", "hidden_sizes=[8,8]", "depths=[1,1]",
        "--report-to", "none"]


def fail(*args, **kwargs):
    raise RuntimeError("broken on purpose")


# (the step as the error names it, what to break, what the run folder lacks then)
FAILURES = {
    "the model card": ("hfmodels.hub.card.render_card", ["README.md"]),
    "the pictures": (
        "hfmodels.families.image_classifier.ImageClassifierFamily.write_artifacts", ["confusion_matrix.png"]
    ),
    "the baselines": ("hfmodels.families.image_classifier.ImageClassifierFamily.baselines", []),
    "logging to the trackers": ("hfmodels.training.loop.finish_tracking", []),
}


def train_and_fail(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hfmodels train: error:")]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("step", sorted(FAILURES))
def test_a_failing_step_after_training_leaves_the_model_saved_and_says_so(step, tmp_path, monkeypatch, capsys):
    target, lacking = FAILURES[step]
    monkeypatch.setattr(target, fail)
    run = tmp_path / "run"
    error = train_and_fail(["train", *TINY, "--output-dir", str(run)], capsys)
    assert error == (f"hfmodels train: error: {step} failed (RuntimeError: broken on purpose); "
                     f"the trained model is saved in {run}")
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_image_classifier.py",
                 "eval_results.json", "training_args.json", "training_log.json", "run_info.json"):
        assert (run / name).is_file(), name
    for name in lacking:
        assert not (run / name).exists(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no staging folder left behind
    model = AutoModelForImageClassification.from_pretrained(run)
    assert model.config.hidden_sizes == [8, 8]
    assert json.loads((run / "eval_results.json").read_text())["metrics"]["accuracy"] >= 0


def test_the_other_steps_still_run_and_the_card_can_be_rendered_afterwards(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(FAILURES["the model card"][0], fail)
    monkeypatch.setattr(FAILURES["the pictures"][0], fail)
    run = tmp_path / "run"
    error = train_and_fail(["train", *TINY, "--output-dir", str(run)], capsys)
    assert "the pictures failed (RuntimeError: broken on purpose); the model card failed (RuntimeError" in error
    monkeypatch.undo()
    assert main(["card", str(run)]) == 0
    assert main(["card", "--check", str(run)]) == 0


def test_a_failed_push_after_training_names_the_saved_model_and_how_to_push_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("hfmodels.hub.push.get_token", lambda: None)
    run = tmp_path / "run"
    error = train_and_fail(["train", *TINY, "--output-dir", str(run), "--push-to-hub", "someone/digits"], capsys)
    assert error == (f"hfmodels train: error: pushing to the Hub failed (no Hub token: pass --token, set HF_TOKEN, or "
                     f"log in with `hf auth login`); the trained model is saved in {run}: push it with "
                     f"`hfmodels push {run} someone/digits`")
    assert (run / "README.md").is_file() and (run / "model.safetensors").is_file()
