"""`--backbone`: tiny transformers vision backbones (ResNet, ConvNeXt, DINOv2), saved to a folder and pushed to the
loopback Hub, as the image classifier's and the segmentation model's encoder: the pretrained weights really loaded,
their preprocessing taken, the saved run loading offline without hfmodels, and the model classes on a backbone
passing the checks every model passes."""

import json

import pytest
import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file
from transformers import (
    AutoBackbone,
    BertConfig,
    ConvNextConfig,
    Dinov2Config,
    ResNetConfig,
    ResNetForImageClassification,
)

from hfmodels import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierModel,
    UNetConfig,
    UNetForSemanticSegmentation,
    UNetModel,
)
from hfmodels.data import load_source
from hfmodels.families import get_family
from hfmodels.hub.card import write_card
from hfmodels.models.backbone import backbone_config_dict
from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER
from hfmodels.training import TrainingArguments, train

from .model_tester import ModelTesterMixin, run_without_hfmodels

TINY_BACKBONES = {
    "resnet": ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]),
    "convnext": ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1]),
    "dinov2": Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                           patch_size=4, image_size=16),
}
PREPROCESSOR = {"image_processor_type": "ConvNextImageProcessor", "image_mean": [0.4, 0.45, 0.5],
                "image_std": [0.2, 0.25, 0.3], "size": {"shortest_edge": 16}, "crop_size": {"height": 16, "width": 16}}


def save_backbone(folder, kind: str, preprocessor: bool = False):
    """A tiny pretrained backbone as a model folder (the ResNet as a classifier, whose body is the backbone)."""
    torch.manual_seed(1)
    config = TINY_BACKBONES[kind]
    model = ResNetForImageClassification(config) if kind == "resnet" else AutoBackbone.from_config(config)
    model.save_pretrained(folder)
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    return folder


def backbone_weights(folder):
    """The backbone's own tensors as `AutoBackbone` names them."""
    config = TINY_BACKBONES[json.loads((folder / "config.json").read_text())["model_type"]]
    backbone = AutoBackbone.from_config(config)
    weights = load_file(folder / "model.safetensors")
    prefix = "resnet." if "resnet.embedder.embedder.convolution.weight" in weights else ""
    return {key: weights[prefix + key] for key in backbone.state_dict() if prefix + key in weights}


@pytest.mark.parametrize("kind", sorted(TINY_BACKBONES))
def test_the_pretrained_weights_are_loaded_into_the_classifier(kind, tmp_path):
    folder = save_backbone(tmp_path / kind, kind)
    model, processor = get_family("image-classifier").build(load_source("digits")["train"], {}, backbone=str(folder))
    saved = backbone_weights(folder)
    loaded = model.image_classifier.backbone.state_dict()
    assert saved and all(torch.equal(loaded[key], tensor) for key, tensor in saved.items())
    assert model.config.num_channels == 3 and processor.num_channels == 3  # grayscale digits are converted
    logits = model.eval()(processor([load_source("digits")["test"][0]["image"]], return_tensors="pt")["pixel_values"])
    assert logits.logits.shape == (1, 10)


def test_a_hub_backbone_trains_with_its_preprocessing_and_the_run_loads_offline_without_hfmodels(
        loopback_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    repo = f"{TEST_USER}/tiny-resnet"
    api = HfApi(endpoint=loopback_hub.endpoint, token=TEST_TOKEN)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(save_backbone(tmp_path / "resnet", "resnet", preprocessor=True)))
    output = tmp_path / "run"
    train(TrainingArguments(backbone=repo, max_steps=2, batch_size=16, output_dir=str(output), report_to="none"))
    preprocessor = json.loads((output / "preprocessor_config.json").read_text())
    assert preprocessor["image_mean"] == PREPROCESSOR["image_mean"] and preprocessor["image_std"] == [0.2, 0.25, 0.3]
    config = json.loads((output / "config.json").read_text())
    assert config["image_size"] == 16 and config["backbone_config"]["model_type"] == "resnet"
    (started,) = json.loads((output / "run_info.json").read_text())["started_from"]
    assert started["base_model"] == repo and started["flag"] == "--backbone" and started["new_layers"] is None
    card = write_card(output).read_text()
    assert f"base_model: {repo}" in card and "resnet (feature maps stage2)" in card and "hidden_sizes" not in card

    model = ImageClassifierForImageClassification.from_pretrained(output).eval()
    inputs = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.save({"inputs": inputs, "logits": model(inputs).logits}, tmp_path / "expected.pt")
    run_without_hfmodels(
        f"""
        import torch, transformers
        model = transformers.AutoModelForImageClassification.from_pretrained({str(output)!r},
                                                                             trust_remote_code=True).eval()
        expected = torch.load("expected.pt")
        with torch.no_grad():
            assert torch.equal(model(expected["inputs"]).logits, expected["logits"])
        """,
        cwd=tmp_path, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )


def test_segmentation_on_a_backbone_trains_its_pyramid_and_reloads(tmp_path):
    folder = save_backbone(tmp_path / "convnext", "convnext")
    output = tmp_path / "run"
    train(TrainingArguments(model="segmentation", backbone=str(folder), freeze_backbone=True, max_steps=2,
                            batch_size=8, output_dir=str(output), report_to="none", image_size=32))
    trained = load_file(output / "model.safetensors")
    saved = backbone_weights(folder)
    assert all(torch.equal(trained[f"unet.backbone.{key}"], tensor) for key, tensor in saved.items())
    assert any(key.startswith("unet.pyramid.") for key in trained)
    assert json.loads((output / "run_info.json").read_text())["fine_tuning"]["backbone"] == ["unet.backbone"]
    model = UNetForSemanticSegmentation.from_pretrained(output).eval()
    assert model(torch.rand(1, 3, 32, 32)).logits.shape == (1, model.config.num_labels, 32, 32)


def test_backbones_that_cannot_work_are_clear_errors(tmp_path):
    digits = load_source("digits")["train"]
    family = get_family("image-classifier")
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(
        tmp_path / "bert")
    with pytest.raises(ValueError, match=r"--backbone .*bert: not a vision backbone: a bert model \(a text encoder "
                                         r"is for the text side of fusion: --text-backbone\)"):
        family.build(digits, {}, backbone=str(tmp_path / "bert"))
    dinov2 = save_backbone(tmp_path / "dinov2", "dinov2")
    with pytest.raises(ValueError, match=r"--backbone .*dinov2: the backbone cannot read 2x2 images; set "
                                         r"--image-size"):
        family.build(digits, {"image_size": 2}, backbone=str(dinov2))
    with pytest.raises(ValueError, match=r"--backbone runs/none: not a model folder, nor a Hub model repo"):
        family.build(digits, {}, backbone="runs/none")
    with pytest.raises(ValueError, match=r"--backbone .*dinov2: the gpt model takes no pretrained backbone"):
        get_family("gpt").build(load_source("stdlib")["train"], {}, backbone=str(dinov2))
    with pytest.raises(ValueError, match=r"--text-backbone x: the image-classifier model has no text encoder"):
        family.build(digits, {}, text_backbone="x")


def tiny_resnet_config(out_features: list[str]) -> dict:
    return backbone_config_dict(ResNetConfig(embedding_size=4, hidden_sizes=[4, 8], depths=[1, 1],
                                             out_features=out_features))


def backbone_inputs(batch_size: int, seed: int, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.randn(batch_size, 3, 16, 16, generator=generator), "labels": labels}


class TestImageClassifierOnABackbone(ModelTesterMixin):
    all_model_classes = (ImageClassifierModel, ImageClassifierForImageClassification)
    config_class = ImageClassifierConfig
    invalid_config_values = [("backbone_config", {"hidden_sizes": [4]}), ("num_channels", 1)]

    def get_config(self, **overrides):
        values = {"num_channels": 3, "image_size": 16, "num_labels": 3,
                  "backbone_config": tiny_resnet_config(["stage2"])}
        return ImageClassifierConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        labels = torch.randint(0, 3, (batch_size,), generator=torch.Generator().manual_seed(seed + 1))
        return backbone_inputs(batch_size, seed, labels)


class TestUNetOnABackbone(ModelTesterMixin):
    all_model_classes = (UNetModel, UNetForSemanticSegmentation)
    config_class = UNetConfig
    invalid_config_values = [("backbone_config", {"hidden_sizes": [4]}), ("num_channels", 1)]

    def get_config(self, **overrides):
        values = {"num_channels": 3, "image_size": 16, "num_labels": 3, "base_channels": 4,
                  "backbone_config": tiny_resnet_config(["stage1", "stage2"])}
        return UNetConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        labels = torch.randint(0, 3, (batch_size, 16, 16), generator=torch.Generator().manual_seed(seed + 1))
        return backbone_inputs(batch_size, seed, labels)
