import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from hfmodels.cli import main
from hfmodels.data.digits import digits_pixels

from .conftest import run_cli


def test_evaluate_prints_json_metrics_on_stdout(trained_digits_classifier):
    result = run_cli("evaluate", str(trained_digits_classifier))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)  # stdout is nothing but the JSON
    saved = json.loads((trained_digits_classifier / "eval_results.json").read_text())
    assert report["dataset"] == "digits" and report["split"] == "test"
    assert report["metrics"]["accuracy"] == saved["metrics"]["accuracy"]


def test_predict_prints_top_classes(trained_digits_classifier, tmp_path):
    images, labels = digits_pixels()
    paths = []
    for index in (0, 1, 2):
        path = tmp_path / f"digit-{labels[index]}.png"
        Image.fromarray(images[index], mode="L").save(path)
        paths.append(str(path))
    result = run_cli("predict", str(trained_digits_classifier), *paths, "--top-k", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = json.loads(result.stdout)
    assert [p["input"] for p in predictions] == paths
    assert all(len(p["predictions"]) == 2 for p in predictions)
    assert [p["predictions"][0]["label"] for p in predictions] == [str(labels[i]) for i in (0, 1, 2)]


def test_predict_names_a_corrupt_image_file(trained_digits_classifier, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    result = run_cli("predict", str(trained_digits_classifier), str(corrupt))
    assert result.returncode == 1
    assert str(corrupt) in result.stderr and "Traceback" not in result.stderr


def test_unknown_model_family_is_a_clear_error():
    result = run_cli("train", "--model", "no-such-family")
    assert result.returncode == 1
    assert "Unknown model family --model 'no-such-family'" in result.stderr and "image-classifier" in result.stderr


def test_a_family_is_declared_once_under_a_name_of_its_own():
    from hfmodels.families import FAMILIES, get_family, register_family
    from hfmodels.families.image_classifier import ImageClassifierFamily

    family = get_family("image-classifier")
    assert type(family) is ImageClassifierFamily
    assert register_family(ImageClassifierFamily) is ImageClassifierFamily  # declaring it again changes nothing
    assert get_family("image-classifier") is family

    class Impostor(ImageClassifierFamily):  # inherits the name
        pass

    with pytest.raises(ValueError, match="two families are named 'image-classifier': ImageClassifierFamily and Impost"):
        register_family(Impostor)
    assert FAMILIES["image-classifier"] is family


def test_unknown_dataset_is_a_clear_error(tmp_path):
    result = run_cli("train", "--dataset", "no-such-data", "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 1
    assert "Unknown --dataset 'no-such-data'" in result.stderr and "digits" in result.stderr


def test_model_config_override_out_of_range_names_the_field(tmp_path):
    result = run_cli("train", "--model-config", "dropout=1.5", "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 1
    assert "dropout=1.5" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_bad_training_argument_is_a_clear_error():
    result = run_cli("train", "--batch-size", "0")
    assert result.returncode == 1 and "--batch-size must be >= 1" in result.stderr


def test_short_run_with_max_steps_writes_a_loadable_run_folder(tmp_path):
    output_dir = tmp_path / "run"
    result = run_cli(
        "train", "--max-steps", "3", "--batch-size", "16", "--output-dir", str(output_dir),
        "--model-config", "hidden_sizes=[8,8]", "depths=[1,1]",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["output_dir"] == str(output_dir)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "eval_results.json",
                 "training_args.json", "training_log.json", "modeling_image_classifier.py",
                 "configuration_image_classifier.py", "image_processing_image_classifier.py", "README.md",
                 "learning_curves.png", "confusion_matrix.png"):
        assert (output_dir / name).is_file(), name
    assert "confusion_matrix.png" in (output_dir / "README.md").read_text()
    config = json.loads((output_dir / "config.json").read_text())
    assert config["hidden_sizes"] == [8, 8] and config["id2label"]["3"] == "3"
    log = json.loads((output_dir / "training_log.json").read_text())
    assert log[-1]["step"] == 3
    assert np.isfinite(log[-1]["eval_loss"])


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{empty}"], "{empty}: not a model folder, nor a Hub model repo"),
    (["evaluate", "no-such/repo"], "no-such/repo: not a model folder, nor a Hub model repo that could be loaded"),
    (["predict", "{empty}", "image.png"], "{empty}: not a model folder, nor a Hub model repo"),
    (["push", "{empty}", "ns/name"], "{empty} is not a model folder: it has no config.json"),
    (["push", "{empty}", "no-namespace"], "repo id 'no-namespace' is not of the form 'namespace/name'"),
    (["card", "{empty}"], "{empty} is not a model folder"),
    (["train-tokenizer", "--dataset", "no-such-data", "--output-dir", "{empty}/tok"],
     "Unknown --dataset 'no-such-data'"),
    (["bench", "--only", "nothing"], "invalid choice: 'nothing'"),
    (["app", "{empty}"], "{empty} has no config.json"),
    (["space", "export", "{empty}", "{empty}/space"], "{empty} has no config.json"),
    (["data", "make-pneumonia-demo", "{empty}/demo", "--image-size", "-3"], "image_size=-3"),
    (["train", "--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_every_command_names_its_bad_input_in_one_line(tmp_path, capsys, argv, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    try:
        code = main([arg.format(empty=empty) for arg in argv])
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    error = capsys.readouterr().err
    assert code in (1, 2) and message.format(empty=empty) in error, error
    assert "Traceback" not in error and error.strip().splitlines()[-1].startswith(f"hfmodels {argv[0]}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any(empty.iterdir())


def test_a_one_line_message_is_the_first_line_or_the_error_type():
    from hfmodels.errors import first_line

    assert first_line(OSError("  no such repo\nsee https://example.invalid/help  ")) == "no such repo"
    assert first_line(KeyError()) == "KeyError"  # an empty message: the type, not an IndexError
    assert first_line(ValueError("\n")) == "ValueError"


HEAVY_MODULES = ("torch", "transformers", "datasets", "accelerate", "sklearn")


def test_help_and_bad_flags_answer_before_anything_heavy_is_imported():
    """`hfmodels --help`, `hfmodels train --help` and a bad flag read the arguments first: the libraries that take
    seconds to import are not imported (checked in sys.modules of a fresh process, not by timing)."""
    script = textwrap.dedent("""
        import sys
        from hfmodels.cli import main

        for argv in (["--help"], ["train", "--help"], ["train", "--bad-flag"], ["train", "--batch-size", "x"],
                     ["predict"], ["no-such-command"], ["export", "onnx", "--help"], ["export", "onnx"]):
            try:
                main(argv)
            except SystemExit:  # argparse's help and usage errors
                pass
        print("imported:", sorted(name for name in {heavy} if name in sys.modules), file=sys.stderr)
    """).format(heavy=HEAVY_MODULES)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unrecognized arguments: --bad-flag" in result.stderr and "invalid int value: 'x'" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "imported: []"


def test_the_auto_classes_know_the_families_once_hfmodels_models_is_imported(tmp_path):
    """The documented contract (README, Loading): `import hfmodels` imports no model code and registers nothing;
    `import hfmodels.models`, or using any model class through hfmodels, registers every family with the Auto
    classes, so a saved model loads without trust_remote_code."""
    import hfmodels

    hfmodels.ImageClassifierForImageClassification(hfmodels.ImageClassifierConfig(
        num_channels=1, image_size=8, hidden_sizes=[4], depths=[1], id2label={0: "a", 1: "b"},
    )).save_pretrained(tmp_path / "model")
    script = textwrap.dedent("""
        import sys
        import hfmodels

        assert not {"torch", "transformers", "hfmodels.models"} & set(sys.modules), "import hfmodels imported them"
        from transformers import AutoConfig, AutoModelForImageClassification

        try:
            AutoConfig.from_pretrained("model", trust_remote_code=False)
        except ValueError:
            pass  # hfmodels-image-classifier is not known yet: nothing registered it
        else:
            raise SystemExit("import hfmodels alone registered the families")
        import hfmodels.models

        model = AutoModelForImageClassification.from_pretrained("model")
        print(type(model).__module__, type(model).__name__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["hfmodels.models.image_classifier.modeling_image_classifier",
                                                      "ImageClassifierForImageClassification"]
