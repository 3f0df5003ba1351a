"""What the optimizer trains, and how: weight decay on the weights that should decay, and, to fine-tune a pretrained
model, its backbone frozen (`--freeze-backbone`), frozen for the first epochs only (`--freeze-epochs N`, fastai's
two phases: the new head first, then everything) or trained at its own learning rate (`--backbone-learning-rate`).

The backbone is what the family names (`Family.backbone_parts`: the body under `base_model_prefix`, fusion's two
encoders). Frozen means frozen completely: its parameters get no gradients (AdamW then leaves them, weight decay
included) and its modules stay in eval mode, so batch-norm statistics and dropout do not move either. The optimizer's
parameter groups are the same in both phases (a frozen parameter only has no gradient), so a checkpoint taken in
either resumes into the same layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .arguments import TrainingArguments

logger = logging.getLogger(__name__)

# Only matrices and kernels decay (linear and convolution weights, embeddings); biases and the scales and shifts of
# norms (1-D) do not: pulling them to zero only fights the normalisation (transformers' Trainer: no decay on biases
# and LayerNorm weights).
DECAY_RULE = "weights of 2 or more dimensions (linear, convolution, embedding); not biases or norm parameters"


def decays(parameter: torch.Tensor) -> bool:
    return parameter.ndim >= 2


@dataclass
class FineTuning:
    backbone: dict[str, nn.Module]  # name -> module: what is frozen or gets the backbone's learning rate
    frozen_epochs: int | None  # the backbone is frozen in epochs < frozen_epochs; None: always (--freeze-backbone)
    backbone_learning_rate: float | None
    # with a LoRA adapter (`--lora`): the body's batch norms, whose statistics stay the base model's
    fixed_statistics: list[nn.Module] = field(default_factory=list)

    @classmethod
    def plan(cls, args: TrainingArguments, family, model: nn.Module) -> FineTuning:
        from ..pretrained.adapters import body_norms, is_adapted

        asked = args.freeze_backbone or args.freeze_epochs or args.backbone_learning_rate is not None
        backbone = family.backbone_parts(model) if asked else {}
        frozen_epochs = None if args.freeze_backbone else args.freeze_epochs or 0
        fixed = body_norms(family, model.get_base_model()) if is_adapted(model) else []
        plan = cls(backbone, frozen_epochs, args.backbone_learning_rate, fixed)
        if args.freeze_backbone or args.freeze_epochs:
            backbone_ids = {id(p) for p in plan.backbone_parameters()}
            if all(id(p) in backbone_ids for p in model.parameters()):
                flag = "--freeze-backbone" if args.freeze_backbone else "--freeze-epochs"
                raise ValueError(f"{flag}: nothing of the {family.name} model is left to train with its backbone "
                                 f"({', '.join(backbone)}) frozen (a language model's head is its token embeddings)")
        return plan

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [parameter for module in self.backbone.values() for parameter in module.parameters()]

    @property
    def frozen_throughout(self) -> bool:
        return bool(self.backbone) and self.frozen_epochs is None

    def frozen_in(self, epoch: int) -> bool:
        return bool(self.backbone) and (self.frozen_epochs is None or epoch < self.frozen_epochs)

    def apply(self, epoch: int) -> None:
        """At the start of each epoch, after `model.train()`: the backbone frozen (no gradients, eval mode) or not."""
        frozen = self.frozen_in(epoch)
        for module in self.backbone.values():
            module.requires_grad_(not frozen)
            if frozen:
                module.eval()
        for norm in self.fixed_statistics:
            norm.eval()

    def parameter_groups(self, model: nn.Module, learning_rate: float, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW's groups: the head's first (the learning rate the log shows), then the backbone's; within each,
        the weights that decay and those that do not. Empty groups are left out, and so are the parameters that
        never train (a LoRA adapter's base model)."""
        backbone_ids = {id(p) for p in self.backbone_parameters()}
        backbone_rate = self.backbone_learning_rate or learning_rate
        trained = [p for p in model.parameters() if p.requires_grad or id(p) in backbone_ids]
        groups = []
        for part, rate in (("head", learning_rate), ("backbone", backbone_rate)):
            for decaying in (True, False):
                parameters = [p for p in trained
                              if (id(p) in backbone_ids) == (part == "backbone") and decays(p) == decaying]
                if parameters:
                    groups.append({"params": parameters, "lr": rate, "weight_decay": weight_decay if decaying else 0.0,
                                   "name": f"{part}, {'decay' if decaying else 'no decay'}"})
        return groups

    def record(self, model: nn.Module) -> dict[str, Any]:
        """For run_info.json and the card: what was frozen, for how long, the rates, the parameter counts."""
        total = sum(p.numel() for p in model.parameters())
        in_backbone = sum(p.numel() for p in self.backbone_parameters())
        never_trained = sum(p.numel() for p in model.parameters() if not p.requires_grad) if not self.backbone else 0
        return {
            "backbone": list(self.backbone),
            "frozen": "throughout" if self.frozen_throughout else (
                f"for the first {self.frozen_epochs} epoch(s)" if self.frozen_epochs else "never"),
            "backbone_learning_rate": self.backbone_learning_rate,
            "weight_decay_on": DECAY_RULE,
            "parameters": total,
            "trainable_parameters": total - in_backbone if self.frozen_in(0) else total - never_trained,
        }
