"""`--lora`: a LoRA adapter (peft) trained on a saved model: only the adapter and the new head train, the base's
weights and batch-norm statistics stay, the run folder's adapter reloads through peft without hfmodels to the run's
own outputs, the merged model matches it, and the bad inputs are clear errors."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from hfmodels import GPTForCausalLM, ImageClassifierForImageClassification
from hfmodels.app.views import load
from hfmodels.data import load_source
from hfmodels.families import get_family
from hfmodels.hub import PushError, push_run
from hfmodels.hub.card import write_card
from hfmodels.pretrained.adapters import LoraSettings, add_lora, check_unambiguous, load_adapter_run
from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER
from hfmodels.training import TrainingArguments, make_loader, train
from hfmodels.training.evaluation import evaluate_saved

from .conftest import run_cli
from .model_tester import run_without_hfmodels, tensors_of
from .test_backbones import save_backbone

TINY_GPT = ["max_position_embeddings=32", "hidden_size=32", "num_hidden_layers=2", "num_attention_heads=2",
            "vocab_size=300"]


def trained(output, **arguments):
    train(TrainingArguments(output_dir=str(output), **{"report_to": "none", "batch_size": 16, **arguments}))
    return output


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    """An image classifier of digits on a tiny transformers ResNet backbone: the base the adapters start from."""
    root = tmp_path_factory.mktemp("lora")
    return trained(root / "resnet-run", backbone=str(save_backbone(root / "resnet", "resnet")), max_steps=4)


@pytest.fixture(scope="module")
def resnet_adapter(resnet_run, tmp_path_factory):
    output = tmp_path_factory.mktemp("lora") / "adapter"
    return trained(output, init_from=str(resnet_run), lora="r=4,alpha=8,dropout=0.1", merge_lora=True, max_steps=6,
                   report_to="mlflow")


def test_settings_parse_and_refuse_what_cannot_work():
    assert LoraSettings.parse("r=8,alpha=16") == LoraSettings(8, 16.0)
    assert LoraSettings.parse("r=4,alpha=8,dropout=0.05,target=(q|k),v") == LoraSettings(4, 8.0, 0.05, "(q|k),v")
    for value, message in [("r=0,alpha=16", "the rank r=0 must be at least 1"),
                           ("alpha=16", "give r"), ("r=8", "give alpha"), ("r=8,alpha=16,beta=1", "'beta=1' is not"),
                           ("r=8.5,alpha=16", "r must be an integer"), ("r=8,alpha=0", "alpha=0.0 must be positive"),
                           ("r=8,alpha=16,dropout=1", r"must be in \[0, 1\)"),
                           ("r=8,alpha=16,target=(", "is not a regular expression")]:
        with pytest.raises(ValueError, match=message):
            LoraSettings.parse(value)
    with pytest.raises(ValueError, match="--lora adapts a saved model: give it with --init-from"):
        TrainingArguments(lora="r=8,alpha=16")
    with pytest.raises(ValueError, match="--freeze-backbone with --lora"):
        TrainingArguments(lora="r=8,alpha=16", init_from="x", freeze_backbone=True)
    with pytest.raises(ValueError, match="--merge-lora merges a LoRA adapter into its base model: it needs --lora"):
        TrainingArguments(merge_lora=True)


def test_only_the_adapter_and_the_head_train_and_the_base_stays_as_it_was(resnet_run, resnet_adapter):
    adapter = json.loads((resnet_adapter / "run_info.json").read_text())["adapter"]
    assert adapter["rank"] == 4 and adapter["trained_in_full"] == ["head"]
    assert adapter["targets"] and all(name.startswith("image_classifier.backbone.") for name in adapter["targets"])
    assert adapter["trainable_fraction"] < 0.5 and adapter["base_model"] == str(resnet_run.resolve())
    saved = load_file(resnet_adapter / "adapter_model.safetensors")
    assert {key for key in saved if ".lora_" not in key} == {"base_model.model.head.weight",
                                                              "base_model.model.head.bias"}

    base = load_file(resnet_run / "model.safetensors")
    merged = load_file(resnet_adapter / "merged" / "model.safetensors")
    statistics = [key for key in base if "running_" in key or "num_batches_tracked" in key]
    assert statistics and all(torch.equal(merged[key], base[key]) for key in statistics)  # the body's norms fixed
    adapted_weights = {f"{name}.weight" for name in adapter["targets"]}
    untouched = [key for key in base if key.startswith("image_classifier.") and key not in adapted_weights]
    assert all(torch.equal(merged[key], base[key]) for key in untouched)
    assert not all(torch.equal(merged[key], base[key]) for key in adapted_weights)
    assert not (resnet_adapter / "model.safetensors").exists()  # beside the adapter it would be applied twice
    assert (resnet_adapter / "mlflow_model" / "artifacts" / "model" / "model.safetensors").is_file()  # the merged

    card = write_card(resnet_adapter).read_text()
    assert "A LoRA adapter (peft) on that model: rank 4, alpha 8.0" in card and "PeftModel.from_pretrained" in card


def test_the_adapter_reloads_through_peft_without_hfmodels_to_the_runs_outputs(resnet_run, resnet_adapter, tmp_path):
    training = json.loads((resnet_adapter / "eval_results.json").read_text())["metrics"]
    evaluated = evaluate_saved(resnet_adapter)["metrics"]  # the base, then the adapter, as hfmodels loads them
    assert evaluated["accuracy"] == training["accuracy"]
    assert evaluated["loss"] == pytest.approx(training["loss"], rel=1e-6)

    model = load_adapter_run(ImageClassifierForImageClassification, resnet_adapter).eval()
    merged = ImageClassifierForImageClassification.from_pretrained(resnet_adapter / "merged").eval()
    inputs = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(inputs).logits
        torch.testing.assert_close(merged(inputs).logits, expected, rtol=0, atol=1e-5)
        app_model = load(resnet_adapter, "image-classifier", trust_remote_code=False).model  # the app's loading
        torch.testing.assert_close(app_model(inputs).logits, expected, rtol=0, atol=0)
    torch.save({"inputs": inputs, "logits": expected}, tmp_path / "expected.pt")
    run_without_hfmodels(
        f"""
        import torch
        from peft import PeftModel
        from transformers import AutoConfig, AutoModelForImageClassification
        config = AutoConfig.from_pretrained({str(resnet_adapter)!r}, trust_remote_code=True)
        base = AutoModelForImageClassification.from_pretrained({str(resnet_run)!r}, config=config,
                                                               trust_remote_code=True, strict=False)
        model = PeftModel.from_pretrained(base, {str(resnet_adapter)!r}).eval()
        expected = torch.load("expected.pt")
        with torch.no_grad():
            torch.testing.assert_close(model(expected["inputs"]).logits, expected["logits"], rtol=0, atol=1e-6)
        """,
        cwd=tmp_path,
    )


def test_a_gpt_adapts_its_projections_and_a_text_classifier_trains_its_new_head(tmp_path):
    texts = {"model": "gpt", "dataset": "stdlib-functions"}  # a smaller corpus than the gpt's stdlib
    gpt = trained(tmp_path / "gpt", **texts, max_steps=3, model_config=TINY_GPT)
    adapted = trained(tmp_path / "gpt-lora", **texts, init_from=str(gpt), lora="r=2,alpha=4", max_steps=2)
    adapter = json.loads((adapted / "run_info.json").read_text())["adapter"]
    assert {name.rsplit(".", 1)[-1] for name in adapter["targets"]} == {"qkv_proj", "out_proj", "fc_in", "fc_out"}
    assert adapter["trained_in_full"] == []  # the head is tied to the embeddings: the body's
    model = load_adapter_run(GPTForCausalLM, adapted).eval()
    assert isinstance(model, GPTForCausalLM) and model.lm_head.weight is model.transformer.embed_tokens.weight
    input_ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.save({"input_ids": input_ids, "logits": model(input_ids).logits}, tmp_path / "expected.pt")
    run_without_hfmodels(
        f"""
        import torch
        from peft import PeftModel
        from transformers import AutoConfig, AutoModelForCausalLM
        config = AutoConfig.from_pretrained({str(adapted)!r}, trust_remote_code=True)
        base = AutoModelForCausalLM.from_pretrained({str(gpt)!r}, config=config, trust_remote_code=True)
        model = PeftModel.from_pretrained(base, {str(adapted)!r}).eval()
        expected = torch.load("expected.pt")
        with torch.no_grad():
            torch.testing.assert_close(model(expected["input_ids"]).logits, expected["logits"], rtol=1e-5, atol=1e-5)
        """,
        cwd=tmp_path,
    )
    result = run_cli("predict", str(adapted), "def main(", "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr[-2000:]

    classifier = trained(tmp_path / "classifier-lora", model="text-classifier", init_from=str(gpt),
                         lora="r=2,alpha=4", max_steps=2)
    adapter = json.loads((classifier / "run_info.json").read_text())["adapter"]
    assert adapter["trained_in_full"] == ["score"]
    started = json.loads((classifier / "run_info.json").read_text())["started_from"][0]
    assert started["relation"] == "adapter" and started["new_layers"] == ["score"]


def test_targets_that_cannot_work_are_clear_errors(resnet_run, tmp_path):
    for target, message in [("nothing-here", "matches no module of the model's body"),
                            (r"normalization$", r"matches only modules LoRA cannot adapt: \[.*BatchNorm2d")]:
        with pytest.raises(ValueError, match=message):
            trained(tmp_path / "run", init_from=str(resnet_run), lora=f"r=2,alpha=4,target={target}", max_steps=1)


def test_a_head_whose_name_ends_another_modules_is_refused():
    model = nn.Module()
    model.image_classifier, model.classifier = nn.Linear(2, 2), nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"'classifier'.*also the end of the name of \['image_classifier'\]"):
        check_unambiguous(model, ["classifier"])


def test_an_adapter_of_a_hub_model_is_pushed_as_an_adapter_and_evaluates_from_the_hub(
        loopback_hub, resnet_run, resnet_adapter, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    with pytest.raises(PushError, match="holds a LoRA adapter whose base model is the local folder"):
        push_run(resnet_adapter, f"{TEST_USER}/digits-adapter")
    push_run(resnet_run, f"{TEST_USER}/digits-resnet")
    adapted = trained(tmp_path / "adapter", init_from=f"{TEST_USER}/digits-resnet", lora="r=2,alpha=4", max_steps=2,
                      report_to="mlflow")  # no merged model: no MLflow model, and no failure
    assert not (adapted / "mlflow_model").exists()
    push_run(adapted, f"{TEST_USER}/digits-adapter")
    files = loopback_hub.files(f"{TEST_USER}/digits-adapter")
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "modeling_image_classifier.py",
            "preprocessor_config.json", "README.md"} <= set(files) and "model.safetensors" not in files
    card = files["README.md"].decode()
    assert f"base_model: {TEST_USER}/digits-resnet" in card and "base_model_relation: adapter" in card
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == f"{TEST_USER}/digits-resnet"
    training = json.loads((adapted / "eval_results.json").read_text())["metrics"]
    assert evaluate_saved(f"{TEST_USER}/digits-adapter")["metrics"]["accuracy"] == training["accuracy"]


@pytest.mark.parametrize("name", ["image-classifier", "segmentation", "autoencoder", "vae", "diffusion", "gpt",
                                  "text-classifier", "fusion"])
def test_every_family_takes_an_adapter_that_reloads_through_peft(name, tmp_path):
    """Each family's default targets exist, only the adapter and the modules around the body train, and the saved
    adapter (its weights moved off their initial values) reloads through peft onto the saved base to the same
    outputs."""
    from peft import PeftModel

    family = get_family(name)
    rows = load_source(family.default_dataset)["train"]
    rows = rows.select(range(min(len(rows), 64)))
    model, processor = family.build(rows, {})
    model.save_pretrained(tmp_path / "base")
    batch = next(iter(make_loader(rows, family, processor, False, 4)))
    adapted = add_lora(family, model.eval(), LoraSettings(2, 4.0), str(tmp_path / "base"), None)
    config = adapted.peft_config["default"]
    assert config.target_modules
    trainable = [key for key, p in adapted.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in key or ".modules_to_save." in key for key in trainable)
    torch.manual_seed(0)
    for key, parameter in adapted.named_parameters():
        if parameter.requires_grad:
            parameter.data.normal_(std=0.02)
    adapted.save_pretrained(tmp_path / "adapter")

    reloaded = PeftModel.from_pretrained(family.model_class.from_pretrained(tmp_path / "base"), tmp_path / "adapter")
    outputs = []
    for candidate in (adapted.eval(), reloaded.eval()):
        torch.manual_seed(0)  # diffusion draws its noise and time steps
        with torch.no_grad():
            outputs.append(tensors_of(candidate(**batch)))
    assert outputs[0] and sorted(outputs[0]) == sorted(outputs[1])
    for key, tensor in outputs[0].items():  # the same weights; two models' convolutions may round apart (~1e-7)
        torch.testing.assert_close(outputs[1][key], tensor, rtol=1e-5, atol=1e-6,
                                   msg=lambda message, key=key: f"{key}: {message}")
