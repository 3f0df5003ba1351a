"""`hfmodels <command>`: train, evaluate and predict. Results go to stdout as JSON; logs go to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

TRAIN_HELP = "Train a model family (see `hfmodels train --help`)."


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_warning()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_warning()


def command_train(argv: list[str]) -> int:
    from transformers import HfArgumentParser

    from .training import TrainingArguments, train

    parser = HfArgumentParser(TrainingArguments, prog="hfmodels train", description=TRAIN_HELP)
    (args,) = parser.parse_args_into_dataclasses(argv)
    result = train(args)
    print(json.dumps(result, indent=2))
    return 0


def command_evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels evaluate", description="Score a saved model; prints JSON.")
    parser.add_argument("model", help="Model folder.")
    parser.add_argument("--dataset", help="Data source (default: the one the model was trained on).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    from .training.evaluation import evaluate_saved

    print(json.dumps(evaluate_saved(args.model, args.dataset, args.split, args.batch_size), indent=2))
    return 0


def command_predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels predict", description="Top classes for each input; prints JSON.")
    parser.add_argument("model", help="Model folder.")
    parser.add_argument("inputs", nargs="+", help="Image files.")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)
    from transformers import AutoConfig, pipeline

    from .data.images import open_image
    from .families import family_of_config

    family = family_of_config(AutoConfig.from_pretrained(args.model))
    predictor = pipeline(family.pipeline_tag, model=args.model, trust_remote_code=False)  # our registered classes
    images = [open_image(path) for path in args.inputs]
    results = predictor(images, top_k=args.top_k)
    print(json.dumps([{"input": path, "predictions": result} for path, result in zip(args.inputs, results)], indent=2))
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(f"usage: hfmodels {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"hfmodels: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    configure_logging()
    try:
        return COMMANDS[argv[0]](argv[1:])
    except ValueError as error:  # bad input: one clear line, no traceback
        print(f"hfmodels {argv[0]}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
