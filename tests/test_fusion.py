import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, BertConfig, BertModel

from hfmodels import (
    FusionConfig,
    FusionForClassification,
    FusionProcessor,
    GPTConfig,
    GPTForCausalLM,
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
)
from hfmodels.data import DataOptions, load_source
from hfmodels.data.digits import load_digits_dataset
from hfmodels.data.digits_arithmetic import OFFSETS, load_digits_arithmetic_dataset
from hfmodels.families import get_family
from hfmodels.training.arguments import TrainingArguments
from hfmodels.training.loop import train

from .conftest import run_cli
from .model_tester import ModelTesterMixin, run_without_hfmodels

VISION = {"image_size": 8, "hidden_sizes": [4, 8], "depths": [1, 1], "num_labels": 10}
GPT_TEXT = {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "max_position_embeddings": 16}
BERT_TEXT = {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 32, "max_position_embeddings": 16}


def fusion_inputs(batch_size: int, seed: int, num_labels: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    attention_mask = torch.ones(batch_size, 6, dtype=torch.long)
    attention_mask[0, 4:] = 0  # the first text is padded
    return {
        "pixel_values": torch.randn(batch_size, 1, 8, 8, generator=generator),
        "input_ids": torch.randint(0, 40, (batch_size, 6), generator=generator),
        "attention_mask": attention_mask,
        "labels": torch.randint(0, num_labels, (batch_size,), generator=generator),
    }


class TestFusion(ModelTesterMixin):
    """An hfmodels CNN and an hfmodels GPT: both encoders are custom code, saved beside the fusion code."""

    all_model_classes = (FusionForClassification,)
    config_class = FusionConfig
    invalid_config_values = [
        ("projection_dim", 0),
        ("head_hidden_size", 2.5),
        ("dropout", 1.0),
        ("num_labels", 0),
        ("freeze_vision_encoder", "yes"),
        ("vision_config", None),
        ("text_config", {"model_type": "no-such-model"}),
    ]

    def text_config(self):
        return GPTConfig(**GPT_TEXT)

    def get_config(self, **overrides):
        values = {"vision_config": ImageClassifierConfig(**VISION), "text_config": self.text_config(), "num_labels": 3,
                  "projection_dim": 8, "head_hidden_size": 16}
        return FusionConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        return fusion_inputs(batch_size, seed)

    def test_saved_folder_holds_the_encoders_code(self, tmp_path):
        self.make_model().save_pretrained(tmp_path)
        config = json.loads((tmp_path / "config.json").read_text())
        for field in ("vision_config", "text_config"):
            auto_map = config[field].get("auto_map", {})
            for reference in auto_map.values():
                assert (tmp_path / f"{reference.split('.')[0]}.py").is_file(), reference

    def test_images_without_text_is_a_clear_error(self):
        inputs = self.get_inputs()
        with pytest.raises(ValueError, match=r"needs both images \(pixel_values\) and texts.*got pixel_values only"):
            self.make_model()(pixel_values=inputs["pixel_values"])
        with pytest.raises(ValueError, match="3 images but input_ids 2 texts"):
            self.make_model()(pixel_values=inputs["pixel_values"], input_ids=inputs["input_ids"][:2])

    def test_unknown_encoder_type_is_a_clear_error(self):
        with pytest.raises(ValueError,
                           match=r"text_config has model_type='no-such-model', which transformers does not know"):
            self.get_config(text_config={"model_type": "no-such-model", "hidden_size": 8})
        with pytest.raises(ValueError, match=r"vision_config=.*give the encoder's config"):
            self.get_config(vision_config={"hidden_size": 8})

    def test_label_outside_num_labels_is_a_clear_error(self):
        inputs = self.get_inputs()
        inputs["labels"][0] = 3
        with pytest.raises(ValueError, match=r"labels must be class ids in 0 .. 2"):
            self.make_model()(**inputs)


class TestFusionWithBert(TestFusion):
    """A built-in transformers text encoder: it resolves through AutoModel, no code of its own is saved."""

    def text_config(self):
        return BertConfig(**BERT_TEXT)


def save_encoders(folder: Path) -> dict[str, Path]:
    """A digits-sized image classifier, a GPT language model and a BertModel, randomly initialised (batch-norm
    statistics too, so that they matter) and saved."""
    torch.manual_seed(0)
    paths = {name: folder / name for name in ("vision", "gpt", "bert")}
    vision = ImageClassifierForImageClassification(ImageClassifierConfig(**VISION))
    for name, buffer in vision.named_buffers():
        if "running" in name:
            buffer.uniform_(0.5, 1.5)
    vision.save_pretrained(paths["vision"])
    GPTForCausalLM(GPTConfig(**GPT_TEXT)).save_pretrained(paths["gpt"])
    BertModel(BertConfig(**BERT_TEXT)).save_pretrained(paths["bert"])
    return paths


def encoder_outputs(
    model: FusionForClassification, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        image = model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output
        text = model.text_model(input_ids=inputs["input_ids"],
                                attention_mask=inputs["attention_mask"]).last_hidden_state
    return image, text


@pytest.mark.parametrize("text_name", ["gpt", "bert"])
def test_built_from_saved_encoders_loads_them_exactly_and_frozen_ones_stay_fixed(text_name, tmp_path):
    paths = save_encoders(tmp_path)
    inputs = fusion_inputs(4, seed=1)
    vision = ImageClassifierForImageClassification.from_pretrained(paths["vision"]).eval()
    if text_name == "gpt":
        text_encoder = GPTForCausalLM.from_pretrained(paths["gpt"]).transformer.eval()
    else:
        text_encoder = BertModel.from_pretrained(paths["bert"]).eval()
    with torch.no_grad():
        expected_image = vision.image_classifier(pixel_values=inputs["pixel_values"]).pooler_output
        expected_text = text_encoder(input_ids=inputs["input_ids"],
                                     attention_mask=inputs["attention_mask"]).last_hidden_state

    # freeze the image encoder with GPT, the text encoder with BERT: each case trains the other one
    freeze_vision = text_name == "gpt"
    model = FusionForClassification.from_encoders_pretrained(
        paths["vision"], paths[text_name], freeze_vision_encoder=freeze_vision, freeze_text_encoder=not freeze_vision,
        num_labels=3, projection_dim=8, head_hidden_size=16,
    )
    image, text = encoder_outputs(model, inputs)
    torch.testing.assert_close(image, expected_image, rtol=0, atol=0)
    torch.testing.assert_close(text, expected_text, rtol=0, atol=0)

    frozen, trained = ((model.vision_model, model.text_model) if freeze_vision
                       else (model.text_model, model.vision_model))
    before = {name: {k: v.clone() for k, v in m.state_dict().items()}
              for name, m in (("frozen", frozen), ("trained", trained))}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not frozen.training and trained.training
    for step in range(3):
        loss = model(**fusion_inputs(4, seed=10 + step)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for key, value in frozen.state_dict().items():  # weights and batch-norm statistics alike
        assert torch.equal(value, before["frozen"][key]), key
    assert any(not torch.equal(v, before["trained"][k]) for k, v in trained.state_dict().items())

    model.save_pretrained(tmp_path / "fusion")
    reloaded = FusionForClassification.from_pretrained(tmp_path / "fusion")
    assert reloaded.config.freeze_vision_encoder == freeze_vision
    for got, want in zip(encoder_outputs(reloaded, inputs), encoder_outputs(model, inputs)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_processor_saves_loads_as_one_and_refuses_images_without_texts(tmp_path):
    family = get_family("fusion")
    data = load_digits_arithmetic_dataset()
    model, processor = family.build(data["train"].select(range(64)), {"text_config": {"hidden_size": 16}})
    processor.save_pretrained(tmp_path)
    for reloaded in (FusionProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert isinstance(reloaded, FusionProcessor)
        rows = data["test"][:4]
        got = reloaded(images=rows["image"], text=rows["text"], padding=True, return_tensors="pt")
        want = processor(images=rows["image"], text=rows["text"], padding=True, return_tensors="pt")
        assert set(got) == {"pixel_values", "input_ids", "attention_mask"}
        for key in got:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs both images and texts.*got images only"):
        processor(images=data["test"][:2]["image"], return_tensors="pt")
    with pytest.raises(ValueError, match="2 images but 1 texts"):
        processor(images=data["test"][:2]["image"], text=["the digit plus one"], return_tensors="pt")


def test_digits_arithmetic_needs_both_modalities():
    data = load_digits_arithmetic_dataset()
    digits = load_digits_dataset()
    assert {split: len(rows) for split, rows in data.items()} == {"train": 3 * 1212, "validation": 135, "test": 450}
    # the same images as the digits split: test exactly, train + validation the digits training images
    assert data["test"]["digit"] == digits["test"]["label"]
    seen = list(data["validation"]["image"]) + list(data["train"].select(range(1212))["image"])
    assert (sorted(np.asarray(image).tobytes() for image in seen)
            == sorted(np.asarray(image).tobytes() for image in digits["train"]["image"]))
    for split in data.values():
        assert set(split["offset"]) == set(OFFSETS)
        assert all((d + o) % 10 == y for d, o, y in zip(split["digit"], split["offset"], split["label"]))
    assert load_digits_arithmetic_dataset()["train"]["text"] == data["train"]["text"]  # seeded


def test_csv_with_image_and_text_columns_trains_the_fusion_model(tmp_path):
    """`load_tables` resolves an image column of paths and keeps a text column; the fusion family reads both."""
    data = load_digits_arithmetic_dataset()
    (tmp_path / "images").mkdir()
    lines = ["picture,instruction,answer"]
    for split, count in (("train", 40), ("validation", 12), ("test", 12)):
        rows = data[split].select(range(count))
        for index, row in enumerate(rows):
            row["image"].save(tmp_path / "images" / f"{split}{index}.png")
            lines.append(f"images/{split}{index}.png,{row['text']},{row['label']}")
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
        lines = ["picture,instruction,answer"]
    options = DataOptions(image_column="picture", text_column="instruction", label_column="answer")
    loaded = load_source(str(tmp_path), options)
    assert isinstance(loaded["train"][0]["image"], Image.Image)
    assert loaded["train"][0]["text"] == data["train"][0]["text"]
    result = train(TrainingArguments(
        model="fusion", dataset=str(tmp_path), image_column="picture", text_column="instruction",
        label_column="answer", output_dir=str(tmp_path / "run"), max_steps=2, batch_size=16, report_to="none",
        model_config=['text_config={"hidden_size": 16, "num_hidden_layers": 1}'],
    ))
    assert result["metrics"]["num_samples"] == 12
    assert FusionForClassification.from_pretrained(tmp_path / "run").config.text_config.hidden_size == 16


@pytest.fixture(scope="module")
def trained_fusion(tmp_path_factory) -> Path:
    """`hfmodels train --model fusion`: the default run on the embedded digits-arithmetic data."""
    output_dir = tmp_path_factory.mktemp("runs") / "fusion-digits-arithmetic"
    result = run_cli("train", "--model", "fusion", "--output-dir", str(output_dir), "--report-to", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def test_fusion_far_beats_each_single_modality(trained_fusion, tmp_path):
    """The image classifier on the images alone and the text classifier on the texts alone, trained by the same loop
    on the same data, stay near chance (about 1/6 and 1/10); the fusion model reads both and solves the task."""
    fusion = json.loads((trained_fusion / "eval_results.json").read_text())["metrics"]["accuracy"]
    single = {}
    for family in ("image-classifier", "text-classifier"):
        result = train(TrainingArguments(
            model=family, dataset="digits-arithmetic", epochs=3, output_dir=str(tmp_path / family), report_to="none",
        ))
        single[family] = result["metrics"]["accuracy"]
    print(f"test accuracy: fusion {fusion:.4f}, image only {single['image-classifier']:.4f}, "
          f"text only {single['text-classifier']:.4f}")
    assert fusion >= 0.9
    assert all(accuracy <= 0.3 for accuracy in single.values()), single


def test_trained_fusion_run_loads_without_hfmodels_and_its_card_checks(trained_fusion, tmp_path):
    results = json.loads((trained_fusion / "eval_results.json").read_text())
    assert results["dataset"]["sizes"] == {"train": 3636, "validation": 135, "test": 450}
    assert set(results["baselines"]) and all(b["accuracy"] < 0.3 for b in results["baselines"].values())
    rows = load_digits_arithmetic_dataset()["test"][:16]
    for index, image in enumerate(rows["image"]):
        image.save(tmp_path / f"{index}.png")
    (tmp_path / "texts.json").write_text(json.dumps(rows["text"]))
    run_without_hfmodels(
        f"""
        import json, torch, transformers
        from PIL import Image
        path = {str(trained_fusion)!r}
        model = transformers.AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
        processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=True)
        images = [Image.open(f"{{i}}.png") for i in range(16)]
        inputs = processor(images=images, text=json.load(open("texts.json")), padding=True, return_tensors="pt")
        with torch.no_grad():
            torch.save(model(**inputs).logits, "logits.pt")
        """,
        cwd=tmp_path,
    )
    model = FusionForClassification.from_pretrained(trained_fusion).eval()
    processor = FusionProcessor.from_pretrained(trained_fusion)
    with torch.no_grad():
        logits = model(**processor(images=rows["image"], text=rows["text"], padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), logits, rtol=0, atol=0)
    assert (logits.argmax(-1) == torch.tensor(rows["label"])).float().mean() >= 0.8
    card = run_cli("card", str(trained_fusion))
    assert card.returncode == 0, card.stderr[-2000:]
    check = run_cli("card", "--check", str(trained_fusion))
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
