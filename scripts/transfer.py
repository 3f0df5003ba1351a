"""Transfer measured, not assumed: the same model from scratch and started from a pretrained one, on the same labels,
data and steps, over several seeds. Writes docs/transfer.md and docs/transfer.json.

    python scripts/transfer.py                   # every task, seeds 0 1 2
    python scripts/transfer.py --tasks vision --seeds 0

vision: digits 0-4 pretrain an image classifier (all their training images); digits 5-9, 20 labelled images per
class (as many more choose the epoch), train a classifier from scratch and one `--init-from` the pretrained run, 30
steps; both scored on every digit 5-9 of the digits test split. vision-longer: the same, 150 steps (where both reach
the ceiling). vision-few: 3 labelled images per class, 60 steps.

vision-backbone: the same task on a transformers ResNet backbone at 32x32 (bottleneck blocks, as ResNet-50's): one
pretrained on digits 0-4 (through `--backbone` of a random one) against the random one, both through `--backbone`.
vision-backbone-longer: the same, 150 steps. vision-backbone-basic: the same on a small ResNet of basic blocks.

segmentation: shapes-any-colour (the shapes split with every kind in every hue: only outlines tell the kinds), the
U-Net from scratch, a ResNet + feature pyramid from random weights, and the same on a ResNet pretrained here to name
the shape of single-shape images (shape-names; no ImageNet weights reach these machines).

text: a gpt pretrained on `stdlib-pretrain` (the stdlib corpus without any file of stdlib-functions' validation and
test splits); the text classifier on stdlib-functions from scratch and `--init-from` it.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from hfmodels.data.digits import load_digits_dataset  # noqa: E402
from hfmodels.training import TrainingArguments, train  # noqa: E402


def digits_folder(root: Path, digits: range, seed: int | None = None, per_class: int = 0) -> Path:
    """Digits as an image folder <root>/<split>/<digit>/<n>.png: every image of `digits`, or with `seed` a seeded
    sample of `per_class` training and as many validation images per digit (test: all)."""
    data = load_digits_dataset()
    for split, rows in data.items():
        by_digit: dict[int, list[int]] = {}
        for index, label in enumerate(rows["label"]):
            if label in digits:
                by_digit.setdefault(label, []).append(index)
        for digit, indices in by_digit.items():
            chosen = {split: indices}
            if seed is not None and split == "train":
                sample = random.Random(f"{seed}-{digit}").sample(indices, 2 * per_class)
                chosen = {"train": sample[:per_class], "validation": sample[per_class:]}
            for name, picked in chosen.items():
                folder = root / name / str(digit)
                folder.mkdir(parents=True, exist_ok=True)
                for index in picked:
                    rows[index]["image"].save(folder / f"{index}.png")
    return root


def run(work: Path, name: str, metric: str = "accuracy", **arguments) -> float:
    output = work / "runs" / name
    if not (output / "eval_results.json").is_file():
        train(TrainingArguments(output_dir=str(output), report_to="none", **arguments))
    return json.loads((output / "eval_results.json").read_text())["metrics"][metric]


def vision(work: Path, seeds: list[int], steps: int = 30, per_class: int = 20) -> dict:
    pretrain_data = digits_folder(work / "data" / "digits-0-4", range(5))
    run(work, "pretrain-digits-0-4", dataset=str(pretrain_data), seed=0)
    pretrained = str(work / "runs" / "pretrain-digits-0-4")
    rows = {"scratch": [], "--init-from the digits 0-4 run": [], "the same, --freeze-backbone (a new head only)": []}
    for seed in seeds:
        data = str(digits_folder(work / "data" / f"digits-5-9-{per_class}-seed{seed}", range(5, 10), seed, per_class))
        common = {"dataset": data, "seed": seed, "max_steps": steps, "batch_size": 32}
        rows["scratch"].append(run(work, f"scratch-{per_class}-{steps}-seed{seed}", **common))
        rows["--init-from the digits 0-4 run"].append(run(
            work, f"init-from-{per_class}-{steps}-seed{seed}", init_from=pretrained, **common))
        rows["the same, --freeze-backbone (a new head only)"].append(run(
            work, f"frozen-{per_class}-{steps}-seed{seed}", init_from=pretrained, freeze_backbone=True, **common))
    return {"task": f"digits 5-9, {per_class} labelled images per class, {steps} steps", "metric": "accuracy",
            "model": "the image classifier's CNN (defaults)", "rows": rows}


def random_resnet(work: Path, name: str, **sizes) -> Path:
    """A randomly initialised transformers ResNet backbone saved as a folder (seed 0): what a backbone pretrained
    here starts from, and the from-scratch control of the same architecture."""
    from transformers import ResNetBackbone, ResNetConfig

    folder = work / "data" / name
    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        ResNetBackbone(ResNetConfig(**sizes)).save_pretrained(folder)
    return folder


def pretrained_backbone(work: Path, name: str, start: Path, **arguments) -> Path:
    """An image classifier on `start` (a backbone folder) trained with `arguments`; its backbone and processor saved
    as a transformers backbone folder, which `--backbone` takes."""
    from hfmodels import ImageClassifierForImageClassification, ImageClassifierImageProcessor

    folder = work / "data" / f"{name}-backbone"
    if not (folder / "config.json").is_file():
        run(work, name, backbone=str(start), **arguments)
        ImageClassifierForImageClassification.from_pretrained(work / "runs" / name).image_classifier.backbone \
            .save_pretrained(folder)
        ImageClassifierImageProcessor.from_pretrained(work / "runs" / name).save_pretrained(folder)
    return folder


# basic blocks: a bottleneck ResNet of widths 16-64 did not learn to name shapes (chance after 10 epochs)
RESNET = {"layer_type": "basic", "embedding_size": 32, "hidden_sizes": [32, 64, 128], "depths": [1, 1, 1]}
# ResNet-50's bottleneck blocks, two per stage: from random weights it learns digits 5-9 slowly, where the basic
# ResNet above learns them in 30 steps as fast from random weights as from digits 0-4
BOTTLENECK_RESNET = {"layer_type": "bottleneck", "embedding_size": 32, "hidden_sizes": [64, 128, 256],
                     "depths": [2, 2, 2]}


def vision_backbone(work: Path, seeds: list[int], steps: int = 30, per_class: int = 20, blocks: str = "bottleneck",
                    ) -> dict:
    """As `vision`, with a transformers ResNet as the backbone: pretrained on digits 0-4 (through `--backbone` of a
    random one), then `--backbone` of it (also head first: `--freeze-epochs 1`) against `--backbone` of the random
    one, at 32x32."""
    sizes = BOTTLENECK_RESNET if blocks == "bottleneck" else RESNET
    start = random_resnet(work, f"resnet-{blocks}-random-digits", **sizes)
    pretrain_data = digits_folder(work / "data" / "digits-0-4", range(5))
    pretrained = pretrained_backbone(work, f"resnet-{blocks}-digits-0-4", start, dataset=str(pretrain_data), seed=0,
                                     image_size=32)
    rows = {"random ResNet": [], "ResNet pretrained on digits 0-4": [],
            "the same, head first (--freeze-epochs 1)": []}
    for seed in seeds:
        data = str(digits_folder(work / "data" / f"digits-5-9-{per_class}-seed{seed}", range(5, 10), seed, per_class))
        common = {"dataset": data, "seed": seed, "max_steps": steps, "batch_size": 32}
        name = f"{per_class}-{steps}-seed{seed}"
        rows["random ResNet"].append(run(work, f"resnet-{blocks}-random-{name}", backbone=str(start), image_size=32,
                                         **common))
        rows["ResNet pretrained on digits 0-4"].append(run(
            work, f"resnet-{blocks}-pretrained-{name}", backbone=str(pretrained), **common))
        rows["the same, head first (--freeze-epochs 1)"].append(run(
            work, f"resnet-{blocks}-pretrained-fe1-{name}", backbone=str(pretrained), freeze_epochs=1, **common))
    return {"task": f"digits 5-9, {per_class} labelled images per class, {steps} steps, 32x32", "metric": "accuracy",
            "model": f"the image classifier on a transformers ResNet backbone ({sizes})", "rows": rows}


def segmentation(work: Path, seeds: list[int], steps: int = 300) -> dict:
    """shapes-any-colour (the kinds in every hue: only the outline tells them): the U-Net from scratch, a ResNet +
    feature pyramid from random weights, and the same on a ResNet pretrained to name shapes (shape-names)."""
    start = random_resnet(work, "resnet-random-shapes", **RESNET)
    pretrained = pretrained_backbone(work, "resnet-shape-names", start, dataset="shape-names", seed=0, epochs=20)
    rows = {"U-Net from scratch": [], "ResNet + pyramid, random weights": [],
            "ResNet + pyramid, pretrained on shape-names": []}
    for seed in seeds:
        common = {"model": "segmentation", "dataset": "shapes-any-colour", "seed": seed, "max_steps": steps}
        rows["U-Net from scratch"].append(run(work, f"unet-{steps}-seed{seed}", metric="mean_iou", **common))
        rows["ResNet + pyramid, random weights"].append(run(
            work, f"fpn-random-{steps}-seed{seed}", metric="mean_iou", backbone=str(start), **common))
        rows["ResNet + pyramid, pretrained on shape-names"].append(run(
            work, f"fpn-pretrained-{steps}-seed{seed}", metric="mean_iou", backbone=str(pretrained), **common))
    return {"task": f"shapes-any-colour, {steps} steps", "metric": "mean_iou",
            "model": f"segmentation: the U-Net (defaults), or a transformers ResNet ({RESNET}) with a feature "
                     "pyramid decoder", "rows": rows}


def pretrained_gpt(work: Path, steps: int = 1500) -> Path:
    """A gpt pretrained on stdlib-pretrain (the stdlib corpus without any file of stdlib-functions' validation or
    test splits)."""
    pretrained = work / "runs" / "gpt-stdlib-pretrain"
    if not (pretrained / "eval_results.json").is_file():
        train(TrainingArguments(model="gpt", dataset="stdlib-pretrain", max_steps=steps, batch_size=32,
                                output_dir=str(pretrained), report_to="none"))
    return pretrained


def text(work: Path, seeds: list[int], pretrain_steps: int = 1500, epochs: int = 5) -> dict:
    """A gpt pretrained on stdlib-pretrain (no file of the classifier's validation or test split), then the text
    classifier on stdlib-functions from scratch and --init-from it, the same epochs; TF-IDF for reference."""
    pretrained = pretrained_gpt(work, pretrain_steps)
    pretraining = json.loads((pretrained / "eval_results.json").read_text())
    rows = {"scratch": [], "--init-from the pretrained gpt": []}
    baseline = None
    for seed in seeds:
        common = {"model": "text-classifier", "seed": seed, "epochs": epochs}
        rows["scratch"].append(run(work, f"text-scratch-{epochs}-seed{seed}", **common))
        rows["--init-from the pretrained gpt"].append(
            run(work, f"text-init-from-{epochs}-seed{seed}", init_from=str(pretrained), **common))
        results = json.loads((work / "runs" / f"text-scratch-{epochs}-seed{seed}" / "eval_results.json").read_text())
        baseline = results["baselines"]["tf-idf + logistic regression"]["accuracy"]
    return {"task": f"stdlib-functions, {epochs} epochs", "metric": "accuracy",
            "model": f"the text classifier's GPT (defaults); the gpt pretrained {pretrain_steps} steps on "
                     f"stdlib-pretrain (validation perplexity {pretraining['metrics']['perplexity']:.1f})",
            "rows": rows, "reference": {"tf-idf + logistic regression": baseline}}


LORA = "r=8,alpha=16"


def lora(work: Path, seeds: list[int], names: str, base: Path, lora_rate: float,
         **arguments) -> dict[str, list[float]]:
    """The full fine-tune of `base` (--init-from; the run `names` formats with the seed, that of another task where
    it is the same run) against a LoRA adapter on it (--init-from --lora), the same data and steps, at the family's
    learning rate and at `lora_rate` (adapters usually take a larger one). (Step times: the fine-tuning section of
    the benchmarks, measured side by side.)"""
    setups = {"full fine-tune": ("", {}), f"LoRA ({LORA})": ("lora-", {"lora": LORA}),
              f"LoRA ({LORA}), --learning-rate {lora_rate:g}": (f"lora-lr{lora_rate:g}-",
                                                                {"lora": LORA, "learning_rate": lora_rate})}
    rows = {label: [] for label in setups}
    for seed in seeds:
        for label, (prefix, extra) in setups.items():
            rows[label].append(run(work, prefix + names.format(seed=seed), init_from=str(base), seed=seed,
                                   **arguments, **extra))
    return rows


def lora_vision(work: Path, seeds: list[int], steps: int = 30) -> dict:
    """Digits 5-9 (20 labelled images per class) from the digits 0-4 run: the full fine-tune against LoRA."""
    base = work / "runs" / "pretrain-digits-0-4"
    run(work, "pretrain-digits-0-4", dataset=str(digits_folder(work / "data" / "digits-0-4", range(5))), seed=0)
    rows = {}
    for seed in seeds:  # each seed its own labelled sample, as in `vision`
        data = str(digits_folder(work / "data" / f"digits-5-9-20-seed{seed}", range(5, 10), seed, 20))
        for label, values in lora(work, [seed], f"init-from-20-{steps}-seed{{seed}}", base, 1e-2, dataset=data,
                                  max_steps=steps, batch_size=32).items():
            rows.setdefault(label, []).extend(values)
    return {"task": f"digits 5-9, 20 labelled images per class, {steps} steps, from the digits 0-4 run",
            "metric": "accuracy", "model": "the image classifier's CNN (defaults)", "rows": rows}


def lora_text(work: Path, seeds: list[int], epochs: int = 5) -> dict:
    """stdlib-functions from the gpt pretrained on stdlib-pretrain (see `text`): the full fine-tune against LoRA."""
    base = pretrained_gpt(work)
    return {"task": f"stdlib-functions, {epochs} epochs, from the pretrained gpt", "metric": "accuracy",
            "model": "the text classifier's GPT (defaults)",
            "rows": lora(work, seeds, f"text-init-from-{epochs}-seed{{seed}}", base, 1e-2, model="text-classifier",
                         epochs=epochs)}


EPOCH_TASKS = ("text", "lora-text")  # they train for epochs: --steps leaves them
TASKS = {"vision": vision, "vision-longer": functools.partial(vision, steps=150),
         "vision-few": functools.partial(vision, steps=60, per_class=3),
         "text": text, "vision-backbone": vision_backbone,
         "vision-backbone-longer": functools.partial(vision_backbone, steps=150),
         "vision-backbone-basic": functools.partial(vision_backbone, blocks="basic"),
         "segmentation": segmentation,
         "lora-vision": lora_vision, "lora-text": lora_text}


def report(results: dict[str, dict], seeds: list[int]) -> str:
    lines = ["# Transfer", "", "Written by `python scripts/transfer.py`: the same model from scratch and started from "
             "a pretrained one, same labels, data and steps, per seed.", ""]
    for name, result in results.items():
        lines += [f"## {name}: {result['task']}", "", f"Model: {result['model']}. Metric: test {result['metric']}.", "",
                  "| start | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
                  "|---|" + "---|" * (len(seeds) + 1)]
        for start, values in result["rows"].items():
            lines.append(f"| {start} | " + " | ".join(f"{v:.4f}" for v in values)
                         + f" | {statistics.mean(values):.4f} |")
        for name, value in result.get("reference", {}).items():
            lines.append(f"| {name} (reference) | " + " | ".join(f"{value:.4f}" for _ in seeds) + f" | {value:.4f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="Training steps of each fine-tuning run (default: each task's own: "
                        "vision and vision-backbone 30, vision-longer and vision-backbone-longer 150, vision-few 60, "
                        "segmentation 300; text trains 5 epochs).")
    parser.add_argument("--work", type=Path, default=REPO / "transfer-runs", help="Data and runs (kept: reruns skip "
                        "finished runs).")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "transfer")
    args = parser.parse_args()
    started = time.time()
    steps = {"steps": args.steps} if args.steps else {}
    # the tasks run now replace their earlier results; the other tasks' stay (in the order of TASKS)
    earlier = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").is_file() else {}
    now = {name: TASKS[name](args.work, args.seeds, **({} if name in EPOCH_TASKS else steps)) for name in args.tasks}
    results = {name: now.get(name, earlier.get(name)) for name in TASKS if name in now or name in earlier}
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(report(results, args.seeds))
    print(report(results, args.seeds), f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
