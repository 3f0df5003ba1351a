"""The MLflow model a run logs: a pyfunc that serves a saved model folder to remote clients.

This file travels with the logged model ("models from code": MLflow copies it beside the artifacts and runs it to
load the model), so it imports only the standard library, MLflow, pandas, numpy, PIL, torch and transformers, never
hfmodels; the model's own code travels in the saved folder (`trust_remote_code=True`). `model_config` (written by
hfmodels.training.tracking) names the pipeline task and the input columns.

Inputs are what a client can send over HTTP: an image as its file's bytes (a `binary` column, base64 in JSON), a
text as a string. A value is never used as a path: the server opens no file a client names. Outputs are JSON-ready
rows: class probabilities, generated text, the share of each class in a mask, or a feature vector.
"""

from __future__ import annotations

import io
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel


def read_image(value: Any, row: int):
    """The PIL image whose file bytes are `value`; a ValueError (HTTP 400 when served) for anything else."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, (bytes, bytearray)):
        raise MlflowException.invalid_parameter_value(
            f"row {row}: 'image' must be an image file's bytes (base64 in JSON), got {type(value).__name__}"
        )
    try:
        image = Image.open(io.BytesIO(value))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise MlflowException.invalid_parameter_value(
            f"row {row}: 'image' is not the bytes of an image file ({error})"
        ) from error
    return image


def column(model_input: pd.DataFrame, name: str) -> list:
    if name not in model_input:
        raise MlflowException.invalid_parameter_value(
            f"the input needs a column {name!r}; it has: {', '.join(map(str, model_input.columns)) or 'none'}"
        )
    return list(model_input[name])


def class_probabilities(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of a classifier: the top class, its probability and every class's probability."""
    best = max(scores, key=lambda s: s["score"])
    return {"label": best["label"], "score": float(best["score"]),
            "probabilities": {s["label"]: float(s["score"]) for s in scores}}


class ServedModel(PythonModel):
    """The saved model behind `mlflow models serve`: rows of the signature's columns in, a JSON-ready dict per row
    out."""

    def load_context(self, context) -> None:
        from transformers import AutoModelForSequenceClassification, AutoProcessor, pipeline

        path = context.artifacts["model"]
        self.task = context.model_config["task"]
        self.inputs = context.model_config["inputs"]
        if self.task == "image-text-classification":  # the fusion family: no transformers pipeline for it
            self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
            self.model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
        else:
            self.pipeline = pipeline(self.task, model=path, trust_remote_code=True)

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[dict]:
        params = params or {}
        images = ([read_image(v, i) for i, v in enumerate(column(model_input, "image"))]
                  if "image" in self.inputs else None)
        texts = [str(v) for v in column(model_input, "text")] if "text" in self.inputs else None
        if self.task in ("image-classification", "text-classification"):
            top_k = self.pipeline.model.config.num_labels  # every class's probability
            results = self.pipeline(images if images is not None else texts, top_k=top_k,
                                    **({"truncation": True} if texts is not None else {}))
            return [class_probabilities(scores) for scores in results]
        if self.task == "text-generation":
            max_new_tokens = params.get("max_new_tokens")
            options = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
            results = self.pipeline(texts, do_sample=False, **options)
            return [{"generated_text": result[0]["generated_text"]} for result in results]
        if self.task == "image-segmentation":
            return [mask_shares(segments) for segments in self.pipeline(images)]
        if self.task == "image-feature-extraction":
            return [{"features": features} for features in self.pipeline(images)]
        return self.classify_pairs(images, texts)

    def classify_pairs(self, images: list, texts: list[str]) -> list[dict]:
        import torch

        inputs = self.processor(images=images, text=texts, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            probabilities = self.model(**inputs).logits.softmax(-1)  # (batch, num_labels)
        labels = self.model.config.id2label
        return [class_probabilities([{"label": labels[i], "score": p} for i, p in enumerate(row.tolist())])
                for row in probabilities]


def mask_shares(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """The share of the image's pixels that each class of a segmentation pipeline's answer covers."""
    import numpy as np

    counts = {segment["label"]: int((np.asarray(segment["mask"]) > 0).sum()) for segment in segments}
    total = max(sum(counts.values()), 1)
    return {"shares": {label: count / total for label, count in counts.items()}}


mlflow.models.set_model(ServedModel())
