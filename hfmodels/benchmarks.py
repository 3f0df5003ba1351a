"""Benchmarks: every figure a ratio against a reference run alongside it (same benchmark run, same data), so it
holds on a noisy shared machine. `hfmodels bench [--quick]` or `python scripts/benchmark.py` prints a table and writes
`docs/benchmarks.md` and `docs/benchmarks.json` (raw timings, the machine, versions).

1. Training-loop overhead: seconds per step of hfmodels' engine and of `transformers.Trainer` against a minimal
   hand-written PyTorch loop (a plain DataLoader over the same transformed rows, `torch.optim.AdamW` - the
   Trainer set to it too, its default being the fused kernel -, cosine schedule, clipping, the loss read every
   10 steps): the same model, batch 16, settings and seeds. A step takes ~10-14 ms on 2 CPU cores and the loops
   differ by a few tenths of a ms, less than this shared VM drifts over seconds (+-10%, seen within one process
   as much as between processes), so the comparison is built against noise:
   - each loop runs in a fresh process of its own (no allocator, thread-pool, import or RNG state carried from
     one loop to another, nor an order between them), all three started at once;
   - after the first step they take turns of 10 steps (A B C A B C ..., the order rotated every repeat), so
     drifts of the machine hit all three alike; the wait for a turn is not counted in any step;
   - each trains 300 steps (150 with --quick), 4 (2) epochs of digits, and the figure is the mean step from
     step 11 on, less the first step of every epoch, which holds the epoch change (the engine's validation pass,
     a new data iterator): 287 (139) timed steps a run. The run ends at its last step (what follows, such as the
     engine's saving, is not measured);
   - a repeat waits for a quiet machine and is run again (3 tries, the least disturbed kept) when other
     processes kept more than 10% of the cores busy meanwhile: one busy neighbour makes every step of a
     2-thread loop on 2 cores several times slower. The JSON keeps every run (mean, median step, that share)
     and the ratio of each repeat's runs; the table's "ratio (median)" is the median of those ratios (the
     ratio of the median runs is kept as ratio_median_of_medians), "ratio (best)" the best run's against the best.
2. CPU efficiency: the GPT's achieved training FLOP/s at a few widths divided by the fp32 matmul FLOP/s
   measured in the same run (model FLOPs utilisation; on a GPU, the same against the bf16 matmul).
3. Generation: GPT tokens/s with the KV cache at batch 1 and 8 against transformers' `GPT2LMHeadModel` (SDPA) of
   the same dimensions, training tokens/s likewise, and generation with the cache against without it.
4. Data pipeline: samples/s the loader delivers from an image folder (PNG decode + transform) divided by the
   samples/s the model consumes in training steps; on a folder of 1-2 MP JPEGs, the loader of a later epoch
   (images decoded once at the model's size, read from the cache) against the training steps and against
   re-decoding every JPEG every epoch, and the first epoch's cost (the decode pass, then the epoch) against an
   epoch that re-decodes.
5. Scaling: training samples/s of 2 processes (`accelerate launch --multi_gpu`, gloo on a CPU) against 1.
6. Memory: peak resident memory of training steps per family at a fixed batch, each in a fresh process.
7. App: prediction latency p50 / p95 of the image-classifier app through its API, one client and 8 at once,
   against the model called directly in this process; a 2,000 x 2,000 JPEG upload against the small PNG.
8. ONNX inference: onnxruntime against PyTorch eager on the graph `hfmodels export onnx` writes, for the image
   classifier and the GPT.
9. Generative quality: the Frechet distance between 500 samples of the diffusion model (DDIM, 50 steps) and the
   digits test split against that of the VAE's samples, both trained with their family's defaults (--quick: a
   quarter of the epochs), in the features of an independent judge (`hfmodels.testing.digits_judge`: a PCA of the
   digits pixels), one sample seed per repeat.
10. Fine-tuning: a training step of the image classifier on a ResNet backbone with the backbone frozen and with a
   LoRA adapter, and of the text classifier with a LoRA adapter, each against the full fine-tune of the same model,
   and the parameters each trains.
Pairs are timed interleaved (reference, ours, reference, ours, ...), so drifts of the machine hit both alike; the
loop overhead (1) and memory (6) runs each take a fresh process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import itertools
import json
import os
import platform
import select
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

from .atomic import write_atomically
from .testing import free_port

BATCH = 16  # the image-classifier benchmarks' batch
LOGGING_STEPS = 10  # the engine's default; the Trainer's is set alike
WARMUP_STEPS = 10  # untimed steps at the start of each training-loop run
LOOP_STEPS, LOOP_STEPS_QUICK = 300, 150  # steps a training-loop run: 4 and 2 epochs of digits at batch 16
BLOCK = 10  # steps a loop makes in its turn
OTHERS_LIMIT, RUN_TRIES = 0.10, 3  # a repeat while other processes kept > 10% of the cores busy is run again
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


def interleaved(ours: Callable[[], float], reference: Callable[[], float], repeats: int, warm_up: bool = True
                ) -> tuple[list[float], list[float]]:
    """Calls both measurements `repeats` times in turn, after one warm-up call each (pointless, and left out, where
    each call starts processes of its own)."""
    if warm_up:
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

    torch.manual_seed(seed)
    family = get_family("image-classifier")
    data = with_validation_split(load_source("digits"), seed=seed)
    model = family.build_model(data["train"], {})
    processor = family.build_processor(model.config)
    return family, data, model, processor


def plain_loader(family, data, processor, seed: int):
    """The DataLoader a person writes (the one `transformers.Trainer` builds too): transformed rows, shuffled, whole
    batches."""
    rows = data["train"].with_transform(family.transform(processor, train=True))
    return torch.utils.data.DataLoader(rows, batch_size=BATCH, shuffle=True, drop_last=True, collate_fn=family.collate,
                                       generator=torch.Generator().manual_seed(seed))


class LoopDone(Exception):
    """Raised by the clock after a loop's last step: what a run does after its steps (the engine's last evaluation,
    saving the model) is not measured, so it is not waited for either."""


class StepClock:
    """Called by a loop under test after each optimizer step: keeps every step's duration, and ends the loop with
    LoopDone after `steps` steps. Run by `interleaved_loops` (HFMODELS_BENCH_FDS set), it hands the machine over
    after step 1 and every BLOCK steps after, and waits for its next turn; the wait is not counted in any step."""

    def __init__(self, steps: int):
        self.steps, self.durations, self.last = steps, [], time.perf_counter()
        fds = os.environ.get("HFMODELS_BENCH_FDS")
        self.signal, self.turn = map(int, fds.split(",")) if fds else (None, None)

    def __call__(self) -> None:
        now = time.perf_counter()
        self.durations.append(now - self.last)
        self.last = now
        step = len(self.durations)
        if self.signal is not None and (step == self.steps or (step - 1) % BLOCK == 0):
            os.write(self.signal, b"d" if step == self.steps else b"p")  # done: it ends once all are done
            os.read(self.turn, 1)
            self.last = time.perf_counter()
        if step == self.steps:
            raise LoopDone


def engine_steps(seed: int, steps: int, clock: StepClock) -> None:
    """`hfmodels.training.train` with its defaults but the batch; the clock is read where it reports each optimizer
    step, one wrapper call more a step."""
    from .training import TrainingArguments, loop, train

    update = loop.StepProgress.update

    def clocked_update(self, *args, **kwargs):
        clock()
        return update(self, *args, **kwargs)

    loop.StepProgress.update = clocked_update
    with tempfile.TemporaryDirectory() as folder:
        train(TrainingArguments(max_steps=steps, batch_size=BATCH, logging_steps=LOGGING_STEPS, report_to="none",
                                output_dir=folder, seed=seed))


def hand_written_steps(seed: int, steps: int, clock: StepClock) -> None:
    """The loop a person writes by hand: the reference."""
    from transformers import get_scheduler

    family, data, model, processor = digits_setup(seed)
    loader = plain_loader(family, data, processor, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=family.default_learning_rate, weight_decay=0.01)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=steps // 10, num_training_steps=steps)
    model.train()
    step = 0
    while True:  # epochs, until the clock ends the run
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % LOGGING_STEPS == 0:
                print(f"step {step}: loss {loss.item():.4f}")  # a progress line, as the engine logs
            clock()


def trainer_steps(seed: int, steps: int, clock: StepClock) -> None:
    """`transformers.Trainer` on the same model, transformed rows, optimizer, schedule and clipping."""
    from transformers import Trainer, TrainerCallback
    from transformers import TrainingArguments as HfTrainingArguments

    family, data, model, processor = digits_setup(seed)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock()

    with tempfile.TemporaryDirectory() as folder:
        args = HfTrainingArguments(
            output_dir=folder, max_steps=steps, per_device_train_batch_size=BATCH,
            learning_rate=family.default_learning_rate, weight_decay=0.01, lr_scheduler_type="cosine",
            warmup_steps=steps // 10, max_grad_norm=1.0, seed=seed, logging_steps=LOGGING_STEPS, save_strategy="no",
            report_to=[], use_cpu=not torch.cuda.is_available(), disable_tqdm=True, remove_unused_columns=False,
            dataloader_drop_last=True,
            optim="adamw_torch",  # torch.optim.AdamW as the other two make it (the default is the fused kernel)
        )
        rows = data["train"].with_transform(family.transform(processor, train=True))
        Trainer(model=model, args=args, train_dataset=rows, data_collator=family.collate, callbacks=[Clock()]).train()


LOOPS = {"hand-written": hand_written_steps, "engine": engine_steps, "trainer": trainer_steps}
RESULT_MARK = "\nloop_probe result: "  # before the probe's JSON, after whatever the loop printed

LOOP_PROBE = textwrap.dedent(
    """
    import json, sys
    exec(sys.argv[4])  # a prelude: e.g. a change to the engine, to measure before it is made
    from hfmodels.benchmarks import RESULT_MARK as MARK, loop_probe
    print(MARK + json.dumps(loop_probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))), flush=True)
    """
)


def loop_probe(variant: str, seed: int, steps: int) -> dict[str, Any]:
    """One run of one training loop (in a fresh process): each step's duration, and the epoch length."""
    from .data import load_source, with_validation_split

    clock = StepClock(steps)
    try:
        LOOPS[variant](seed, steps, clock)
    except LoopDone:
        pass
    else:
        raise RuntimeError(f"the {variant} loop ended before its clock counted {steps} steps")
    steps_per_epoch = len(with_validation_split(load_source("digits"), seed=seed)["train"]) // BATCH
    return {"durations": clock.durations, "steps_per_epoch": steps_per_epoch}


def timed_steps(durations: list[float], steps_per_epoch: int, warmup: int = WARMUP_STEPS) -> list[float]:
    """The durations of steps `warmup + 1` on, less the first step of every epoch: it holds the epoch change (a
    new data iterator; the engine's evaluation)."""
    return [durations[s - 1] for s in range(warmup + 1, len(durations) + 1) if (s - 1) % steps_per_epoch]


def busy_cpu_seconds() -> tuple[float, int] | None:
    """CPU-seconds the machine's cores have spent busy since boot, and the number of cores (Linux), else None."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        ticks = [int(x) for x in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError, IndexError):
        return None
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), cores


def process_cpu_seconds(pid: int) -> float:
    """CPU-seconds a live process has used, with its children that ended (Linux), else 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def wait_for_quiet(timeout: float = 30.0, window: float = 0.5) -> None:
    """Waits (at most `timeout` seconds) for a `window` in which the cores are busy less than OTHERS_LIMIT: test
    runs of others on a shared machine come and go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = busy_cpu_seconds()
        if before is None:
            return
        time.sleep(window)
        if (busy_cpu_seconds()[0] - before[0]) / (window * before[1]) < OTHERS_LIMIT:
            return


def interleaved_loops(variants: list[str], seed: int, steps: int, preludes: dict[str, str] | None = None
                      ) -> dict[str, Any]:
    """One repeat: each loop in a fresh process of its own (no allocator, thread-pool, import or RNG state carried
    over from another), all started at once, then run one at a time in turns of BLOCK steps (A B C A B C ...)
    until each has made `steps` steps, so drifts of the machine's speed (seconds long on a shared VM) hit all
    alike. `variants` are LOOPS names, or `name+label` with Python to run first in that process in
    `preludes[label]` (to A/B a change to a loop). Returns each variant's mean and median timed step and
    `others_cpu`: the share of the cores other processes kept busy while the loops took turns."""
    with contextlib.ExitStack() as stack:
        children = {}
        for variant in variants:
            loop, _, label = variant.partition("+")
            signal_read, signal_write = os.pipe()
            turn_read, turn_write = os.pipe()
            stack.callback(os.close, signal_read), stack.callback(os.close, turn_write)
            output = stack.enter_context(tempfile.TemporaryFile("w+"))
            process = subprocess.Popen(
                [sys.executable, "-c", LOOP_PROBE, loop, str(seed), str(steps), (preludes or {}).get(label, "")],
                stdout=output, stderr=subprocess.STDOUT, text=True, pass_fds=(signal_write, turn_read),
                env={**os.environ, "HFMODELS_BENCH_FDS": f"{signal_write},{turn_read}"},
            )
            stack.callback(stop, process)
            os.close(signal_write), os.close(turn_read)
            children[variant] = (process, signal_read, turn_write, output)

        def failed(variant: str) -> RuntimeError:
            process, _, _, output = children[variant]
            stop(process)
            output.seek(0)
            return RuntimeError(f"training-loop run {variant} failed:\n{output.read()[-3000:]}")

        def next_signal(variant: str) -> bytes:
            signal_read = children[variant][1]
            signal = os.read(signal_read, 1) if select.select([signal_read], [], [], 900)[0] else b""
            if signal not in (b"p", b"d"):
                raise failed(variant)
            return signal

        for variant in variants:  # step 1 (with the set-up) made by all at once
            next_signal(variant)
        cpu = busy_cpu_seconds()
        ours = sum(process_cpu_seconds(children[variant][0].pid) for variant in variants)
        started, running = time.perf_counter(), list(variants)
        while running:
            for variant in list(running):
                os.write(children[variant][2], b"g")
                if next_signal(variant) == b"d":
                    running.remove(variant)
        wall = time.perf_counter() - started
        ours = sum(process_cpu_seconds(children[variant][0].pid) for variant in variants) - ours
        others = None if cpu is None else max(0.0, (busy_cpu_seconds()[0] - cpu[0] - ours) / (wall * cpu[1]))
        for _, _, turn_write, _ in children.values():
            os.write(turn_write, b"g")  # the runs end
        results = {}
        for variant, (process, _, _, output) in children.items():
            if process.wait(timeout=900):
                raise failed(variant)
            output.seek(0)
            probe = json.loads(output.read().split(RESULT_MARK)[-1].splitlines()[0])
            durations = timed_steps(probe["durations"], probe["steps_per_epoch"])
            results[variant] = {"mean": statistics.fmean(durations), "median": statistics.median(durations),
                                "steps": len(durations), "others_cpu": others}
        return results


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def loop_repeat(variants: list[str], seed: int, steps: int, preludes: dict[str, str] | None = None) -> dict[str, Any]:
    """`interleaved_loops` on a quiet machine: waits for one, and runs a repeat again (RUN_TRIES in all) when other
    processes took more than OTHERS_LIMIT of the cores meanwhile, keeping the least disturbed one. On 2 cores one
    busy neighbour makes every step of a 2-thread loop several times slower, far from proportionally alike."""
    kept = None
    for tries in range(1, RUN_TRIES + 1):
        wait_for_quiet()
        result = interleaved_loops(variants, seed, steps, preludes)
        others = result[variants[0]]["others_cpu"]
        if kept is None or (others or 0.0) < (kept[variants[0]]["others_cpu"] or 0.0):
            kept = result
        if others is None or others <= OTHERS_LIMIT:
            break
    for run in kept.values():
        run["tries"] = tries
    return kept


def training_loop_overhead(repeats: int, quick: bool) -> list[dict]:
    """The three loops interleaved, each in its own process; the order of the turns rotated every repeat."""
    steps = LOOP_STEPS_QUICK if quick else LOOP_STEPS
    names = list(LOOPS)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for repeat in range(repeats):
        result = loop_repeat(names[repeat % 3:] + names[:repeat % 3], repeat, steps)
        for name in names:
            runs[name].append(result[name])
    timed = runs["engine"][0]["steps"]
    prefix = (f"training-loop overhead, digits classifier, batch {BATCH}, mean s/step of {timed} steps a run "
              f"(steps {WARMUP_STEPS + 1}-{steps} less each epoch's first), the loops in turns of {BLOCK} steps, "
              "each in its own process")

    def compared(ours: str, reference: str, reference_name: str, goal: str) -> dict[str, Any]:
        result = row(f"{prefix}, {'hfmodels engine' if ours == 'engine' else 'transformers.Trainer'}", "s/step",
                     [run["mean"] for run in runs[ours]], [run["mean"] for run in runs[reference]], reference_name,
                     goal, higher_is_better=False)
        # a repeat's runs took turns, so the ratio within a repeat is the least noisy figure: the median over
        # repeats of that ratio is the one the goal is judged on
        ratios = [a["mean"] / b["mean"] for a, b in zip(runs[ours], runs[reference])]
        result["ratios_by_repeat"] = summary(ratios)
        result["ratio_median_of_medians"] = result["ratio_median"]
        result["ratio_median"] = statistics.median(ratios)
        result["goal_met"] = goal_met(result["ratio_median"], goal)
        result["runs"] = {"ours": runs[ours], "reference": runs[reference]}  # each run's median step, others_cpu
        return result

    return [
        compared("engine", "hand-written", "hand-written loop", "<= 1.05"),
        compared("engine", "trainer", "transformers.Trainer", "< 1"),
        compared("trainer", "hand-written", "hand-written loop", "(report)"),
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


def training_tokens(seed: int) -> torch.Tensor:
    """A batch of random token ids for a GPT training step, (TRAIN_BATCH, context)."""
    return torch.randint(1, GPT_DIMENSIONS["vocab_size"], (TRAIN_BATCH, GPT_DIMENSIONS["context"]),
                         generator=torch.Generator().manual_seed(seed))


def training_tokens_per_second(model, tokens: torch.Tensor) -> float:
    """One training step (forward and backward) on `tokens`."""
    model.train()
    started = time.perf_counter()
    model(input_ids=tokens, labels=tokens).loss.backward()
    model.zero_grad(set_to_none=True)
    return tokens.numel() / (time.perf_counter() - started)


def training_gflops_per_second(model, tokens: torch.Tensor) -> float:
    return training_flops_per_token(model) * training_tokens_per_second(model, tokens) / 1e9


def cpu_efficiency(repeats: int, quick: bool) -> list[dict]:
    rows = []
    for hidden_size in (128, 256) if quick else (128, 256, 512):
        model = gpt_model(hidden_size)
        ours, peak = interleaved(functools.partial(training_gflops_per_second, model, training_tokens(0)),
                                 lambda: matmul_flops_per_second() / 1e9, repeats)
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
    prompt = torch.randint(1, GPT_DIMENSIONS["vocab_size"], (batch, PROMPT_TOKENS),
                           generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=NEW_TOKENS,
                                min_new_tokens=NEW_TOKENS, do_sample=False, use_cache=use_cache)
    assert output.shape[1] == PROMPT_TOKENS + NEW_TOKENS
    return batch * NEW_TOKENS / (time.perf_counter() - started)


def generation(repeats: int, quick: bool) -> list[dict]:
    torch.manual_seed(0)
    reference, ours = gpt2_reference(), gpt_model(GPT_DIMENSIONS["hidden_size"])
    d = GPT_DIMENSIONS
    size = f"{d['num_layers']} layers, width {d['hidden_size']}, vocab {d['vocab_size']}"
    gpt2 = "transformers GPT2LMHeadModel"
    rows = []
    for batch in (1, 8):
        values = interleaved(functools.partial(generation_tokens_per_second, ours, batch),
                             functools.partial(generation_tokens_per_second, reference, batch), repeats)
        rows.append(row(f"GPT greedy generation with KV cache, batch {batch}, {NEW_TOKENS} new tokens ({size})",
                        "tokens/s", *values, gpt2, ">= 1.0", higher_is_better=True))
    tokens = training_tokens(2)
    values = interleaved(functools.partial(training_tokens_per_second, ours, tokens),
                         functools.partial(training_tokens_per_second, reference, tokens), repeats)
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
    return small_image_pipeline(repeats, quick) + real_size_pipeline(repeats, quick)


def small_image_pipeline(repeats: int, quick: bool) -> list[dict]:
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


def write_real_size_folder(root: Path, count: int) -> Path:
    """`count` JPEGs of 0.9-2.2 megapixels (the pneumonia stand-in's real-size pictures, a few RGB), half of each
    class, in the `<root>/train/<class>/<file>` layout."""
    import numpy as np

    from .data.pneumonia_demo import RGB_FRACTION, real_size_image

    rng = np.random.default_rng(0)
    for index in range(count):
        name = ("NORMAL", "PNEUMONIA")[index % 2]
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        picture = real_size_image(rng, name == "PNEUMONIA", rgb=rng.random() < RGB_FRACTION)
        picture.save(folder / f"{index:04d}.jpeg", quality=90)
    return root


def real_size_pipeline(repeats: int, quick: bool) -> list[dict]:
    """A folder of 1-2 MP JPEGs through the image classifier's loader: decoded once at the model's input size
    (data/decoded.py) against re-decoding every file in every epoch (the path before issue 23), in the same run."""
    from .data import load_source
    from .data.decoded import cache_file, decoded_images
    from .families import get_family
    from .training import make_loader

    family = get_family("image-classifier")
    with tempfile.TemporaryDirectory() as folder:
        data = load_source(str(write_real_size_folder(Path(folder), 64 if quick else 192)), check_images=False)
        model = family.build_model(data["train"], {})
        processor = family.build_processor(model.config)
        side, channels = model.config.image_size, model.config.num_channels

        def decode_pass() -> Any:
            cache_file(data["train"], side, channels)[0].unlink(missing_ok=True)  # as a first run finds it
            return decoded_images(data, side, channels)["train"]

        decoded = decode_pass()
        raw_loader = make_loader(data["train"], family, processor, True, BATCH)
        decoded_loader = make_loader(decoded, family, processor, True, BATCH)
        batches = list(decoded_loader)
        optimizer = torch.optim.AdamW(model.parameters())
        model.train()

        def epoch_seconds(loader) -> float:
            started = time.perf_counter()
            for _ in loader:
                pass
            return time.perf_counter() - started

        def first_epoch_seconds() -> float:  # the decode pass, then an epoch over what it wrote
            started = time.perf_counter()
            rows = decode_pass()
            return time.perf_counter() - started + epoch_seconds(make_loader(rows, family, processor, True, BATCH))

        def consumed() -> float:
            started = time.perf_counter()
            for batch in batches:
                model(**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            return sum(len(batch["labels"]) for batch in batches) / (time.perf_counter() - started)

        def delivered() -> float:  # a later epoch: the decoded images read from the cache
            return count / epoch_seconds(decoded_loader)

        def redecoded() -> float:
            return count / epoch_seconds(raw_loader)

        count = len(decoded)
        second_vs_training = interleaved(delivered, consumed, repeats)
        second_vs_redecoding = interleaved(delivered, redecoded, repeats, warm_up=False)
        first_vs_redecoding = interleaved(first_epoch_seconds, functools.partial(epoch_seconds, raw_loader), repeats,
                                          warm_up=False)
    what = f"{count} JPEGs of 0.9-2.2 MP, image classifier at {side}x{side}, batch {BATCH}, 0 workers"
    return [
        row(f"real-size data: loader in a later epoch (decoded once, read from the cache) vs training consumption; "
            f"{what}", "samples/s", *second_vs_training, "training steps", ">= 3", higher_is_better=True),
        row(f"real-size data: loader in a later epoch, decoded once vs re-decoding every JPEG every epoch; {what}",
            "samples/s", *second_vs_redecoding, "re-decoding every epoch", "> 1", higher_is_better=True),
        row(f"real-size data: first epoch's cost (the decode pass writing the cache, then the epoch) vs an epoch "
            f"re-decoding every JPEG; {what}", "s", *first_vs_redecoding, "re-decoding epoch", "<= 1",
            higher_is_better=False),
    ]


# 5. Scaling ----------------------------------------------------------------------------------------------------


def training_samples_per_second(processes: int, steps: int) -> float:
    """Samples/s (all processes together) of a digits run, median of its logged steps after the first."""
    with tempfile.TemporaryDirectory() as folder:
        arguments = ["--max-steps", str(steps), "--batch-size", "32", "--logging-steps", "5", "--report-to", "none",
                     "--output-dir", folder]
        threads = max(1, (os.cpu_count() or 1) // processes)  # the same cores, shared between the processes
        # `hfmodels train` as a module (what scripts/train.py runs), so an installed hfmodels measures it too
        if processes == 1:
            command = [sys.executable, "-m", "hfmodels.cli", "train", *arguments]
        else:
            command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                       str(processes), "--main_process_port", str(free_port()), "-m", "hfmodels.cli", "train",
                       *arguments]
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, capture_output=True, env=environment, timeout=900)
        log = json.loads((Path(folder) / "training_log.json").read_text())
    rates = [record["samples_per_second"] for record in log if "samples_per_second" in record][1:]
    return statistics.median(rates)


def scaling(repeats: int, quick: bool) -> list[dict]:
    steps = 30 if quick else 60
    values = interleaved(lambda: training_samples_per_second(2, steps), lambda: training_samples_per_second(1, steps),
                         max(1, repeats // 2), warm_up=False)
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

    def probe(name: str) -> dict[str, Any]:
        result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, name, str(BATCH)], capture_output=True, text=True,
                                check=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return json.loads(result.stdout.strip().splitlines()[-1])

    # one thread each, as many at once as there are cores: a process's peak is its own, whoever runs beside it
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        probes = dict(zip(FAMILIES, pool.map(probe, FAMILIES)))
    rows = []
    for name, measured in probes.items():
        rows.append(row(f"memory: peak resident set of 3 training steps, {name} (default config and data, "
                        f"text: vocab 1024, {measured['parameters']:,} parameters), batch {BATCH}", "MiB",
                        [measured["peak"] / 2**20], [measured["before"] / 2**20], "resident before the steps",
                        "(report)", higher_is_better=False))
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
        image.convert("L").resize((2000, 2000)).save(Path(folder) / "xray-size.jpeg", quality=90)
        app = build(folder, examples=False)
        launch(app, port=free_port(), block=False)
        try:
            measured = measure_latency(app.local_url, Path(folder) / "digit.png", requests=10 if quick else 25,
                                       clients=8)
            large = measure_latency(app.local_url, Path(folder) / "xray-size.jpeg", requests=10 if quick else 25,
                                    clients=1)
        finally:
            app.close()
    alone, loaded = measured["single_client"], measured["concurrent"]
    errors = len(measured["errors"])
    reference = "direct model call in-process"
    name = "app prediction latency (digits classifier, gradio API over 127.0.0.1)"
    return [
        row(f"{name}, one client, p50", "s", [alone["p50_s"]], [statistics.median(direct)], reference, "(report)",
            False),
        row(f"{name}, one client, p95", "s", [alone["p95_s"]], [percentile(direct, 0.95)], reference, "(report)",
            False),
        row(f"{name}, 8 concurrent clients, p50 ({loaded['requests']} requests, {errors} errors, "
            f"{loaded['throughput_per_s']:.1f} requests/s)", "s", [loaded["p50_s"]], [alone["p50_s"]], "one client",
            "(report)", False),
        row(f"{name}, 8 concurrent clients, p95", "s", [loaded["p95_s"]], [alone["p95_s"]], "one client", "(report)",
            False),
        row(f"{name}, one client, p50: a 2,000 x 2,000 JPEG upload (decoded in draft mode, overlay at its size) vs "
            f"the 8x8 PNG", "s", [large["single_client"]["p50_s"]], [alone["p50_s"]], "8x8 PNG upload", "<= 1.5",
            False),
    ]


# 8. ONNX inference --------------------------------------------------------------------------------------------


def onnx_inference(repeats: int, quick: bool) -> list[dict]:
    """onnxruntime against PyTorch eager on the graph `hfmodels export onnx` writes, the same inputs, one call at a
    time: the image classifier (a batch of 64x64 RGB images) and the GPT (a batch of prompts, no cache)."""
    import onnxruntime

    from .export import example_inputs, export_onnx, graph_of, time_inference
    from .families import family_of_config
    from .models.image_classifier import ImageClassifierConfig, ImageClassifierForImageClassification

    torch.manual_seed(0)
    models = {
        f"image classifier, batch {BATCH} x 3 x 64 x 64": (ImageClassifierForImageClassification(
            ImageClassifierConfig(num_channels=3, image_size=64, num_labels=10)), BATCH, 0),
        f"GPT ({GPT_DIMENSIONS['num_layers']} layers, width {GPT_DIMENSIONS['hidden_size']}), batch {TRAIN_BATCH} x "
        f"{PROMPT_TOKENS * 4} tokens": (gpt_model(GPT_DIMENSIONS["hidden_size"]), TRAIN_BATCH, PROMPT_TOKENS * 4),
    }
    calls = 5 if quick else 20
    rows = []
    for name, (model, batch, seq) in models.items():
        with tempfile.TemporaryDirectory() as folder:
            model.eval().save_pretrained(Path(folder) / "model")
            exported = export_onnx(Path(folder) / "model", Path(folder) / "onnx")
            session = onnxruntime.InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
        graph, _ = graph_of(family_of_config(model.config), model)
        inputs = example_inputs(model.config, batch, seq)
        time_inference(graph, session, inputs, 2)  # warm-up
        onnx_values, eager_values = [], []
        for _ in range(repeats):
            eager, onnx = time_inference(graph, session, inputs, calls)
            eager_values.append(batch / eager)
            onnx_values.append(batch / onnx)
        rows.append(row(f"ONNX inference (onnxruntime), {name}", "samples/s", onnx_values, eager_values,
                        "PyTorch eager", "report", higher_is_better=True))
    return rows


# 9. Generative quality -----------------------------------------------------------------------------------------


def generative_quality(repeats: int, quick: bool) -> list[dict]:
    from .families import get_family
    from .testing.digits_judge import digits_judge
    from .training import TrainingArguments, train
    from .training.evaluation import load_trained

    judge, distances = digits_judge(), {}
    with tempfile.TemporaryDirectory() as root:
        for name in ("diffusion", "vae"):
            epochs = get_family(name).default_epochs // (4 if quick else 1)
            results = train(TrainingArguments(model=name, output_dir=f"{root}/{name}", epochs=epochs, report_to="none"))
            model = load_trained(results["output_dir"])[0].eval()
            distances[name] = [judge.frechet_distance(model.sample(500, generator=torch.Generator().manual_seed(seed)))
                               for seed in range(repeats)]
    return [row("digits: Frechet distance of 500 samples to the test split (judge's PCA features), diffusion "
                "(DDIM 50 steps) vs VAE", "FD", distances["diffusion"], distances["vae"], "VAE", "<= 1.0",
                higher_is_better=False)]


# 10. Fine-tuning ------------------------------------------------------------------------------------------------


def fine_tuning(repeats: int, quick: bool) -> list[dict]:
    """Training steps of a fine-tune against the full fine-tune of the same model, and the parameters each trains:
    the image classifier on a ResNet backbone (digits at 32x32, 3 channels) with the backbone frozen
    (`--freeze-backbone`: no gradients through it, eval mode) and with a LoRA adapter (`--lora r=8,alpha=16`: the
    adapter and the head train); the text classifier (the GPT of the text families) with a LoRA adapter."""
    from transformers import ResNetConfig

    from .data import load_source
    from .families import get_family
    from .families.text import SMALL_GPT
    from .models.backbone import backbone_config_dict
    from .pretrained.adapters import LoraSettings, add_lora
    from .training import TrainingArguments, make_loader
    from .training.fine_tuning import FineTuning

    lora, steps = "r=8,alpha=16", 4 if quick else 12
    flags = {"the backbone frozen": {"freeze_backbone": True}, "the full fine-tune": {},
             f"a LoRA adapter ({lora})": {"lora": lora, "init_from": "(benchmark)"}}

    def setup(family_name: str, rows, overrides: dict, name: str):
        family = get_family(family_name)
        torch.manual_seed(0)
        model, processor = family.build(rows, overrides)
        if "lora" in flags[name]:
            model = add_lora(family, model, LoraSettings.parse(lora), "(benchmark)", None)
        plan = FineTuning.plan(TrainingArguments(**flags[name]), family, model)
        optimizer = torch.optim.AdamW(plan.parameter_groups(model, 1e-3, 0.01))
        batches = list(itertools.islice(make_loader(rows, family, processor, True, BATCH), steps))
        return model, plan, optimizer, batches

    def seconds_per_step(model, plan, optimizer, batches) -> float:
        model.train()
        plan.apply(0)
        started = time.perf_counter()
        for batch in batches:
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - started) / len(batches)

    resnet = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1])
    models = {
        f"image classifier on a ResNet (hidden sizes {resnet.hidden_sizes}), digits at 32x32, batch {BATCH}": (
            "image-classifier", load_source("digits")["train"],
            {"num_channels": 3, "image_size": 32, "backbone_config": backbone_config_dict(resnet)},
            ["the backbone frozen", f"a LoRA adapter ({lora})"]),
        f"text classifier (GPT {SMALL_GPT}), stdlib-functions, batch {BATCH}": (
            "text-classifier", load_source("stdlib-functions")["train"], {}, [f"a LoRA adapter ({lora})"]),
    }
    results = []
    for what, (family_name, rows, overrides, kinds) in models.items():
        full = setup(family_name, rows, overrides, "the full fine-tune")
        for kind in kinds:
            tuned = setup(family_name, rows, overrides, kind)
            times = interleaved(functools.partial(seconds_per_step, *tuned),
                                functools.partial(seconds_per_step, *full), repeats)
            trainable = [plan.record(model)["trainable_parameters"] for model, plan, _, _ in (tuned, full)]
            frozen = kind == "the backbone frozen"
            results += [
                row(f"fine-tuning: step time with {kind} vs the full fine-tune; {what}", "s/step", *times,
                    "full fine-tune", "< 1" if frozen else "(report)", higher_is_better=False),
                row(f"fine-tuning: trainable parameters with {kind} vs the full fine-tune; {what}", "parameters",
                    [trainable[0]], [trainable[1]], "full fine-tune", "< 0.05" if frozen else "(report)",
                    higher_is_better=False),
            ]
    return results


SECTIONS = {
    "overhead": training_loop_overhead, "efficiency": cpu_efficiency, "generation": generation,
    "data": data_pipeline, "scaling": scaling, "memory": memory, "app": app_latency, "onnx": onnx_inference,
    "generative": generative_quality, "fine-tuning": fine_tuning,
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


NOTES = "\n## Notes\n"  # the heading of the report's hand-written part


def markdown_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Benchmarks", "",
        (f"`hfmodels bench{' --quick' if result['quick'] else ''}` ({result['repeats']} repeats): each figure against "
         "a reference run in the same benchmark run, timed interleaved (the training loops each in a fresh process, in "
         "rotating order); medians (for the training loops, the median over repeats of the ratio within each repeat), "
         "with the ratio of the best runs beside."), "",
        (f"Machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, GPU: {m['gpu']}. "
         + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "."), "",
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
        result["benchmarks"] += [{**row, "section": name} for row in SECTIONS[name](repeats, quick)]
        print(f"{name}: {time.time() - started:.0f}s", file=sys.stderr)
    previous = output / "benchmarks.json"
    if previous.is_file():  # `--only`: the rows of the sections not run now stay as they were measured
        kept = [row for row in json.loads(previous.read_text())["benchmarks"] if row.get("section") not in sections]
        result["benchmarks"] = kept + result["benchmarks"]
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / "benchmarks.json", json.dumps(result, indent=2) + "\n")
    report = output / "benchmarks.md"
    notes = report.read_text().partition(NOTES)[2] if report.exists() else ""  # hand-written: kept under a new table
    write_atomically(report, markdown_table(result) + (NOTES + notes if notes else ""))
    return result


def main(argv: list[str] | None = None, prog: str = "hfmodels bench") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer repeats and steps (a few minutes on 2 CPU cores).")
    parser.add_argument("--repeats", type=int, help="Repeats of each measurement (default: 5, or 2 with --quick).")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="Sections to run.")
    parser.add_argument("--output", default="docs", help="Folder for benchmarks.md and benchmarks.json.")
    args = parser.parse_args(argv)
    result = run(args.only, args.repeats or (2 if args.quick else 5), args.quick, Path(args.output))
    print(markdown_table(result))
    return 0
