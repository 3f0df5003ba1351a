"""The text families end to end: tokenizer, embedded standard-library data, training through the CLI, pipelines
with and without hfmodels. The models themselves are tested in test_gpt.py."""

import json
from collections import Counter

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, pipeline

from hfmodels import GPTForCausalLM, GPTForSequenceClassification
from hfmodels.data import load_source
from hfmodels.data.stdlib import PACKAGES
from hfmodels.data.tokenizer import END_OF_TEXT, PAD, train_tokenizer
from hfmodels.families import family_of_config
from hfmodels.hub import check_card

from .conftest import run_cli
from .model_tester import run_without_hfmodels

SMALL_GPT = ["--model-config", "max_position_embeddings=64", "hidden_size=128", "num_hidden_layers=2"]
PROMPTS = ["def __init__(self", "import os\n", "    for"]


def train_or_fail(*args: str) -> dict:
    result = run_cli("train", "--report-to", "none", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained_gpt(tmp_path_factory):
    """A short GPT run on the embedded standard-library corpus, with a tokenizer from `train-tokenizer`."""
    root = tmp_path_factory.mktemp("gpt")
    made = run_cli("train-tokenizer", "--dataset", "stdlib", "--vocab-size", "1024",
                   "--output-dir", str(root / "tokenizer"))
    assert made.returncode == 0, made.stderr[-3000:]
    assert json.loads(made.stdout)["vocab_size"] == 1024
    train_or_fail("--model", "gpt", "--tokenizer", str(root / "tokenizer"), "--max-steps", "400", "--batch-size", "32",
                  "--learning-rate", "3e-3", *SMALL_GPT, "--output-dir", str(root / "run"))
    return root / "run"


@pytest.fixture(scope="module")
def trained_text_classifier(tmp_path_factory):
    run = tmp_path_factory.mktemp("text-classifier") / "run"
    train_or_fail("--model", "text-classifier", "--epochs", "3", "--batch-size", "32", *SMALL_GPT,
                  "vocab_size=1024", "--output-dir", str(run))
    return run


def test_tokenizer_encodes_any_text_and_loads_with_auto_tokenizer(tmp_path):
    tokenizer = train_tokenizer(["def f(x):\n    return x + 1\n"] * 20 + ["print('hello')"], vocab_size=300)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "naïve café ☕ → λx: x\t\n"  # characters never seen in training: byte-level BPE still encodes them
    assert reloaded.decode(reloaded(text)["input_ids"]) == text
    assert 258 < len(reloaded) <= 300  # bytes, special tokens and the merges this small text allows
    assert (reloaded.eos_token, reloaded.bos_token, reloaded.pad_token) == (END_OF_TEXT, END_OF_TEXT, PAD)
    with pytest.raises(ValueError, match="vocab_size=100 is too small"):
        train_tokenizer(["text"], vocab_size=100)
    with pytest.raises(ValueError, match="no texts"):
        train_tokenizer([], vocab_size=300)


def test_stdlib_data_is_split_per_file_and_balanced():
    corpus = load_source("stdlib")
    assert set(corpus["train"]["path"]).isdisjoint(corpus["validation"]["path"])
    assert len(corpus["validation"]) >= 10 and len(corpus["train"]) > 5 * len(corpus["validation"])
    functions = load_source("stdlib-functions")
    assert functions["train"].features["label"].names == list(PACKAGES)
    paths = {split: set(rows["path"]) for split, rows in functions.items()}
    assert paths["train"].isdisjoint(paths["test"]) and paths["train"].isdisjoint(paths["validation"])
    assert paths["validation"].isdisjoint(paths["test"])
    for split, rows in functions.items():
        counts = Counter(rows["label"])
        assert len(counts) == len(PACKAGES) and len(set(counts.values())) == 1, (split, counts)
        assert all(path.split("/")[0] == PACKAGES[label] for path, label in zip(rows["path"], rows["label"]))
        assert all(text.lstrip().startswith(("def ", "async def ")) for text in rows["text"])
    # the pretraining corpus holds none of the files the classifier is chosen and scored on, and the rest of stdlib
    pretrain = load_source("stdlib-pretrain")
    pretrain_paths = set(pretrain["train"]["path"]) | set(pretrain["validation"]["path"])
    assert pretrain_paths.isdisjoint(paths["validation"] | paths["test"])
    assert paths["train"] <= pretrain_paths
    assert len(pretrain_paths) > 0.8 * (len(corpus["train"]) + len(corpus["validation"]))


def test_gpt_learns_far_beyond_a_bigram_model(trained_gpt):
    results = json.loads((trained_gpt / "eval_results.json").read_text())
    perplexity = results["metrics"]["perplexity"]
    bigram = results["baselines"]["bigram (add-one)"]["perplexity"]
    assert perplexity < 0.8 * bigram, (perplexity, bigram)
    assert results["dataset"]["name"] == "stdlib" and results["task"] == "text-generation"
    samples = json.loads((trained_gpt / "samples.json").read_text())
    assert {sample["decoding"].split()[0] for sample in samples} == {"greedy", "sampled"}
    assert all(sample["text"].startswith(sample["prompt"]) and len(sample["text"]) > len(sample["prompt"])
               for sample in samples)
    assert check_card(trained_gpt) == []


def greedy_continuations(path, prompts: list[str], new_tokens: int = 12) -> list[str]:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = GPTForCausalLM.from_pretrained(path).eval()
    texts = []
    for prompt in prompts:
        input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        output = model.generate(input_ids, max_new_tokens=new_tokens, do_sample=False)
        texts.append(tokenizer.decode(output[0]))
    return texts


def test_text_generation_pipeline_with_and_without_hfmodels(trained_gpt, tmp_path):
    expected = greedy_continuations(trained_gpt, PROMPTS)
    generate = pipeline("text-generation", model=str(trained_gpt))
    batched = generate(PROMPTS, max_new_tokens=12, do_sample=False, batch_size=3)  # left-padded together
    assert [result[0]["generated_text"] for result in batched] == expected
    run_without_hfmodels(
        f"""
        import json, transformers
        generate = transformers.pipeline("text-generation", model={str(trained_gpt)!r}, trust_remote_code=True)
        assert not type(generate.model).__module__.startswith("hfmodels")
        results = generate({PROMPTS!r}, max_new_tokens=12, do_sample=False)
        json.dump([result[0]["generated_text"] for result in results], open("generated.json", "w"))
        """,
        cwd=tmp_path,
    )
    assert json.loads((tmp_path / "generated.json").read_text()) == expected


def test_predict_cli_continues_prompts(trained_gpt):
    result = run_cli("predict", str(trained_gpt), *PROMPTS, "--max-new-tokens", "12")
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout)
    assert [entry["input"] for entry in printed] == PROMPTS
    assert ([entry["predictions"][0]["generated_text"] for entry in printed]
            == greedy_continuations(trained_gpt, PROMPTS))


def test_text_classifier_learns_the_packages_and_reports_its_baseline(trained_text_classifier):
    results = json.loads((trained_text_classifier / "eval_results.json").read_text())
    chance = 1 / len(PACKAGES)
    assert results["dataset"]["split"] == "test"
    assert results["metrics"]["num_samples"] == len(load_source("stdlib-functions")["test"])
    assert results["metrics"]["accuracy"] > 2.5 * chance and results["metrics"]["f1"] > 2.5 * chance
    assert set(results["baselines"]["tf-idf + logistic regression"]) == {"accuracy", "f1"}
    config = AutoConfig.from_pretrained(trained_text_classifier)
    assert family_of_config(config).name == "text-classifier" and list(config.id2label.values()) == list(PACKAGES)
    assert check_card(trained_text_classifier) == []


def test_text_classification_pipeline_with_and_without_hfmodels(trained_text_classifier, tmp_path):
    texts = list(load_source("stdlib-functions")["test"].shuffle(seed=0).select(range(8))["text"])
    tokenizer = AutoTokenizer.from_pretrained(trained_text_classifier)
    model = GPTForSequenceClassification.from_pretrained(trained_text_classifier).eval()
    with torch.no_grad():
        logits = model(**tokenizer(texts, truncation=True, padding=True, return_tensors="pt")).logits
    expected = [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
    classify = pipeline("text-classification", model=str(trained_text_classifier))
    assert [result["label"] for result in classify(texts, truncation=True)] == expected
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    run_without_hfmodels(
        f"""
        import json, transformers
        classify = transformers.pipeline("text-classification", model={str(trained_text_classifier)!r},
                                         trust_remote_code=True)
        results = classify(json.load(open("texts.json")), truncation=True)
        json.dump([result["label"] for result in results], open("labels.json", "w"))
        """,
        cwd=tmp_path,
    )
    assert json.loads((tmp_path / "labels.json").read_text()) == expected


def test_predict_cli_lists_top_classes_of_texts(trained_text_classifier):
    result = run_cli("predict", str(trained_text_classifier), "def run(self):\n    self.loop.run_forever()",
                     "--top-k", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    (entry,) = json.loads(result.stdout)
    assert len(entry["predictions"]) == 2 and {p["label"] for p in entry["predictions"]} <= set(PACKAGES)


def test_evaluate_cli_reproduces_the_training_score(trained_text_classifier):
    result = run_cli("evaluate", str(trained_text_classifier))
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((trained_text_classifier / "eval_results.json").read_text())["metrics"]
    assert json.loads(result.stdout)["metrics"]["accuracy"] == pytest.approx(recorded["accuracy"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "image-classifier", "--tokenizer", "gpt2"], "--tokenizer is for text families"),
        (["--model", "gpt", "--dataset", "digits"], "--text-column 'text' is not a column"),
        (["--model", "gpt", "--tokenizer", "no/such-tokenizer"], "--tokenizer no/such-tokenizer: no tokenizer"),
    ],
    ids=["tokenizer for images", "no text column", "missing tokenizer"],
)
def test_bad_text_training_input_is_a_clear_error(args, message, tmp_path):
    result = run_cli("train", *args, "--max-steps", "1", "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 1 and message in result.stderr, result.stderr[-2000:]
