"""The text families, both on the GPT backbone: a causal language model (`gpt`) and a text classifier
(`text-classifier`). Their processor is a byte-level BPE tokenizer, trained on the training texts unless
`--tokenizer` names one; it comes before the config, because it fixes the vocabulary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict, IterableDataset
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..data.tokenizer import train_tokenizer
from ..models.gpt import GPTConfig, GPTForCausalLM, GPTForSequenceClassification
from .base import Family, class_label_fields, register_family
from .image_classifier import write_confusion_matrix

DEFAULT_VOCAB_SIZE = 4096
# Small enough to train on 2 CPU cores in minutes (GPTConfig's own defaults are a size up).
SMALL_GPT = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "max_position_embeddings": 128}
SAMPLES_FILE = "samples.json"
SAMPLE_PROMPTS = ("def main(", "import os\n", "class Node", "    for i in", "if __name__ ==")
SAMPLE_NEW_TOKENS = 48


class TextFamily(Family):
    config_class = GPTConfig
    processor_class = PreTrainedTokenizerFast
    padding_side = "right"

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> GPTConfig:
        return self.config_class(**{**SMALL_GPT, **overrides})

    def build(
        self, train_split: Dataset, overrides: dict[str, Any], tokenizer: str | None = None,
        backbone: str | None = None, text_backbone: str | None = None,
    ) -> tuple[GPTForCausalLM | GPTForSequenceClassification, PreTrainedTokenizerFast]:
        self.refuse_backbones(backbone, text_backbone)
        if tokenizer is None:
            processor = train_tokenizer(train_split["text"], overrides.get("vocab_size", DEFAULT_VOCAB_SIZE))
        else:
            processor = load_tokenizer(tokenizer)
        vocab_size = overrides.get("vocab_size", len(processor))
        if vocab_size < len(processor):
            raise ValueError(
                f"--model-config vocab_size={vocab_size} is smaller than the tokenizer's {len(processor)} tokens"
            )
        token_ids = {"pad_token_id": processor.pad_token_id, "bos_token_id": processor.bos_token_id,
                     "eos_token_id": processor.eos_token_id}
        config = self.build_config(train_split, {**token_ids, **overrides, "vocab_size": vocab_size})
        model = self.model_class(config)
        self.finish_build(model, processor)
        return model, processor

    def finish_build(self, model, processor: PreTrainedTokenizerFast) -> None:
        processor.model_max_length = model.config.max_position_embeddings
        processor.padding_side = self.padding_side
        if model.can_generate():  # generation stops at the context (the pipeline's default 256 new tokens overflow it)
            model.generation_config.max_length = model.config.max_position_embeddings


def load_tokenizer(name: str, revision: str | None = None, flag: str = "--tokenizer") -> PreTrainedTokenizerFast:
    """A trained tokenizer from a folder or the Hub; one without a padding token pads with its end-of-text."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
    except (OSError, ValueError) as error:
        raise ValueError(f"{flag} {name}: no tokenizer could be loaded from it ({error})") from error
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{flag} {name}: it has neither a padding nor an end-of-text token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@register_family
class GPTFamily(TextFamily):
    """Next-token prediction on texts packed into blocks of the context length (documents end with <|endoftext|>)."""

    name = "gpt"
    model_class = GPTForCausalLM
    pipeline_tag = "text-generation"
    columns = ("text",)
    padding_side = "left"  # a batch of prompts then ends together, where generation goes on
    default_dataset = "stdlib"
    metric_names = ("perplexity",)
    main_metric = "perplexity"
    greater_is_better = False
    default_epochs = 1
    default_learning_rate = 2e-3

    def prepare(
        self, split: Dataset | IterableDataset, processor: PreTrainedTokenizerFast
    ) -> Dataset | IterableDataset:
        block_size, end_of_text = processor.model_max_length, processor.eos_token_id

        def to_blocks(batch: dict[str, list]) -> dict[str, list]:
            documents = processor(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]
            stream = [token for document in documents for token in [*document, end_of_text]]
            starts = range(0, len(stream) - block_size + 1, block_size)
            return {"input_ids": [stream[i : i + block_size] for i in starts]}

        # a Dataset is packed in one batch (only the last block's tail is dropped); a stream 1000 texts at a time
        batch_size = None if isinstance(split, Dataset) else 1000
        blocks = split.map(to_blocks, batched=True, batch_size=batch_size, remove_columns=split.column_names)
        if isinstance(blocks, Dataset) and len(blocks) == 0:
            raise ValueError(
                f"the texts hold fewer tokens than one block of {block_size}: lower max_position_embeddings"
            )
        return blocks

    def transform(self, processor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            input_ids = torch.tensor(batch["input_ids"])
            return {"input_ids": input_ids, "labels": input_ids}  # the model shifts the labels

        return to_inputs

    def metric_inputs(self, outputs, batch):
        """Per block: the summed next-token loss and the number of tokens scored."""
        # (batch, length - 1, vocab), (batch, length - 1)
        logits, targets = outputs.logits[:, :-1], batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none",
                                                   ignore_index=-100)
        scored = targets != -100
        return {"losses": (losses * scored).sum(-1).double(), "counts": scored.sum(-1)}

    def baselines(self, data: DatasetDict, split: str, config=None, processor=None) -> dict[str, dict[str, float]]:
        """A bigram model with add-one smoothing, counted on the training blocks, scored on the same next tokens
        as the model (within each block)."""
        if processor is None:
            return {}
        vocab_size = len(processor)
        train = np.asarray(self.prepare(data["train"], processor)["input_ids"], dtype=np.int64)
        scored = np.asarray(self.prepare(data[split], processor)["input_ids"], dtype=np.int64)
        pairs = np.bincount((train[:, :-1] * vocab_size + train[:, 1:]).ravel(), minlength=vocab_size * vocab_size)
        firsts = pairs.reshape(vocab_size, vocab_size).sum(1)
        previous, following = scored[:, :-1].ravel(), scored[:, 1:].ravel()
        log_probs = np.log(pairs[previous * vocab_size + following] + 1.0) - np.log(firsts[previous] + vocab_size)
        token_loss = float(-log_probs.mean())
        return {"bigram (add-one)": {"perplexity": math.exp(token_loss), "token_loss": token_loss}}

    def write_artifacts(self, model: GPTForCausalLM, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        """Continuations of fixed prompts, greedy and sampled (seeded), for the model card; as long as the model's
        context leaves room for."""
        model.eval()
        samples = []
        for prompt in SAMPLE_PROMPTS:
            input_ids = processor(prompt, return_tensors="pt")["input_ids"].to(model.device)
            new_tokens = min(SAMPLE_NEW_TOKENS, model.config.max_position_embeddings - input_ids.shape[1])
            for decoding, options in (("greedy", {"do_sample": False}),
                                      ("sampled (temperature 0.8, top-p 0.95, seed 0)",
                                       {"do_sample": True, "temperature": 0.8, "top_p": 0.95})):
                torch.manual_seed(0)
                output = model.generate(input_ids, max_new_tokens=new_tokens,
                                        pad_token_id=processor.pad_token_id, **options)
                samples.append({"prompt": prompt, "decoding": decoding,
                                "text": processor.decode(output[0], skip_special_tokens=False)})
        (output_dir / SAMPLES_FILE).write_text(json.dumps(samples, indent=2) + "\n")
        return [SAMPLES_FILE]


@register_family
class TextClassifierFamily(TextFamily):
    """A class per text, from the last non-padding token of the GPT backbone."""

    name = "text-classifier"
    model_class = GPTForSequenceClassification
    pipeline_tag = "text-classification"
    columns = ("text", "label")
    default_dataset = "stdlib-functions"
    metric_names = ("accuracy", "f1")
    main_metric = "accuracy"
    default_epochs = 20
    default_learning_rate = 1e-3

    def build_config(self, train_split: Dataset, overrides: dict[str, Any]) -> GPTConfig:
        labels = class_label_fields(train_split.features["label"].names)
        return super().build_config(train_split, {**labels, **overrides})

    def build(
        self, train_split: Dataset, overrides: dict[str, Any], tokenizer: str | None = None,
        backbone: str | None = None, text_backbone: str | None = None,
    ) -> tuple[GPTForSequenceClassification, PreTrainedTokenizerFast]:
        """`backbone`: a pretrained transformers text encoder (BERT-like, a folder or Hub id) as the body."""
        if backbone is None:
            return super().build(train_split, overrides, tokenizer, backbone, text_backbone)
        self.refuse_backbones(None, text_backbone)
        return self.build_on_text_encoder(train_split, overrides, backbone, tokenizer)

    def build_on_text_encoder(
        self, train_split: Dataset, overrides: dict[str, Any], backbone: str, tokenizer: str | None
    ) -> tuple[GPTForSequenceClassification, PreTrainedTokenizerFast]:
        """A text classifier whose body is the pretrained text encoder `--backbone` (its weights loaded), reading the
        encoder's own tokens (its tokenizer) up to its context length, with a new head on its pooled features."""
        from ..models.backbone import backbone_config_dict
        from ..pretrained import ModelReference, load_text_encoder

        refused = {"--tokenizer": tokenizer is not None,
                   **{f"--model-config {field}": field in overrides for field in ("backbone_config", "vocab_size")}}
        for flag, given in refused.items():
            if given:
                raise ValueError(f"{flag} with --backbone: the text encoder's tokens and config come from it")
        reference = ModelReference.parse("--backbone", backbone)
        encoder, processor = load_text_encoder(reference)
        vocab_size = encoder.config.vocab_size
        if len(processor) > vocab_size:
            raise reference.error(f"its tokenizer has {len(processor)} tokens, more than the encoder's vocab_size="
                                  f"{vocab_size}")
        context = getattr(encoder.config, "max_position_embeddings", None) or SMALL_GPT["max_position_embeddings"]
        config = self.build_config(train_split, {
            **overrides, "backbone_config": backbone_config_dict(encoder.config), "vocab_size": vocab_size,
            "max_position_embeddings": context, "pad_token_id": processor.pad_token_id,
            "bos_token_id": processor.bos_token_id, "eos_token_id": processor.eos_token_id,
        })
        model = self.model_class(config)
        model.transformer.load_state_dict(encoder.state_dict())
        self.finish_build(model, processor)
        return model, processor

    def transform(self, processor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            inputs = processor(batch["text"], truncation=True, padding="longest", return_tensors="pt")
            return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                    "labels": torch.tensor(batch["label"])}

        return to_inputs

    def metric_inputs(self, outputs, batch):
        return {"predictions": outputs.logits.argmax(-1), "references": batch["labels"]}

    def write_artifacts(self, model, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        return write_confusion_matrix(self, model, processor, data, output_dir)

    def metric_kwargs(self, metric_name: str, config: GPTConfig) -> dict[str, Any]:
        return {"average": "macro", "labels": list(range(config.num_labels))} if metric_name == "f1" else {}

    def baselines(self, data: DatasetDict, split: str, config=None, processor=None) -> dict[str, dict[str, float]]:
        """TF-IDF of words with a logistic regression (scikit-learn's defaults), fitted on train."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score

        vectorizer = TfidfVectorizer()
        features = vectorizer.fit_transform(data["train"]["text"])
        classifier = LogisticRegression(max_iter=1000).fit(features, data["train"]["label"])
        predictions = classifier.predict(vectorizer.transform(data[split]["text"]))
        references = data[split]["label"]
        return {"tf-idf + logistic regression": {
            "accuracy": float(accuracy_score(references, predictions)),
            "f1": float(f1_score(references, predictions, average="macro")),
        }}
