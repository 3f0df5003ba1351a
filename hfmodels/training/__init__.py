from .arguments import TrainingArguments, parse_training_arguments
from .loop import evaluate_model, make_accelerator, make_loader, train

__all__ = ["TrainingArguments", "parse_training_arguments", "train", "evaluate_model", "make_accelerator", "make_loader"]
