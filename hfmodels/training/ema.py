"""An exponential moving average (EMA) of a model's weights: `--ema-decay`. The loop evaluates and saves the
average instead of the last weights (what diffusion models are sampled from: the average is smoother than any
single step's weights)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class ExponentialMovingAverage:
    """`average = decay_t * average + (1 - decay_t) * weights` after each optimizer step, with diffusers' warm-up
    `decay_t = min(decay, (1 + t) / (10 + t))` so that early weights, far from trained, fade fast. Buffers that are
    no floats (counters) are copied. `state_dict`/`load_state_dict` let accelerate checkpoint it."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"--ema-decay must be in (0, 1), got {decay}")
        self.decay, self.steps = decay, 0
        self.average = {name: value.detach().clone() for name, value in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for name, value in model.state_dict().items():
            average = self.average[name]
            if average.is_floating_point():
                average.lerp_(value.detach(), 1 - decay)
            else:
                average.copy_(value)

    @contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """The average in the model's weights while the block runs; the trained weights back afterwards."""
        trained = {name: value.detach().clone() for name, value in model.state_dict().items()}
        model.load_state_dict(self.average)
        try:
            yield
        finally:
            model.load_state_dict(trained)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.steps = state["decay"], state["steps"]
        for name, value in state["average"].items():
            self.average[name].copy_(value)
