"""`hfmodels <command>`: train, evaluate and predict. Results go to stdout as JSON; logs go to stderr.

Each command parses its arguments first and imports what it needs after (torch, transformers, datasets take
seconds to import): `hfmodels --help` and a bad flag answer at once."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .errors import ModelSavedError, first_line


def configure_logging() -> None:
    """hfmodels' progress on stderr; warnings only from the libraries below it. transformers and datasets read
    their settings from the environment when they are imported, which most commands do later or never."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, value in (("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "warning"),
                        ("DATASETS_VERBOSITY", "warning"), ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")):
        os.environ.setdefault(name, value)
    logging.getLogger("accelerate").setLevel(logging.WARNING)


def command_train(argv: list[str]) -> int:
    from .training.arguments import parse_training_arguments

    args = parse_training_arguments(argv)
    from .hub.card import write_card
    from .training.loop import train

    result = train(args, after_save={"the model card": write_card})
    if args.push_to_hub:
        from .hub.push import push_run

        try:
            commit = push_run(result["output_dir"], args.push_to_hub, private=args.hub_private)
        except (ValueError, OSError) as error:
            raise ModelSavedError(
                result["output_dir"], f"pushing to the Hub failed ({first_line(error)})",
                f": push it with `hfmodels push {result['output_dir']} {args.push_to_hub}`",
            ) from error
        result["hub_commit_url"] = commit.commit_url
    print(json.dumps(result, indent=2))
    return 0


def command_evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels evaluate", description="Score a saved model; prints JSON.")
    parser.add_argument("model", help="Model folder or Hub repo id.")
    parser.add_argument("--dataset", help="Data source (default: the one the model was trained on).")
    parser.add_argument("--split", help="Default: the split training reports on (test, else validation).")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    from .training.evaluation import evaluate_saved

    print(json.dumps(evaluate_saved(args.model, args.dataset, args.split, args.batch_size), indent=2))
    return 0


def command_predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfmodels predict",
        description="The model's pipeline on each input (top classes, masks, continuations); prints JSON.",
    )
    parser.add_argument("model", help="Model folder or Hub repo id.")
    parser.add_argument("inputs", nargs="+", help="Image files; for text families, the texts themselves.")
    parser.add_argument("--top-k", type=int, default=3, help="Classifiers: how many classes to list.")
    parser.add_argument("--max-new-tokens", type=int, default=50, help="Text generation: tokens to add (greedy).")
    parser.add_argument("--mask-dir", help="Segmentation: also write each input's mask of class ids here as a PNG.")
    args = parser.parse_args(argv)
    from transformers import pipeline
    from transformers.pipelines import SUPPORTED_TASKS

    from .data.images import open_image
    from .families import family_of_config, load_config
    from .pretrained.adapters import is_adapter_run
    from .training.evaluation import load_trained

    family = family_of_config(load_config(args.model))
    if family.pipeline_tag not in SUPPORTED_TASKS:
        raise ValueError(
            f"a {family.name} model has no prediction pipeline ({family.pipeline_tag}); use it from Python"
        )
    if is_adapter_run(args.model):  # a LoRA run: its base model with the adapter merged in
        model, processor, _ = load_trained(args.model)
        processors = {"image_processor" if "image" in family.columns else "tokenizer": processor}
        predictor = pipeline(family.pipeline_tag, model=model, **processors)
    else:
        predictor = pipeline(family.pipeline_tag, model=args.model, trust_remote_code=False)  # our registered classes
    inputs = args.inputs if "image" not in family.columns else [open_image(path) for path in args.inputs]
    options = {
        "image-classification": {"top_k": args.top_k},
        "text-classification": {"top_k": args.top_k, "truncation": True},
        "text-generation": {"max_new_tokens": args.max_new_tokens, "do_sample": False},
    }.get(family.pipeline_tag, {})
    results = predictor(inputs, **options)
    if family.pipeline_tag == "image-segmentation":  # masks are pictures: print the share of each class
        from .families.segmentation import summarize_segmentations

        results = summarize_segmentations(results, args.inputs, args.mask_dir, predictor.model.config.label2id)
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
    from .hub.push import push_run

    commit = push_run(
        args.run, args.repo_id, private=args.private, revision=args.revision, tag=args.tag, create_pr=args.create_pr,
        commit_message=args.commit_message, token=args.token, license=args.license,
    )
    print(json.dumps({"commit": commit.oid, "commit_url": commit.commit_url, "pr_url": commit.pr_url}, indent=2))
    return 0


def command_train_tokenizer(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfmodels train-tokenizer",
        description="Train a byte-level BPE tokenizer on a data source's train split; prints JSON. Pass the folder "
        "to `hfmodels train --tokenizer` (AutoTokenizer loads it too, without hfmodels).",
    )
    parser.add_argument("--dataset", default="stdlib", help="Data source with a text column (default: stdlib).")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--output-dir", required=True, help="Folder to write tokenizer.json and its config to.")
    args = parser.parse_args(argv)
    from .data import DataOptions, load_source, require_columns
    from .data.tokenizer import train_tokenizer

    options = DataOptions(text_column=args.text_column)
    data = load_source(args.dataset, options)
    require_columns(data, ("text",), args.dataset, options)
    tokenizer = train_tokenizer(data["train"]["text"], args.vocab_size)
    tokenizer.save_pretrained(args.output_dir)
    print(json.dumps({"output_dir": args.output_dir, "vocab_size": len(tokenizer), "texts": len(data["train"])},
                     indent=2))
    return 0


def command_bench(argv: list[str]) -> int:
    from .benchmarks import main as run_benchmarks

    return run_benchmarks(argv)


def command_card(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfmodels card", description="Render (or re-render) a run's model card README.md, or check it."
    )
    parser.add_argument("run", help="Run folder.")
    parser.add_argument("--check", action="store_true", help="Only check the card; exit 1 and say what to fix.")
    parser.add_argument("--repo-id", help="The Hub repo the card describes (default: the card's current one).")
    parser.add_argument("--license", help="A Hub license id (default: the card's current one).")
    args = parser.parse_args(argv)
    from .hub.card import ensure_card_ok, write_card

    if not args.check:
        print(write_card(args.run, args.repo_id, args.license))
    ensure_card_ok(args.run)
    return 0


def command_app(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfmodels app", description="Serve a model in a Gradio web app on 127.0.0.1 (the view fits its family)."
    )
    parser.add_argument("model", help="Model folder or Hub repo id.")
    parser.add_argument("--port", type=int, help="Port (default: GRADIO_SERVER_PORT, else the first free from 7860).")
    parser.add_argument("--share", action="store_true", help="Also open a public gradio.live link (off by default).")
    parser.add_argument("--concurrency", type=int, default=2, help="Predictions run at once; others wait in the queue.")
    parser.add_argument("--no-examples", action="store_true", help="Do not load example images from the training data.")
    parser.add_argument("--title", help="The model's name on the page (default: the repo id or folder name).")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be >= 1, got {args.concurrency}")
    from .app.server import serve

    serve(args.model, port=args.port, share=args.share, concurrency=args.concurrency, examples=not args.no_examples,
          title=args.title)
    return 0


def command_space(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels space", description="Export a model as a Gradio Space folder.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="Write app.py, requirements.txt, README.md and the model files.")
    export.add_argument("model", help="Model folder or Hub repo id.")
    export.add_argument("out_dir", help="New folder to write the Space into.")
    export.add_argument("--model-repo",
                        help="Hub repo id of the model, linked from the Space (default: MODEL if an id).")
    export.add_argument("--push", metavar="USER/SPACE",
                        help="Then create this Space and upload the folder in one commit.")
    export.add_argument("--private", action="store_true", help="Create the Space as private.")
    export.add_argument("--token", help="Hub token (default: HF_TOKEN, then `hf auth login`).")
    args = parser.parse_args(argv)
    from .app.space import export_space, push_space

    result = {"space_dir": str(export_space(args.model, args.out_dir, args.model_repo))}
    if args.push:
        result["commit_url"] = push_space(args.out_dir, args.push, private=args.private, token=args.token).commit_url
    print(json.dumps(result, indent=2))
    return 0


def command_export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels export", description="Export a saved model for other runtimes.")
    commands = parser.add_subparsers(dest="command", required=True)
    onnx = commands.add_parser(
        "onnx", help="Write OUT/model.onnx (dynamic batch, and sequence for texts), checked against PyTorch with "
        "onnxruntime; prints JSON with the max abs difference. Needs `pip install 'hfmodels[onnx]'`.",
    )
    onnx.add_argument("run", help="Run or model folder.")
    onnx.add_argument("out", help="New folder for model.onnx, the config and the processor files.")
    onnx.add_argument("--opset", type=int, default=18, help="ONNX opset version (default: 18).")
    args = parser.parse_args(argv)
    from .export import export_onnx

    print(json.dumps(export_onnx(args.run, args.out, opset=args.opset), indent=2))
    return 0


def command_data(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfmodels data", description="Generate data sets.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "make-pneumonia-demo", help="A small SYNTHETIC stand-in for the chest X-ray pneumonia data, same folder layout."
    )
    demo.add_argument("out_dir", help="New folder to write train/ val/ test/ with NORMAL/ and PNEUMONIA/ into.")
    demo.add_argument("--scale-down", type=int, default=20,
                      help="Divide the real data's split sizes by this (1: all 5,856 images; at least 2 per class).")
    demo.add_argument("--image-size", type=int, default=None,
                      help="Write small square PNGs of this side instead of real-size (0.9-2.2 MP) JPEGs.")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .data.pneumonia_demo import make_pneumonia_demo

    counts = make_pneumonia_demo(args.out_dir, args.scale_down, image_size=args.image_size, seed=args.seed)
    print(json.dumps({"out_dir": args.out_dir, "images": counts}, indent=2))
    return 0


COMMANDS = {  # name -> (function, what it does)
    "train": (command_train, "train a model family (hfmodels train --help for its flags)"),
    "evaluate": (command_evaluate, "score a saved model on a data source; prints JSON"),
    "predict": (command_predict, "run a saved model's pipeline on images or texts; prints JSON"),
    "push": (command_push, "publish a run folder to the Hub in one commit"),
    "card": (command_card, "render or check a run's model card"),
    "train-tokenizer": (command_train_tokenizer, "train a byte-level BPE tokenizer"),
    "bench": (command_bench, "measure the speed goals as ratios"),
    "app": (command_app, "serve a model in a Gradio web app"),
    "space": (command_space, "export a model as a Gradio Space"),
    "data": (command_data, "generate data sets (the pneumonia demo)"),
    "export": (command_export, "export a saved model as ONNX, checked against PyTorch"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    return "usage: hfmodels <command> [options]\n\ncommands:\n" + "\n".join(
        f"  {name:<{width}}  {description}" for name, (_, description) in COMMANDS.items())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"hfmodels: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    configure_logging()
    try:
        return COMMANDS[argv[0]][0](argv[1:])
    # bad input, a file or model that cannot be read (a missing Hub repo offline, a full disk), or a step after
    # training that failed with the model saved: one clear line
    except (ValueError, OSError, ModelSavedError) as error:
        print(f"hfmodels {argv[0]}: error: {str(error).strip()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
