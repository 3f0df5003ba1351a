"""`--backbone` for the text classifier: a tiny transformers BERT (a WordPiece vocabulary of standard-library words
made here), saved to a folder and pushed to the loopback Hub, as the text classifier's body: its weights really
loaded, its own tokenizer kept, the saved run loading offline without hfmodels, and the class on a text encoder
passing the checks every model passes."""

import json
import re
from collections import Counter

import pytest
import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizerFast, ResNetConfig

from hfmodels import GPTConfig, GPTForCausalLM, GPTForSequenceClassification
from hfmodels.data import load_source
from hfmodels.families import get_family
from hfmodels.hub.card import write_card
from hfmodels.models.backbone import backbone_config_dict
from hfmodels.pretrained import ModelReference, start_from
from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER
from hfmodels.training import TrainingArguments, train

from .model_tester import ModelTesterMixin, run_without_hfmodels

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_BERT = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
             "max_position_embeddings": 64}


def save_bert(folder, words: int = 300):
    """A tiny BERT and its tokenizer (the most frequent words and symbols of stdlib-functions' training texts)."""
    counts = Counter(token for text in load_source("stdlib-functions")["train"]["text"]
                     for token in re.findall(r"[a-z_]+|[^\sa-z_]", text.lower()))
    vocabulary = SPECIAL + [token for token, _ in counts.most_common(words)]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    torch.manual_seed(1)
    BertModel(BertConfig(vocab_size=len(vocabulary), **TINY_BERT)).save_pretrained(folder)
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def test_a_hub_bert_is_the_text_classifiers_body_with_its_tokenizer_and_the_run_loads_offline_without_hfmodels(
        loopback_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    bert = save_bert(tmp_path / "bert")
    repo = f"{TEST_USER}/tiny-bert"
    api = HfApi(endpoint=loopback_hub.endpoint, token=TEST_TOKEN)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(bert))
    output = tmp_path / "run"
    train(TrainingArguments(model="text-classifier", backbone=repo, freeze_backbone=True, max_steps=2, batch_size=8,
                            output_dir=str(output), report_to="none"))

    trained, saved = load_file(output / "model.safetensors"), load_file(bert / "model.safetensors")
    assert saved and all(torch.equal(trained[f"transformer.{key}"], tensor) for key, tensor in saved.items())
    text = "def run(self):\n    return self.loop.run_until_complete(main())"
    assert AutoTokenizer.from_pretrained(output)(text)["input_ids"] == \
        BertTokenizerFast.from_pretrained(bert)(text)["input_ids"]
    config = json.loads((output / "config.json").read_text())
    assert config["backbone_config"]["model_type"] == "bert" and config["vocab_size"] == saved[
        "embeddings.word_embeddings.weight"].shape[0] and config["max_position_embeddings"] == 64
    (started,) = json.loads((output / "run_info.json").read_text())["started_from"]
    assert started["base_model"] == repo and started["flag"] == "--backbone"
    card = write_card(output).read_text()
    assert f"base_model: {repo}" in card and "bert (hidden_size=16, num_hidden_layers=1)" in card
    assert "| `num_attention_heads` |" not in card  # the GPT's sizes are unused

    family = get_family("text-classifier")
    restarted, _, _ = start_from(family, ModelReference.parse("--init-from", str(output)),
                                 load_source("stdlib-functions")["train"], {})
    model = GPTForSequenceClassification.from_pretrained(output).eval()
    assert all(torch.equal(restarted.state_dict()[key], value) for key, value in model.state_dict().items())

    texts = list(load_source("stdlib-functions")["test"].select(range(6))["text"])
    tokenizer = AutoTokenizer.from_pretrained(output)
    with torch.no_grad():
        logits = model(**tokenizer(texts, truncation=True, padding=True, return_tensors="pt")).logits
    torch.save(logits, tmp_path / "expected.pt")
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    run_without_hfmodels(
        f"""
        import json, torch, transformers
        model = transformers.AutoModelForSequenceClassification.from_pretrained({str(output)!r},
                                                                                trust_remote_code=True).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained({str(output)!r})
        with torch.no_grad():
            logits = model(**tokenizer(json.load(open("texts.json")), truncation=True, padding=True,
                                       return_tensors="pt")).logits
        assert torch.equal(logits, torch.load("expected.pt"))
        classify = transformers.pipeline("text-classification", model={str(output)!r}, trust_remote_code=True)
        labels = [result["label"] for result in classify(json.load(open("texts.json")), truncation=True)]
        assert labels == [model.config.id2label[i] for i in logits.argmax(-1).tolist()], labels
        """,
        cwd=tmp_path, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )


def test_text_encoders_that_cannot_work_are_clear_errors(tmp_path):
    family, texts = get_family("text-classifier"), load_source("stdlib-functions")["train"]
    ResNetConfig().save_pretrained(tmp_path / "resnet")
    with pytest.raises(ValueError, match=r"--backbone .*resnet: not a text encoder: a resnet model has no vocabulary"):
        family.build(texts, {}, backbone=str(tmp_path / "resnet"))
    GPTConfig(architectures=["GPTForCausalLM"]).save_pretrained(tmp_path / "gpt")  # a gpt run's config
    with pytest.raises(ValueError, match=r"--backbone .*gpt: a saved gpt model, not a transformers text encoder: "
                                         r"--init-from starts a text classifier"):
        family.build(texts, {}, backbone=str(tmp_path / "gpt"))
    with pytest.raises(ValueError, match=r"--tokenizer with --backbone: the text encoder's tokens"):
        family.build(texts, {}, tokenizer="gpt2", backbone=str(tmp_path / "resnet"))
    with pytest.raises(ValueError, match=r"--text-backbone x: the text-classifier model has no text encoder"):
        family.build(texts, {}, backbone=str(tmp_path / "resnet"), text_backbone="x")
    with pytest.raises(ValueError, match=r"backbone_config is a bert text encoder.*there is no GPTModel"):
        GPTForCausalLM(TestTextClassifierOnABert().get_config())
    gpt = GPTForSequenceClassification(GPTConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1,
                                                 num_attention_heads=2, num_labels=2))
    with pytest.raises(ValueError, match=r"token_type_ids are for a text encoder that has segments"):
        gpt(torch.ones(1, 3, dtype=torch.long), token_type_ids=torch.zeros(1, 3, dtype=torch.long))


VOCAB = 40


class TestTextClassifierOnABert(ModelTesterMixin):
    all_model_classes = (GPTForSequenceClassification,)
    config_class = GPTConfig
    invalid_config_values = [("backbone_config", {"hidden_size": 16}),
                             ("backbone_config", backbone_config_dict(BertConfig(vocab_size=VOCAB + 1, **TINY_BERT)))]

    def get_config(self, **overrides):
        # the encoder initialises by its own config's range (the init check sets ranges near 0)
        encoder = {"initializer_range": overrides["initializer_range"]} if "initializer_range" in overrides else {}
        values = {"vocab_size": VOCAB, "num_labels": 3, "pad_token_id": 0,
                  "backbone_config": backbone_config_dict(BertConfig(vocab_size=VOCAB, **TINY_BERT, **encoder))}
        return GPTConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        generator = torch.Generator().manual_seed(seed)
        input_ids = torch.randint(1, VOCAB, (batch_size, 10), generator=generator)
        lengths = torch.randint(5, 11, (batch_size,), generator=generator)
        attention_mask = (torch.arange(10)[None] < lengths[:, None]).long()
        return {"input_ids": input_ids.masked_fill(attention_mask == 0, 0), "attention_mask": attention_mask,
                "labels": torch.randint(0, 3, (batch_size,), generator=generator)}

    def test_a_head_on_a_base_models_folder_is_new_and_named_and_the_body_must_be_whole(self, model_class, tmp_path,
                                                                                        caplog):
        """The base model is a BertModel: its folder is a BERT's, which `--backbone` starts a classifier from; loaded
        as this class it is a GPT config with no GPT weights, an error listing them."""
        self.make_model().base_model.save_pretrained(tmp_path)
        with pytest.raises(ValueError, match=r"missing from the folder.*transformer\.embed_tokens\.weight"):
            model_class.from_pretrained(tmp_path)
