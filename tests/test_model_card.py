"""Model cards: rendering from the run's records, kept sections, and the offline check."""

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hfmodels.hub import CardCheckError, check_card, ensure_card_ok, write_card
from hfmodels.training import TrainingArguments, train

from .conftest import run_cli

NOTE = "\nMeasured on a laptop; a person wrote this.\n"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("cards") / "run"
    train(TrainingArguments(max_steps=3, batch_size=16, output_dir=str(output_dir),
                            model_config=["hidden_sizes=[8,8]", "depths=[1,1]"]))
    return output_dir


@pytest.fixture
def run_dir(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def test_card_tells_what_the_run_recorded(run_dir):
    card = ModelCard.load(write_card(run_dir, "someone/digits", license="mit"))
    eval_results = json.loads((run_dir / "eval_results.json").read_text())
    run_info = json.loads((run_dir / "run_info.json").read_text())
    [result] = card.data.eval_results
    assert (result.metric_type, result.metric_value) == ("accuracy", eval_results["metrics"]["accuracy"])
    assert (result.dataset_name, result.dataset_split) == ("digits", "test")
    assert card.data.license == "mit" and card.data.datasets is None  # digits is embedded, not a Hub dataset
    text = card.text
    assert "2,626 parameters" in text and "| `hidden_sizes` | `[8, 8]` |" in text
    assert "| train | 1,212 |" in text and "| `max_steps` | `3` |" in text
    assert f"| this model | {eval_results['metrics']['loss']:.4f} | {eval_results['metrics']['accuracy']:.4f} |" in text
    assert run_info["git_commit"] in text and f"seed: `{run_info['seed']}`" in text
    assert (run_dir / "learning_curves.png").stat().st_size > 1000
    assert "not a medical device" not in text
    assert check_card(run_dir) == []


def test_rendering_twice_gives_the_same_card(run_dir):
    first = write_card(run_dir, "someone/digits").read_bytes()
    plot = (run_dir / "learning_curves.png").read_bytes()
    assert write_card(run_dir).read_bytes() == first  # repo id kept from the card already there
    assert (run_dir / "learning_curves.png").read_bytes() == plot


def test_text_in_kept_sections_survives_re_rendering(run_dir):
    readme = write_card(run_dir, "someone/digits")
    readme.write_text(
        readme.read_text().replace("<!-- hfmodels:keep notes -->\n", f"<!-- hfmodels:keep notes -->{NOTE}")
        + f"\n<!-- hfmodels:keep retired -->{NOTE}<!-- /hfmodels:keep -->\n"
    )
    text = write_card(run_dir, license="apache-2.0").read_text()
    assert f"<!-- hfmodels:keep notes -->{NOTE}<!-- /hfmodels:keep -->" in text
    # not in the template: kept at the end
    assert f"<!-- hfmodels:keep retired -->{NOTE}<!-- /hfmodels:keep -->" in text
    assert "license: apache-2.0" in text and "someone/digits" in text


def test_the_card_says_what_the_run_recorded_it_is_not_what_its_labels_suggest(run_dir):
    """`medical` and `dataset.synthetic` of eval_results.json decide the card's statements; labels that look
    medical do not."""
    config = json.loads((run_dir / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "NORMAL", "1": "PNEUMONIA"}, {"NORMAL": 0, "PNEUMONIA": 1}
    (run_dir / "config.json").write_text(json.dumps(config))
    text = write_card(run_dir, "someone/xray").read_text()
    assert "not a medical device" not in text and "synthetic data" not in text

    results = json.loads((run_dir / "eval_results.json").read_text())
    results["dataset"]["synthetic"] = True
    (run_dir / "eval_results.json").write_text(json.dumps(results))
    text = write_card(run_dir).read_text()
    assert "**Trained on synthetic data** (generated, not collected)" in text and "not a medical device" not in text

    results["medical"] = True
    (run_dir / "eval_results.json").write_text(json.dumps(results))
    text = write_card(run_dir).read_text()
    assert "**This model is not a medical device and must not be used for diagnosis.**" in text
    assert "It was trained on synthetic data (generated, not collected from people)" in text
    assert check_card(run_dir) == []


def test_a_local_data_folder_is_named_by_its_own_name_not_its_absolute_path(run_dir):
    for record, field in (("eval_results.json", "dataset"), ("training_args.json", None)):
        data = json.loads((run_dir / record).read_text())
        (data[field] if field else data)["name" if field else "dataset"] = "/home/someone/private/chest_xray"
        (run_dir / record).write_text(json.dumps(data))
    card = ModelCard.load(write_card(run_dir, "someone/xray"))
    assert "/home/someone" not in str(card) and "`chest_xray`" in card.text
    assert card.data.eval_results[0].dataset_name == "chest_xray" and card.data.datasets is None
    assert check_card(run_dir) == []


def test_check_finds_numbers_that_differ_from_eval_results(run_dir):
    readme = write_card(run_dir, "someone/digits")
    accuracy = json.loads((run_dir / "eval_results.json").read_text())["metrics"]["accuracy"]
    readme.write_text(readme.read_text().replace(f"value: {accuracy}", "value: 0.999"))
    with pytest.raises(CardCheckError, match=f"model-index says accuracy = 0.999, eval_results.json says {accuracy}"):
        ensure_card_ok(run_dir)


def test_check_finds_unknown_pipeline_tag_missing_image_and_broken_yaml(run_dir):
    readme = write_card(run_dir, "someone/digits")
    text = readme.read_text()
    readme.write_text(text.replace("pipeline_tag: image-classification", "pipeline_tag: digit-guessing")
                      .replace("](learning_curves.png)", "](curves.png)"))
    problems = check_card(run_dir)
    assert any("pipeline_tag 'digit-guessing' is not a Hub task" in p for p in problems)
    assert any("links the image curves.png" in p for p in problems)
    readme.write_text(text.replace("library_name: transformers", "library_name: [transformers"))
    [problem] = check_card(run_dir)
    assert "the metadata does not parse" in problem


def test_cli_card_renders_and_check_fails_with_what_to_fix(run_dir):
    rendered = run_cli("card", str(run_dir), "--repo-id", "someone/digits", "--license", "mit")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert rendered.stdout.strip() == str(run_dir / "README.md")
    (run_dir / "learning_curves.png").unlink()
    checked = run_cli("card", "--check", str(run_dir))
    assert checked.returncode == 1
    assert "links the image learning_curves.png" in checked.stderr and "Traceback" not in checked.stderr
