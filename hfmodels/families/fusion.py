"""The fusion family: an image and a text per row, one class for the pair. The image encoder is the image classifier's
CNN, the text encoder the GPT backbone with a byte-level BPE tokenizer trained on the training texts (or `--tokenizer`);
their pooled features are concatenated and classified (see `hfmodels.models.fusion`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict

from ..models.fusion import FusionConfig, FusionForClassification, FusionProcessor
from ..models.fusion.modeling_fusion import ENCODER_MODULES
from .base import Family, class_label_fields, register_family
from .image_classifier import ImageClassifierFamily, random_shift, write_confusion_matrix
from .text import TextClassifierFamily

# A smaller GPT than the text families': the texts are a few words long.
FUSION_TEXT_ENCODER = {
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64,
}
ENCODER_OVERRIDES = ("vision_config", "text_config")


@register_family
class FusionFamily(Family):
    name = "fusion"
    config_class = FusionConfig
    model_class = FusionForClassification
    processor_class = FusionProcessor
    pipeline_tag = "other"  # the Hub has no image + text classification task, transformers no pipeline for it
    columns = ("image", "text", "label")
    default_dataset = "digits-arithmetic"
    metric_names = ("accuracy",)
    main_metric = "accuracy"
    default_epochs = 15
    default_learning_rate = 2e-3

    def build(
        self, train_split: Dataset, overrides: dict[str, Any], tokenizer: str | None = None,
        backbone: str | None = None, text_backbone: str | None = None,
    ) -> tuple[FusionForClassification, FusionProcessor]:
        """`overrides` are FusionConfig fields; `vision_config` / `text_config` (dicts) override the encoders'
        fields. `backbone` / `text_backbone` name trained encoders (an image-classifier run or a transformers vision
        model, a gpt or text-classifier run or a transformers text encoder: folders or Hub ids), whose bodies and
        processors the model starts from (as `from_encoders_pretrained` makes one); an encoder not given is new."""
        for field in ENCODER_OVERRIDES:
            if not isinstance(overrides.get(field, {}), dict):
                raise ValueError(
                    f"--model-config {field} must be a JSON object of encoder fields, got {overrides[field]!r}"
                )
        if text_backbone and tokenizer:
            raise ValueError("--tokenizer with --text-backbone: the text encoder keeps its own tokenizer")
        sides = {"vision_config": self.vision_side(train_split, overrides.get("vision_config", {}), backbone),
                 "text_config": self.text_side(train_split, overrides.get("text_config", {}), text_backbone,
                                               tokenizer)}
        fusion_fields = {key: value for key, value in overrides.items() if key not in ENCODER_OVERRIDES}
        config = FusionConfig(**{field: side[0] for field, side in sides.items()},
                              **{**self.label_fields(train_split), **fusion_fields})
        model = FusionForClassification(config)
        for field, (_, _, pretrained) in sides.items():
            if pretrained is not None:
                getattr(model, ENCODER_MODULES[field]).load_state_dict(pretrained.state_dict())
        processor = FusionProcessor(image_processor=sides["vision_config"][1], tokenizer=sides["text_config"][1])
        return model, processor

    def vision_side(self, train_split: Dataset, overrides: dict[str, Any], backbone: str | None) -> tuple:
        """The image encoder's (config, processor, pretrained encoder or None): the image classifier's CNN, or the
        body of `--backbone`."""
        from ..pretrained import ModelReference, load_encoder
        from ..pretrained.vision import fitted_image_processor

        family = ImageClassifierFamily()
        default = family.build_config(train_split, overrides)
        if backbone is None:
            return default, family.build_processor(default), None
        reference = ModelReference.parse("--backbone", backbone)
        encoder, processor = load_encoder(family, reference, text=False)
        if processor is None:  # a transformers vision model: ours, fed as it was trained
            processor = fitted_image_processor(reference, family.build_processor(default), encoder.config.num_channels)
        return encoder.config, processor, encoder

    def text_side(self, train_split: Dataset, overrides: dict[str, Any], text_backbone: str | None,
                  tokenizer: str | None) -> tuple:
        """The text encoder's (config, tokenizer, pretrained encoder or None): a small GPT with a tokenizer trained on
        the training texts (or `--tokenizer`), or the body of `--text-backbone` with its own."""
        from ..pretrained import ModelReference, load_encoder

        family = TextClassifierFamily()
        if text_backbone is None:  # the text classifier's build trains (or loads) the tokenizer, sizes a GPT to it
            model, processor = family.build(train_split, {**FUSION_TEXT_ENCODER, **overrides}, tokenizer=tokenizer)
            return model.config.to_dict(), processor, None
        encoder, processor = load_encoder(family, ModelReference.parse("--text-backbone", text_backbone), text=True)
        processor.padding_side = TextClassifierFamily.padding_side
        return encoder.config, processor, encoder

    def backbone_parts(self, model: FusionForClassification) -> dict[str, torch.nn.Module]:
        return {"vision_model": model.vision_model, "text_model": model.text_model}

    def label_fields(self, train_split: Dataset) -> dict[str, Any]:
        return class_label_fields(train_split.features["label"].names)

    def transform(self, processor: FusionProcessor, train: bool):
        def to_inputs(batch: dict[str, list]) -> dict[str, Any]:
            images = [random_shift(image) for image in batch["image"]] if train else batch["image"]
            inputs = processor(images=images, text=batch["text"], padding="longest", truncation=True,
                               return_tensors="pt")
            return {**inputs, "labels": torch.tensor(batch["label"])}

        return to_inputs

    def metric_inputs(self, outputs, batch):
        return {"predictions": outputs.logits.argmax(-1), "references": batch["labels"]}

    def write_artifacts(self, model, processor, data: DatasetDict, output_dir: Path) -> list[str]:
        return write_confusion_matrix(self, model, processor, data, output_dir)

    def baselines(self, data: DatasetDict, split: str, config=None, processor=None) -> dict[str, dict[str, float]]:
        """Logistic regressions (scikit-learn's defaults) on the pixels alone, the TF-IDF of the words alone and both
        side by side: how far each modality, and a linear model of the two, gets without fusion."""
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score

        pixels = {part: csr_matrix(image_matrix(data[part])) for part in ("train", split)}
        vectorizer = TfidfVectorizer().fit(data["train"]["text"])
        words = {part: vectorizer.transform(data[part]["text"]) for part in ("train", split)}
        inputs = {
            "image only: pixels + logistic regression": pixels,
            "text only: tf-idf + logistic regression": words,
            "both, linear: pixels and tf-idf + logistic regression": {
                p: hstack([pixels[p], words[p]]).tocsr() for p in pixels
            },
        }
        results = {}
        for name, matrices in inputs.items():
            classifier = LogisticRegression(max_iter=2000).fit(matrices["train"], data["train"]["label"])
            predictions = classifier.predict(matrices[split])
            results[name] = {"accuracy": float(accuracy_score(data[split]["label"], predictions))}
        return results


def image_matrix(rows: Dataset) -> np.ndarray:
    """(rows, pixels) grayscale values in [0, 1], each image resized to the first one's size."""
    size = rows[0]["image"].size
    return np.stack([np.asarray(image.convert("L").resize(size), dtype=np.float32).ravel() / 255
                     for image in rows["image"]])
