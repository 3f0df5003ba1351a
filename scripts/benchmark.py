"""Benchmarks as ratios against a reference run in the same process (numbers hold on a noisy machine).

    python scripts/benchmark.py            # writes docs/benchmarks.md and docs/benchmarks.json

1. Training-loop overhead: seconds per step of hfmodels' engine (`hfmodels.training.train`) vs a minimal
   hand-written PyTorch loop on the same model, data loader (same batches and transforms), optimizer,
   scheduler and clipping. Both are timed over the same steps of the first epoch (steps FIRST..LAST).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import get_scheduler  # noqa: E402

from hfmodels.data import load_source, with_validation_split  # noqa: E402
from hfmodels.families import get_family  # noqa: E402
from hfmodels.training import TrainingArguments, make_loader, train  # noqa: E402

FIRST, LAST = 10, 70  # timed steps; digits at batch 16 has 75 steps an epoch, so no evaluation falls inside
BATCH = 16


def engine_seconds_per_step(seed: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        train(TrainingArguments(max_steps=LAST, batch_size=BATCH, logging_steps=FIRST, report_to="none",
                                output_dir=folder, seed=seed, warmup_ratio=0.1))
        log = json.loads((Path(folder) / "training_log.json").read_text())
    times = {record["step"]: record["time"] for record in log if "time" in record}
    return (times[LAST] - times[FIRST]) / (LAST - FIRST)


def hand_written_seconds_per_step(seed: int) -> float:
    """The loop a person writes by hand: the reference."""
    torch.manual_seed(seed)
    family = get_family("image-classifier")
    data = with_validation_split(load_source("digits"), seed=seed)
    model = family.build_model(data["train"], {})
    loader = make_loader(data["train"], family, family.build_processor(model.config), True, BATCH, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=family.default_learning_rate, weight_decay=0.01)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=LAST // 10, num_training_steps=LAST)
    model.train()
    for step, batch in enumerate(loader, start=1):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        loss.item()  # the engine reads the loss every step for its progress display
        if step == FIRST:
            started = time.perf_counter()
        if step == LAST:
            return (time.perf_counter() - started) / (LAST - FIRST)
    raise RuntimeError("the epoch ended before the timed steps")


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="docs")
    args = parser.parse_args()

    engine, hand = [], []
    for repeat in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        hand.append(hand_written_seconds_per_step(repeat))
        engine.append(engine_seconds_per_step(repeat))
    result = {
        "machine": machine(),
        "training_loop_overhead": {
            "engine_seconds_per_step": {"min": min(engine), "median": statistics.median(engine), "all": engine},
            "hand_written_seconds_per_step": {"min": min(hand), "median": statistics.median(hand), "all": hand},
            "ratio_median": statistics.median(engine) / statistics.median(hand),
            "ratio_min": min(engine) / min(hand),
            "goal": "<= 1.05",
        },
    }
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n")
    overhead = result["training_loop_overhead"]
    table = (
        "# Benchmarks\n\nRatios against a reference run in the same process (`python scripts/benchmark.py`).\n\n"
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{result['machine']['torch_threads']} torch threads, GPU: {result['machine']['gpu']}.\n\n"
        "| benchmark | hfmodels | reference | ratio (median) | ratio (min) | goal |\n|---|---|---|---|---|---|\n"
        f"| training-loop overhead, digits classifier, batch {BATCH} (s/step) | "
        f"{overhead['engine_seconds_per_step']['median']:.5f} | {overhead['hand_written_seconds_per_step']['median']:.5f} "
        f"(hand-written loop) | {overhead['ratio_median']:.3f} | {overhead['ratio_min']:.3f} | {overhead['goal']} |\n"
    )
    (output / "benchmarks.md").write_text(table)
    print(table, file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
