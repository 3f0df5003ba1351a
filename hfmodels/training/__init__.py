from .arguments import TrainingArguments
from .loop import evaluate_model, make_accelerator, make_loader, train

__all__ = ["TrainingArguments", "train", "evaluate_model", "make_accelerator", "make_loader"]
