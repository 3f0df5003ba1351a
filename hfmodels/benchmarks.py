"""Benchmarks: every figure a ratio against a reference run in the same process on the same data, so it holds on
a noisy shared machine. `hfmodels bench [--quick]` or `python scripts/benchmark.py` prints a table and writes
`docs/benchmarks.md` and `docs/benchmarks.json` (raw timings, the machine, versions).

1. Training-loop overhead: seconds per step of hfmodels' engine and of `transformers.Trainer` against a minimal
   hand-written PyTorch loop: the same model, batches (the family's loader), optimizer, scheduler and clipping,
   timed over the same steps of the first epoch.
2. CPU efficiency: the GPT's achieved training FLOP/s at a few widths divided by the fp32 matmul FLOP/s
   measured in the same run (model FLOPs utilisation; on a GPU, the same against the bf16 matmul).
3. Generation: GPT tokens/s with the KV cache at batch 1 and 8 against transformers' `GPT2LMHeadModel` (SDPA) of
   the same dimensions, training tokens/s likewise, and generation with the cache against without it.
4. Data pipeline: samples/s the loader delivers from an image folder (PNG decode + transform) divided by the
   samples/s the model consumes in training steps.
5. Scaling: training samples/s of 2 processes (`accelerate launch --multi_gpu`, gloo on a CPU) against 1.
6. Memory: peak resident memory of training steps per family at a fixed batch, each in a fresh process.
7. App: prediction latency p50 / p95 of the image-classifier app through its API, one client and 8 at once,
   against the model called directly in this process.
Pairs are timed interleaved (reference, ours, reference, ours, ...), so drifts of the machine hit both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .testing import free_port

REPO = Path(__file__).resolve().parent.parent
BATCH = 16  # the image-classifier benchmarks' batch
FIRST, LAST = 10, 70  # timed steps; digits at batch 16 has 75 steps an epoch, so no evaluation falls inside
GPT_DIMENSIONS = {"vocab_size": 4096, "context": 256, "hidden_size": 256, "num_layers": 4, "num_heads": 4}
PROMPT_TOKENS, NEW_TOKENS, TRAIN_BATCH = 16, 64, 8


def row(name: str, unit: str, ours: list[float], reference: list[float] | None, reference_name: str | None,
        goal: str, higher_is_better: bool) -> dict[str, Any]:
    """One benchmark's raw values and ratios; `goal` is a bound on `ratio_median` such as ">= 1.0"."""
    result = {"name": name, "unit": unit, "goal": goal, "ours": summary(ours), "reference_name": reference_name,
              "reference": summary(reference) if reference else None, "ratio_median": None, "ratio_best": None}
    if reference:
        best = max if higher_is_better else min
        result["ratio_median"] = statistics.median(ours) / statistics.median(reference)
        result["ratio_best"] = best(ours) / best(reference)
    result["goal_met"] = goal_met(result["ratio_median"], goal)
    return result


def summary(values: list[float]) -> dict[str, Any]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "all": values}


def goal_met(ratio: float | None, goal: str) -> bool | None:
    if ratio is None or not goal.startswith((">", "<")):
        return None
    operator, bound = goal.split()
    return {">=": ratio >= float(bound), ">": ratio > float(bound), "<=": ratio <= float(bound),
            "<": ratio < float(bound)}[operator]


def interleaved(ours: Callable[[], float], reference: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Calls both measurements `repeats` times in turn, after one warm-up call each."""
    ours(), reference()
    ours_values, reference_values = [], []
    for _ in range(repeats):
        reference_values.append(reference())
        ours_values.append(ours())
    return ours_values, reference_values


# 1. Training-loop overhead ------------------------------------------------------------------------------------


def digits_setup(seed: int):
    from .data import load_source, with_validation_split
    from .families import get_family
    from .training import make_loader

    torch.manual_seed(seed)
    family = get_family("image-classifier")
    data = with_validation_split(load_source("digits"), seed=seed)
    model = family.build_model(data["train"], {})
    processor = family.build_processor(model.config)
    return family, data, model, processor, make_loader(data["train"], family, processor, True, BATCH, seed=seed)


def engine_seconds_per_step(seed: int, last: int) -> float:
    """`hfmodels.training.train`, timed from its log of step times."""
    from .training import TrainingArguments, train

    with tempfile.TemporaryDirectory() as folder:
        train(TrainingArguments(max_steps=last, batch_size=BATCH, logging_steps=FIRST, report_to="none",
                                output_dir=folder, seed=seed, warmup_ratio=0.1))
        log = json.loads((Path(folder) / "training_log.json").read_text())
    times = {record["step"]: record["time"] for record in log if "time" in record}
    return (times[last] - times[FIRST]) / (last - FIRST)


def hand_written_seconds_per_step(seed: int, last: int) -> float:
    """The loop a person writes by hand: the reference."""
    from transformers import get_scheduler

    family, _, model, _, loader = digits_setup(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=family.default_learning_rate, weight_decay=0.01)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=last // 10, num_training_steps=last)
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
        if step == last:
            return (time.perf_counter() - started) / (last - FIRST)
    raise RuntimeError("the epoch ended before the timed steps")


def trainer_seconds_per_step(seed: int, last: int) -> float:
    """`transformers.Trainer` on the same model, transformed rows, optimizer settings, schedule and clipping."""
    from transformers import Trainer, TrainerCallback
    from transformers import TrainingArguments as HfTrainingArguments

    family, data, model, processor, _ = digits_setup(seed)
    step_times: dict[int, float] = {}

    class StepTimes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            step_times[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        args = HfTrainingArguments(
            output_dir=folder, max_steps=last, per_device_train_batch_size=BATCH, learning_rate=family.default_learning_rate,
            weight_decay=0.01, lr_scheduler_type="cosine", warmup_steps=last // 10, max_grad_norm=1.0, seed=seed,
            logging_steps=FIRST, save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True, remove_unused_columns=False, dataloader_drop_last=True,
        )
        rows = data["train"].with_transform(family.transform(processor, train=True))
        Trainer(model=model, args=args, train_dataset=rows, data_collator=family.collate, callbacks=[StepTimes()]).train()
    return (step_times[last] - step_times[FIRST]) / (last - FIRST)


def training_loop_overhead(repeats: int, quick: bool) -> list[dict]:
    engine, hand, trainer = [], [], []
    for repeat in range(max(repeats, 3)):  # interleaved, so drifts of the machine hit all three alike
        hand.append(hand_written_seconds_per_step(repeat, LAST))
        engine.append(engine_seconds_per_step(repeat, LAST))
        trainer.append(trainer_seconds_per_step(repeat, LAST))
    name = f"training-loop overhead, digits classifier, batch {BATCH}, hfmodels engine"
    return [
        row(name, "s/step", engine, hand, "hand-written loop", "<= 1.05", higher_is_better=False),
        row(name, "s/step", engine, trainer, "transformers.Trainer", "< 1", higher_is_better=False),
    ]


# 2. CPU efficiency ---------------------------------------------------------------------------------------------


def matmul_flops_per_second(size: int = 1024, repeats: int = 5) -> float:
    """The best fp32 (CPU) or bf16 (GPU) matmul rate: the peak the model's rate is compared with."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        synchronize()
        started = time.perf_counter()
        a @ b
        synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def gpt_model(hidden_size: int, **overrides):
    from .models.gpt import GPTConfig, GPTForCausalLM

    d = GPT_DIMENSIONS
    config = {"vocab_size": d["vocab_size"], "max_position_embeddings": d["context"], "hidden_size": hidden_size,
              "num_hidden_layers": d["num_layers"], "num_attention_heads": d["num_heads"], "bos_token_id": 0,
              "eos_token_id": 0}
    return GPTForCausalLM(GPTConfig(**{**config, **overrides}))


def training_flops_per_token(model) -> float:
    """6 x the parameters used in matmuls (embedding lookups are not; the language-model head is, tied or not) plus
    attention's 12 x layers x context x width (scores and weighted values, forward and backward)."""
    config = model.config
    lookups = sum(p.numel() for name, p in model.named_parameters() if "embed_" in name)  # token and position tables
    head = config.vocab_size * config.hidden_size if config.tie_word_embeddings else 0  # named once, as embed_tokens
    matmul_parameters = model.num_parameters() - lookups + head
    return 6 * matmul_parameters + 12 * config.num_hidden_layers * config.max_position_embeddings * config.hidden_size


def cpu_efficiency(repeats: int, quick: bool) -> list[dict]:
    rows = []
    for hidden_size in (128, 256) if quick else (128, 256, 512):
        model = gpt_model(hidden_size).train()
        tokens = torch.randint(1, GPT_DIMENSIONS["vocab_size"], (TRAIN_BATCH, GPT_DIMENSIONS["context"]),
                               generator=torch.Generator().manual_seed(0))

        def model_rate() -> float:
            started = time.perf_counter()
            model(input_ids=tokens, labels=tokens).loss.backward()
            model.zero_grad(set_to_none=True)
            return training_flops_per_token(model) * tokens.numel() / (time.perf_counter() - started) / 1e9

        ours, peak = interleaved(model_rate, lambda: matmul_flops_per_second() / 1e9, repeats)
        precision = "bf16" if torch.cuda.is_available() else "fp32"
        rows.append(row(f"GPT training FLOP/s vs {precision} matmul FLOP/s (MFU), width {hidden_size}, "
                        f"{GPT_DIMENSIONS['num_layers']} layers, batch {TRAIN_BATCH} x {GPT_DIMENSIONS['context']}",
                        "GFLOP/s", ours, peak, f"{precision} 1024x1024 matmul", "(report)", higher_is_better=True))
    return rows


# 3. Generation -------------------------------------------------------------------------------------------------


def gpt2_reference():
    """transformers' GPT-2 of the GPT benchmarks' dimensions."""
    from transformers import GPT2Config, GPT2LMHeadModel

    d = GPT_DIMENSIONS
    return GPT2LMHeadModel(GPT2Config(
        vocab_size=d["vocab_size"], n_positions=d["context"], n_embd=d["hidden_size"], n_layer=d["num_layers"],
        n_head=d["num_heads"], bos_token_id=0, eos_token_id=0, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
        attn_implementation="sdpa",
    ))


def generation_tokens_per_second(model, batch: int, use_cache: bool = True) -> float:
    model.eval()
    prompt = torch.randint(1, GPT_DIMENSIONS["vocab_size"], (batch, PROMPT_TOKENS), generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=NEW_TOKENS,
                                min_new_tokens=NEW_TOKENS, do_sample=False, use_cache=use_cache)
    assert output.shape[1] == PROMPT_TOKENS + NEW_TOKENS
    return batch * NEW_TOKENS / (time.perf_counter() - started)


def training_tokens_per_second(model) -> float:
    model.train()
    tokens = torch.randint(1, GPT_DIMENSIONS["vocab_size"], (TRAIN_BATCH, GPT_DIMENSIONS["context"]),
                           generator=torch.Generator().manual_seed(2))
    started = time.perf_counter()
    model(input_ids=tokens, labels=tokens).loss.backward()
    model.zero_grad(set_to_none=True)
    return tokens.numel() / (time.perf_counter() - started)


def generation(repeats: int, quick: bool) -> list[dict]:
    torch.manual_seed(0)
    reference, ours = gpt2_reference(), gpt_model(GPT_DIMENSIONS["hidden_size"])
    d = GPT_DIMENSIONS
    size = f"{d['num_layers']} layers, width {d['hidden_size']}, vocab {d['vocab_size']}"
    gpt2 = "transformers GPT2LMHeadModel"
    rows = []
    for batch in (1, 8):
        values = interleaved(lambda: generation_tokens_per_second(ours, batch),
                             lambda: generation_tokens_per_second(reference, batch), repeats)
        rows.append(row(f"GPT greedy generation with KV cache, batch {batch}, {NEW_TOKENS} new tokens ({size})",
                        "tokens/s", *values, gpt2, ">= 1.0", higher_is_better=True))
    values = interleaved(lambda: training_tokens_per_second(ours), lambda: training_tokens_per_second(reference), repeats)
    rows.append(row(f"GPT training step, batch {TRAIN_BATCH} x {d['context']} tokens ({size})", "tokens/s", *values,
                    gpt2, ">= 1.0", higher_is_better=True))
    values = interleaved(lambda: generation_tokens_per_second(ours, 1),
                         lambda: generation_tokens_per_second(ours, 1, use_cache=False), repeats)
    rows.append(row(f"GPT greedy generation, KV cache vs none, batch 1, {NEW_TOKENS} new tokens", "tokens/s", *values,
                    "the same model without cache", "> 1", higher_is_better=True))
    return rows


# 4. Data pipeline ----------------------------------------------------------------------------------------------


def write_image_folder(root: Path, count: int, size: int = 64) -> Path:
    """Digits images, upscaled to `size` x `size` PNGs, in the `<root>/train/<class>/<file>` layout."""
    from PIL import Image

    from .data.digits import digits_pixels

    images, labels = digits_pixels()
    for index in range(count):
        folder = root / "train" / str(labels[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").resize((size, size)).save(folder / f"{index}.png")
    return root


def data_pipeline(repeats: int, quick: bool) -> list[dict]:
    from .data import load_source
    from .families import get_family
    from .training import make_loader

    family = get_family("image-classifier")
    with tempfile.TemporaryDirectory() as folder:
        data = load_source(str(write_image_folder(Path(folder), 320 if quick else 960)))
        model = family.build_model(data["train"], {})
        processor = family.build_processor(model.config)
        loader = make_loader(data["train"], family, processor, True, BATCH)
        batches = list(loader)
        optimizer = torch.optim.AdamW(model.parameters())
        model.train()

        def delivered() -> float:
            started, count = time.perf_counter(), 0
            for batch in loader:  # decode every PNG and transform it, as an epoch does
                count += len(batch["labels"])
            return count / (time.perf_counter() - started)

        def consumed() -> float:
            started = time.perf_counter()
            for batch in batches:
                model(**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            return sum(len(batch["labels"]) for batch in batches) / (time.perf_counter() - started)

        values = interleaved(delivered, consumed, repeats)
    side = model.config.image_size
    return [row(f"data pipeline: image-folder loader (PNG decode + transform, 0 workers) vs training consumption, "
                f"image classifier at {side}x{side}, batch {BATCH}", "samples/s", *values, "training steps",
                ">= 3", higher_is_better=True)]


# 5. Scaling ----------------------------------------------------------------------------------------------------


def training_samples_per_second(processes: int, steps: int) -> float:
    """Samples/s (all processes together) of a digits run, median of its logged steps after the first."""
    with tempfile.TemporaryDirectory() as folder:
        arguments = ["--max-steps", str(steps), "--batch-size", "32", "--logging-steps", "5", "--report-to", "none",
                     "--output-dir", folder]
        threads = max(1, (os.cpu_count() or 1) // processes)  # the same cores, shared between the processes
        if processes == 1:
            command = [sys.executable, str(REPO / "scripts" / "train.py"), *arguments]
        else:
            command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                       str(processes), "--main_process_port", str(free_port()), str(REPO / "scripts" / "train.py"),
                       *arguments]
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, capture_output=True, env=environment, timeout=900)
        log = json.loads((Path(folder) / "training_log.json").read_text())
    rates = [record["samples_per_second"] for record in log if "samples_per_second" in record][1:]
    return statistics.median(rates)


def scaling(repeats: int, quick: bool) -> list[dict]:
    steps = 30 if quick else 60
    values = interleaved(lambda: training_samples_per_second(2, steps), lambda: training_samples_per_second(1, steps),
                         max(1, repeats // 2))
    return [row(f"scaling: digits classifier, 2 processes (accelerate launch, gloo) vs 1, batch 32 per process, "
                f"{os.cpu_count()} cores shared", "samples/s", *values, "1 process", "(report)", higher_is_better=True)]


# 6. Memory -----------------------------------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import json, re, sys, torch
    from hfmodels.data import load_source, with_validation_split
    from hfmodels.families import get_family
    from hfmodels.training import make_loader

    def status(field):  # kB, from the kernel's account of this process
        return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))

    family = get_family(sys.argv[1])
    data = with_validation_split(load_source(family.default_dataset), seed=0)
    model, processor = family.build(data["train"], {"vocab_size": 1024} if "text" in family.columns else {})
    batches = iter(make_loader(data["train"], family, processor, True, int(sys.argv[2])))
    first = next(batches)
    optimizer = torch.optim.AdamW(model.parameters())
    model.train()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets the peak (VmHWM) to the current resident set: the peak of the steps alone
    before = status("VmRSS")
    for batch in (first, next(batches), next(batches)):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    print(json.dumps({"before": before * 1024, "peak": status("VmHWM") * 1024, "parameters": model.num_parameters()}))
    """
)


def memory(repeats: int, quick: bool) -> list[dict]:
    from .families import FAMILIES

    rows = []
    for name in FAMILIES:
        result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, name, str(BATCH)], capture_output=True, text=True,
                                check=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        probe = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append(row(f"memory: peak resident set of 3 training steps, {name} (default config and data, text: vocab 1024, "
                        f"{probe['parameters']:,} parameters), batch {BATCH}", "MiB", [probe["peak"] / 2**20],
                        [probe["before"] / 2**20], "resident before the steps", "(report)", higher_is_better=False))
    return rows


# 7. App ------------------------------------------------------------------------------------------------------


def app_latency(repeats: int, quick: bool) -> list[dict]:
    """The image-classifier app served on 127.0.0.1, called through its API (gradio_client), against the same model
    called directly in this process (processor + forward) on the same image."""
    from .app.server import build, measure_latency, percentile
    from .app.views import launch
    from .data import load_source
    from .families import get_family

    family = get_family("image-classifier")
    data = load_source("digits")
    model, processor = family.build(data["train"], {})
    model.eval()
    image = data["test"][0]["image"]
    direct = []
    with torch.no_grad():
        for _ in range(50):
            started = time.perf_counter()
            model(**processor(image, return_tensors="pt"))
            direct.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        image.save(Path(folder) / "digit.png")
        app = build(folder, examples=False)
        launch(app, port=free_port(), block=False)
        try:
            measured = measure_latency(app.local_url, Path(folder) / "digit.png", requests=10 if quick else 25, clients=8)
        finally:
            app.close()
    alone, loaded = measured["single_client"], measured["concurrent"]
    errors = len(measured["errors"])
    reference = "direct model call in-process"
    name = "app prediction latency (digits classifier, gradio API over 127.0.0.1)"
    return [
        row(f"{name}, one client, p50", "s", [alone["p50_s"]], [statistics.median(direct)], reference, "(report)", False),
        row(f"{name}, one client, p95", "s", [alone["p95_s"]], [percentile(direct, 0.95)], reference, "(report)", False),
        row(f"{name}, 8 concurrent clients, p50 ({loaded['requests']} requests, {errors} errors, "
            f"{loaded['throughput_per_s']:.1f} requests/s)", "s", [loaded["p50_s"]], [alone["p50_s"]], "one client",
            "(report)", False),
        row(f"{name}, 8 concurrent clients, p95", "s", [loaded["p95_s"]], [alone["p95_s"]], "one client", "(report)", False),
    ]


SECTIONS = {
    "overhead": training_loop_overhead, "efficiency": cpu_efficiency, "generation": generation,
    "data": data_pipeline, "scaling": scaling, "memory": memory, "app": app_latency,
}


def machine() -> dict[str, Any]:
    import accelerate
    import datasets
    import transformers

    from . import __version__

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "gpu_driver": torch.version.cuda if torch.cuda.is_available() else None,
        "versions": {"hfmodels": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "accelerate": accelerate.__version__, "datasets": datasets.__version__,
                     "python": platform.python_version()},
    }


def markdown_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Benchmarks", "",
        f"`hfmodels bench{' --quick' if result['quick'] else ''}` ({result['repeats']} repeats): each figure against a "
        "reference run in the same process, timed interleaved; medians, with the ratio of the best runs beside.", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, GPU: {m['gpu']}. "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".", "",
        "| benchmark | unit | hfmodels | reference | ratio (median) | ratio (best) | goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["benchmarks"]:
        reference = f"{r['reference']['median']:.4g} ({r['reference_name']})" if r["reference"] else "–"
        ratios = [f"{r[key]:.3f}" if r[key] is not None else "–" for key in ("ratio_median", "ratio_best")]
        met = {True: "yes", False: "**no**", None: "–"}[r["goal_met"]]
        lines.append(f"| {r['name']} | {r['unit']} | {r['ours']['median']:.4g} | {reference} | {' | '.join(ratios)} "
                     f"| {r['goal']} | {met} |")
    return "\n".join(lines) + "\n"


def run(sections: list[str], repeats: int, quick: bool, output: Path) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    result: dict[str, Any] = {"machine": machine(), "quick": quick, "repeats": repeats, "benchmarks": []}
    for name in sections:
        started = time.time()
        result["benchmarks"] += SECTIONS[name](repeats, quick)
        print(f"{name}: {time.time() - started:.0f}s", file=sys.stderr)
    output.mkdir(parents=True, exist_ok=True)
    (output / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n")
    (output / "benchmarks.md").write_text(markdown_table(result))
    return result


def main(argv: list[str] | None = None, prog: str = "hfmodels bench") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer repeats and steps (a few minutes on 2 CPU cores).")
    parser.add_argument("--repeats", type=int, help="Repeats of each measurement (default: 5, or 2 with --quick).")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="Sections to run.")
    parser.add_argument("--output", default="docs", help="Folder for benchmarks.md and benchmarks.json.")
    args = parser.parse_args(argv)
    result = run(args.only, args.repeats or (2 if args.quick else 5), args.quick, Path(args.output))
    print(markdown_table(result))
    return 0
