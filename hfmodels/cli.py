"""`hfmodels <command>`: train, evaluate and predict. Results go to stdout as JSON; logs go to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_warning()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_warning()
    logging.getLogger("accelerate").setLevel(logging.WARNING)


def command_train(argv: list[str]) -> int:
    from .training import parse_training_arguments, train

    from .hub import write_card

    args = parse_training_arguments(argv)
    result = train(args, after_save=write_card)
    if args.push_to_hub:
        from .hub import push_run

        commit = push_run(result["output_dir"], args.push_to_hub, private=args.hub_private)
        result["hub_commit_url"] = commit.commit_url
    print(json.dumps(result, indent=2))
    return 0


def command_evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels evaluate", description="Score a saved model; prints JSON.")
    parser.add_argument("model", help="Model folder or Hub repo id.")
    parser.add_argument("--dataset", help="Data source (default: the one the model was trained on).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    from .training.evaluation import evaluate_saved

    print(json.dumps(evaluate_saved(args.model, args.dataset, args.split, args.batch_size), indent=2))
    return 0


def command_predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels predict", description="Top classes for each input; prints JSON.")
    parser.add_argument("model", help="Model folder or Hub repo id.")
    parser.add_argument("inputs", nargs="+", help="Image files.")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)
    from transformers import AutoConfig, pipeline
    from transformers.pipelines import SUPPORTED_TASKS

    from .data.images import open_image
    from .families import family_of_config

    family = family_of_config(AutoConfig.from_pretrained(args.model))
    if family.pipeline_tag not in SUPPORTED_TASKS:
        raise ValueError(f"a {family.name} model has no prediction pipeline ({family.pipeline_tag}); use it from Python")
    predictor = pipeline(family.pipeline_tag, model=args.model, trust_remote_code=False)  # our registered classes
    images = [open_image(path) for path in args.inputs]
    options = {"top_k": args.top_k} if family.pipeline_tag == "image-classification" else {}
    results = predictor(images, **options)
    print(json.dumps([{"input": path, "predictions": result} for path, result in zip(args.inputs, results)], indent=2))
    return 0


def command_push(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfmodels push", description="Publish a run folder to the Hub in one commit, with its checked model card."
    )
    parser.add_argument("run", help="Run folder (written by `hfmodels train`).")
    parser.add_argument("repo_id", help="namespace/name of the Hub model repo (created when missing).")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    parser.add_argument("--revision", help="Branch to commit to (created from main when missing).")
    parser.add_argument("--tag", help="Tag the new commit.")
    parser.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    parser.add_argument("--commit-message")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN, then `hf auth login`).")
    parser.add_argument("--license", help="A Hub license id for the card (e.g. apache-2.0).")
    args = parser.parse_args(argv)
    from .hub import push_run

    commit = push_run(
        args.run, args.repo_id, private=args.private, revision=args.revision, tag=args.tag, create_pr=args.create_pr,
        commit_message=args.commit_message, token=args.token, license=args.license,
    )
    print(json.dumps({"commit": commit.oid, "commit_url": commit.commit_url, "pr_url": commit.pr_url}, indent=2))
    return 0


def command_card(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfmodels card", description="Render (or re-render) a run's model card README.md, or check it."
    )
    parser.add_argument("run", help="Run folder.")
    parser.add_argument("--check", action="store_true", help="Only check the card; exit 1 and say what to fix.")
    parser.add_argument("--repo-id", help="The Hub repo the card describes (default: the card's current one).")
    parser.add_argument("--license", help="A Hub license id (default: the card's current one).")
    args = parser.parse_args(argv)
    from .hub import ensure_card_ok, write_card

    if not args.check:
        print(write_card(args.run, args.repo_id, args.license))
    ensure_card_ok(args.run)
    return 0


COMMANDS = {
    "train": command_train, "evaluate": command_evaluate, "predict": command_predict, "push": command_push,
    "card": command_card,
}


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
