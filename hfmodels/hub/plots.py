"""Pictures for the model card, drawn from a run's records (matplotlib without a display)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # a bare Figure renders with Agg: no pyplot, no display needed

from ..atomic import write_atomically

LEARNING_CURVES = "learning_curves.png"
NOT_METRICS = ("eval_loss", "eval_num_samples")


def plot_learning_curves(training_log: list[dict[str, Any]], path: Path) -> bool:
    """Training and validation loss by step, and the validation metrics; False (nothing written) without records."""
    train = [(r["step"], r["loss"]) for r in training_log if "loss" in r]
    evals = [r for r in training_log if "eval_loss" in r]
    if not train and not evals:
        return False
    figure = Figure(figsize=(9, 3.5), dpi=100, layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    if train:
        loss_axes.plot(*zip(*train), marker=".", label="training loss")
    if evals:
        loss_axes.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], marker="o", label="validation loss")
    loss_axes.set(xlabel="step", ylabel="loss", title="Loss")
    loss_axes.legend()
    metric_names = sorted({k for r in evals for k in r if k.startswith("eval_") and k not in NOT_METRICS})
    for name in metric_names:
        points = [(r["step"], r[name]) for r in evals if name in r]
        metric_axes.plot(*zip(*points), marker="o", label=name.removeprefix("eval_"))
    metric_axes.set(xlabel="step", title="Validation metrics")
    if metric_names:
        metric_axes.legend()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    write_atomically(path, image.getvalue())
    return True
