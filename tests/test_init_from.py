"""`--init-from`: a run that starts from a saved model (a run folder or a Hub repo at a revision), in its own family
with every weight or a new head, across families where the body fits, and from a transformers GPT-2; its lineage in
run_info.json and the card; clear errors where the parts do not fit."""

import json
import logging

import pytest
import torch
from huggingface_hub import HfApi

from hfmodels.data import load_source
from hfmodels.data.digits import load_digits_dataset
from hfmodels.families import get_family
from hfmodels.hub.card import check_card, write_card
from hfmodels.pretrained import ModelReference, start_from
from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER
from hfmodels.training import TrainingArguments, train

from .model_tester import run_without_hfmodels

TINY = ["hidden_sizes=[8,8]", "depths=[1,1]"]
TINY_GPT = ["hidden_size=32", "num_hidden_layers=1", "num_attention_heads=2", "vocab_size=300"]


def digits_folder(root, digits: range):
    """Some digits as an image folder <root>/<split>/<digit>/<n>.png."""
    data = load_digits_dataset()
    for split, rows in data.items():
        for index, row in enumerate(rows):
            if row["label"] in digits:
                folder = root / split / str(row["label"])
                folder.mkdir(parents=True, exist_ok=True)
                row["image"].save(folder / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    return digits_folder(root / "low", range(5)), digits_folder(root / "high", range(5, 10))


@pytest.fixture(scope="module")
def low_digits_run(digit_folders, tmp_path_factory):
    """An image classifier trained on digits 0-4."""
    output = tmp_path_factory.mktemp("runs") / "low-digits"
    train(TrainingArguments(dataset=str(digit_folders[0]), output_dir=str(output), max_steps=20, batch_size=32,
                            model_config=TINY, report_to="none"))
    write_card(output, license="mit")
    return output


def train_split(source):
    return load_source(str(source))["train"]


def saved_weights(run):
    from safetensors.torch import load_file

    return load_file(run / "model.safetensors")


def test_a_run_of_the_same_labels_starts_from_every_weight_and_says_so(low_digits_run, digit_folders, tmp_path):
    family = get_family("image-classifier")
    model, processor, lineage = start_from(family, ModelReference.parse("--init-from", str(low_digits_run)),
                                           train_split(digit_folders[0]), {})
    saved = saved_weights(low_digits_run)
    assert set(saved) == set(model.state_dict())
    assert all(torch.equal(model.state_dict()[key], tensor) for key, tensor in saved.items())
    assert processor.to_dict() == type(processor).from_pretrained(low_digits_run).to_dict()
    assert lineage["new_layers"] == [] and lineage["base_model"] == "low-digits" and not lineage["on_hub"]
    assert lineage["license"] == "mit"  # the local run's own card

    output = tmp_path / "again"
    train(TrainingArguments(dataset=str(digit_folders[0]), output_dir=str(output), max_steps=2, batch_size=32,
                            init_from=str(low_digits_run), report_to="none"))
    assert json.loads((output / "run_info.json").read_text())["started_from"] == [lineage]
    card = write_card(output).read_text()
    assert "Started from the local folder `low-digits`" in card and "No layer is new." in card
    assert "base_model" not in card.split("---")[1]  # a local folder is no Hub id for the model tree
    assert check_card(output) == []


def test_other_labels_get_a_new_head_on_the_saved_body(low_digits_run, digit_folders, caplog):
    family = get_family("image-classifier")
    with caplog.at_level(logging.INFO):
        model, _, lineage = start_from(family, ModelReference.parse("--init-from", str(low_digits_run)),
                                       train_split(digit_folders[1]), {"dropout": 0.2})
    assert model.config.id2label == {i: str(i + 5) for i in range(5)} and model.config.dropout == 0.2
    saved = saved_weights(low_digits_run)
    body = [key for key in saved if key.startswith("image_classifier.")]
    assert body and all(torch.equal(model.state_dict()[key], saved[key]) for key in body)
    assert lineage["new_layers"] == ["head"]
    assert not torch.equal(model.head.weight, saved["head.weight"])
    assert "new (initialised anew): head" in caplog.text


def test_a_hub_repo_at_a_revision_is_the_base_model_of_the_card(loopback_hub, low_digits_run, digit_folders,
                                                                  tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    repo = f"{TEST_USER}/low-digits"
    api = HfApi(endpoint=loopback_hub.endpoint, token=TEST_TOKEN)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(low_digits_run))
    api.create_tag(repo, tag="v1")
    api.delete_file("model.safetensors", repo)  # main moves on and breaks: the tag must be what is read

    output = tmp_path / "high-digits"
    train(TrainingArguments(dataset=str(digit_folders[1]), output_dir=str(output), max_steps=2, batch_size=32,
                            init_from=f"{repo}@v1", report_to="none"))
    (started,) = json.loads((output / "run_info.json").read_text())["started_from"]
    assert started["base_model"] == repo and started["revision"] == "v1" and started["on_hub"]
    assert started["new_layers"] == ["head"] and started["license"] == "mit"
    card = write_card(output).read_text()
    metadata = card.split("---")[1]
    assert f"base_model: {repo}" in metadata and "base_model_relation: finetune" in metadata
    assert f"Started from [`{repo}`](https://huggingface.co/{repo}) at revision `v1`" in card
    assert "New layers, initialised anew: `head`." in card and "license `mit`" in card
    assert check_card(output) == []


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("runs") / "gpt"
    train(TrainingArguments(model="gpt", output_dir=str(output), max_steps=3, batch_size=8, report_to="none",
                            model_config=TINY_GPT))
    return output


def test_a_text_classifier_starts_from_a_gpt_runs_body_and_tokenizer(gpt_run, tmp_path):
    family = get_family("text-classifier")
    data = train_split("stdlib-functions")
    model, tokenizer, lineage = start_from(family, ModelReference.parse("--init-from", str(gpt_run)), data, {})
    saved = saved_weights(gpt_run)
    body = [key for key in model.state_dict() if key.startswith("transformer.")]
    assert body and all(torch.equal(model.state_dict()[key], saved[key]) for key in body)
    assert lineage["new_layers"] == ["score"] and lineage["source_class"] == "GPTForCausalLM"
    assert tokenizer.get_vocab() == type(tokenizer).from_pretrained(gpt_run).get_vocab()
    assert tokenizer.padding_side == "right"  # the classifier's, not the language model's left padding
    assert model.config.num_labels == len(data.features["label"].names)

    output = tmp_path / "classifier"
    train(TrainingArguments(model="text-classifier", output_dir=str(output), max_steps=2, batch_size=8,
                            init_from=str(gpt_run), report_to="none"))
    assert json.loads((output / "run_info.json").read_text())["started_from"][0]["new_layers"] == ["score"]


def test_a_gpt_starts_from_a_transformers_gpt2(gpt_run, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(gpt_run)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    gpt2.save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    ids = torch.tensor([tokenizer("def main():\n    return 1")["input_ids"]])

    model, loaded_tokenizer, lineage = start_from(
        get_family("gpt"), ModelReference.parse("--init-from", str(tmp_path / "gpt2")),
        train_split("stdlib"), {},
    )
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(ids).logits, gpt2.eval()(ids).logits, rtol=1e-4, atol=1e-4)
    assert lineage["source_class"] == "GPT2LMHeadModel" and lineage["new_layers"] == []
    assert model.generation_config.max_length == 64 and loaded_tokenizer.model_max_length == 64

    classifier, _, lineage = start_from(
        get_family("text-classifier"), ModelReference.parse("--init-from", str(tmp_path / "gpt2")),
        train_split("stdlib-functions"), {},
    )
    assert lineage["new_layers"] == ["score"]
    torch.testing.assert_close(classifier.transformer.embed_tokens.weight, gpt2.transformer.wte.weight)


def test_parts_that_do_not_fit_are_clear_errors(low_digits_run, gpt_run, digit_folders, tmp_path):
    from transformers import BertConfig

    digits = train_split(digit_folders[0])
    reference = ModelReference.parse("--init-from", str(low_digits_run))
    with pytest.raises(ValueError, match=r"--init-from .*low-digits: a image-classifier model cannot start a "
                                         r"segmentation model: their parts do not fit"):
        start_from(get_family("segmentation"), reference, digits, {})
    with pytest.raises(ValueError, match=r"cannot start a image-classifier model.*It starts a gpt, text-classifier"):
        start_from(get_family("image-classifier"), ModelReference.parse("--init-from", str(gpt_run)), digits, {})
    with pytest.raises(ValueError, match=r"weights of the model's body do not fit.*image_classifier\.stages"):
        start_from(get_family("image-classifier"), reference, digits, {"hidden_sizes": [8, 16]})
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(
        tmp_path / "bert")
    with pytest.raises(ValueError, match=r"--init-from .*bert: not a model of an hfmodels family"):
        start_from(get_family("image-classifier"), ModelReference.parse("--init-from", str(tmp_path / "bert")),
                   digits, {})
    with pytest.raises(ValueError, match=r"--init-from runs/none: not a model folder, nor a Hub model repo"):
        start_from(get_family("image-classifier"), ModelReference.parse("--init-from", "runs/none"), digits, {})
    with pytest.raises(ValueError, match=r"--init-from user/repo@: expected a folder, or a Hub repo id"):
        ModelReference.parse("--init-from", "user/repo@")
    with pytest.raises(ValueError, match=r"--tokenizer with --init-from: the model keeps the processor"):
        TrainingArguments(model="gpt", init_from=str(gpt_run), tokenizer=str(gpt_run))


def test_a_model_saved_where_hfmodels_is_absent_starts_a_run(low_digits_run, digit_folders, tmp_path):
    """Loaded with trust_remote_code and saved again by a process without hfmodels (its classes are then the code
    copied beside the weights), the folder still starts a run with every weight."""
    run_without_hfmodels(
        f"""
        import transformers
        model = transformers.AutoModelForImageClassification.from_pretrained({str(low_digits_run)!r},
                                                                             trust_remote_code=True)
        assert not type(model).__module__.startswith("hfmodels")
        model.save_pretrained("resaved")
        transformers.AutoImageProcessor.from_pretrained({str(low_digits_run)!r},
                                                        trust_remote_code=True).save_pretrained("resaved")
        """,
        cwd=tmp_path,
    )
    model, _, lineage = start_from(get_family("image-classifier"),
                                   ModelReference.parse("--init-from", str(tmp_path / "resaved")),
                                   train_split(digit_folders[0]), {})
    saved = saved_weights(low_digits_run)
    assert all(torch.equal(model.state_dict()[key], tensor) for key, tensor in saved.items())
    assert lineage["new_layers"] == []


def test_a_fusion_model_starts_from_an_image_classifier_run_and_a_gpt_run(low_digits_run, gpt_run, tmp_path):
    output = tmp_path / "fusion"
    train(TrainingArguments(model="fusion", output_dir=str(output), max_steps=1, batch_size=16, report_to="none",
                            learning_rate=1e-12, backbone=str(low_digits_run), text_backbone=str(gpt_run)))
    from hfmodels import FusionForClassification

    model = FusionForClassification.from_pretrained(output)
    for encoder, run, prefix in ((model.vision_model, low_digits_run, "image_classifier."),
                                 (model.text_model, gpt_run, "transformer.")):
        saved = {key.removeprefix(prefix): value for key, value in saved_weights(run).items()
                 if key.startswith(prefix)}
        trained = encoder.state_dict()
        assert set(saved) == set(trained)
        # one step at a learning rate of 1e-12: the weights are the saved ones (batch-norm statistics move)
        assert all(torch.allclose(trained[key].float(), value.float(), atol=1e-6) for key, value in saved.items()
                   if "running" not in key and "num_batches" not in key)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(output)
    assert processor.tokenizer.get_vocab() == AutoProcessor.from_pretrained(gpt_run).get_vocab()
    started = json.loads((output / "run_info.json").read_text())["started_from"]
    assert [(s["flag"], s["base_model"], s["new_layers"]) for s in started] == [
        ("--backbone", "low-digits", None), ("--text-backbone", "gpt", None)]
    card = write_card(output).read_text()
    assert "Started from the local folder `low-digits` (`--backbone`" in card
    assert "its weights became the model's text encoder" in card
    with pytest.raises(ValueError, match=r"--backbone .*gpt: a gpt model is no encoder here: give a "
                                         r"image-classifier run"):
        train(TrainingArguments(model="fusion", output_dir=str(tmp_path / "bad"), max_steps=1, report_to="none",
                                backbone=str(gpt_run)))


@pytest.mark.parametrize("name", ["image-classifier", "segmentation", "autoencoder", "vae", "diffusion", "gpt",
                                  "text-classifier", "fusion"])
def test_every_family_starts_from_a_saved_model_of_its_own_with_every_weight(name, tmp_path):
    family = get_family(name)
    rows = train_split(family.default_dataset)
    rows = rows.select(range(min(len(rows), 200)))
    model, processor = family.build(rows, {})
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    started, _, lineage = start_from(family, ModelReference.parse("--init-from", str(tmp_path)), rows, {})
    assert type(started) is type(model) and lineage["new_layers"] == []
    saved = model.state_dict()
    assert set(started.state_dict()) == set(saved)
    assert all(torch.equal(tensor, saved[key]) for key, tensor in started.state_dict().items())


def test_a_fusion_models_text_encoder_starts_from_a_transformers_bert(tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"0123456789", "plus", "minus", "is", "+", "-", "="]
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(vocabulary), hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=16))
    bert.save_pretrained(tmp_path / "bert")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "bert")
    output = tmp_path / "fusion"
    train(TrainingArguments(model="fusion", output_dir=str(output), max_steps=1, batch_size=16, report_to="none",
                            learning_rate=1e-12, text_backbone=str(tmp_path / "bert")))
    from hfmodels import FusionForClassification

    model = FusionForClassification.from_pretrained(output)
    assert type(model.text_model).__name__ == "BertModel"
    torch.testing.assert_close(model.text_model.embeddings.word_embeddings.weight,
                               bert.embeddings.word_embeddings.weight)
    assert (output / "vocab.txt").is_file() or (output / "tokenizer.json").is_file()


def test_a_fusion_models_image_encoder_starts_from_a_transformers_resnet(tmp_path):
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    resnet = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))
    resnet.save_pretrained(tmp_path / "resnet")
    (tmp_path / "resnet" / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "ConvNextImageProcessor", "image_mean": [0.4, 0.45, 0.5], "image_std": [0.2] * 3}))
    output = tmp_path / "fusion"
    train(TrainingArguments(model="fusion", output_dir=str(output), max_steps=1, batch_size=16, report_to="none",
                            learning_rate=1e-12, backbone=str(tmp_path / "resnet")))
    from hfmodels import FusionForClassification, FusionProcessor

    model = FusionForClassification.from_pretrained(output)
    assert type(model.vision_model).__name__ == "ResNetModel"
    torch.testing.assert_close(model.vision_model.embedder.embedder.convolution.weight,
                               resnet.embedder.embedder.convolution.weight)
    image_processor = FusionProcessor.from_pretrained(output).image_processor
    assert image_processor.num_channels == 3 and list(image_processor.image_mean) == [0.4, 0.45, 0.5]
