"""The one training loop every family trains through (accelerate: CPU, GPUs, several machines)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import accelerate.optimizer
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, set_seed
from datasets import Dataset, DatasetDict, IterableDataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_scheduler

from ..atomic import STAGING_PREFIX, replaced_folder
from ..data import (
    VALIDATION_FRACTION,
    load_source,
    load_streaming,
    require_columns,
    split_sizes,
    with_validation_split,
)
from ..data.decoded import decoded_images
from ..data.facts import data_facts
from ..errors import ModelSavedError, first_line
from ..families import FAMILIES, Family, get_family
from ..families.base import MAX_DEFAULT_IMAGE_SIZE, held_out_split
from ..metrics import load_metric
from ..pretrained import ModelReference, part_lineage, start_from
from ..pretrained.adapters import MERGED_DIR
from .arguments import TrainingArguments
from .checkpoints import TrainState, find_checkpoint, load_checkpoint, save_checkpoint
from .ema import ExponentialMovingAverage
from .fine_tuning import FineTuning
from .tracking import MLFLOW_MODEL_DIR, finish_tracking, start_tracking, tracker_names

logger = logging.getLogger(__name__)

STREAM_SAMPLE_SIZE = 1000  # rows of a streamed train split kept in memory to fit the config, baselines, pictures
STREAM_SHUFFLE_BUFFER = 10_000

def make_accelerator(args: TrainingArguments | None = None, output_dir: Path | None = None) -> Accelerator:
    """Runs on the GPU when there is one, else on the CPU (also as a gloo group under `accelerate launch`)."""
    if args is None:
        return Accelerator(cpu=not torch.cuda.is_available())
    refuse_fsdp_on_cpu()
    # a backbone frozen for the first epochs gets no gradients then, which DDP must be told to expect
    unused = [DistributedDataParallelKwargs(find_unused_parameters=True)] if args.freeze_epochs else []
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=unused,
        mixed_precision=args.mixed_precision,  # None: the launch config's (an explicit "no" would override it)
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        # the data order of an epoch depends only on (seed, epoch), so a resumed run sees the same batches
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        log_with=tracker_names(args.report_to),
        dynamo_backend="inductor" if args.torch_compile else "no",
        project_dir=str(output_dir) if output_dir else None,
    )
    if accelerator.mixed_precision == "bf16" and not torch.cuda.is_available() and not cpu_has_native_bf16():
        logger.warning("bf16 mixed precision on a CPU without native bf16 support: expect it to be far slower than "
                       "fp32")
    return accelerator


def refuse_fsdp_on_cpu() -> None:
    """accelerate runs an FSDP launch config without a GPU as plain DDP, silently: refuse it instead."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true") and not torch.cuda.is_available():
        raise ValueError(
            "an FSDP launch config (distributed_type: FSDP) needs GPUs: without one accelerate would run plain DDP "
            "instead (the model in DistributedDataParallel, not sharded). Launch with "
            "scripts/accelerate_configs/cpu_2proc.yaml on a CPU."
        )


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class SeededBatches(torch.utils.data.Dataset):
    """Rows through the family's transform, with the `random` module seeded from (seed, the batch's row indices)
    while a batch is made. Augmentations then do not depend on what was drawn before: a resumed run makes the same
    batches as an uninterrupted one, even though the loader fetches a batch ahead, and with any worker count. (The
    indices, which the shuffle draws anew every epoch, stand for the epoch: persistent workers hold a copy of this
    object made when they started, which an epoch counter set later would not reach.)"""

    def __init__(self, rows: Dataset, seed: int):
        self.rows, self.seed = rows, seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        state = random.getstate()
        random.seed(f"{self.seed}-{','.join(map(str, indices))}")
        try:
            return self.rows.__getitems__(indices)
        finally:
            random.setstate(state)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]


def make_loader(
    split: Dataset | IterableDataset, family: Family, processor, train: bool, batch_size: int, num_workers: int = 0,
    seed: int = 0,
) -> DataLoader:
    split = family.prepare(split, processor)
    # workers kept from one epoch to the next; batches in page-locked memory copy to a GPU faster
    workers = {"num_workers": num_workers, "persistent_workers": num_workers > 0,
               "pin_memory": torch.cuda.is_available()}
    if isinstance(split, IterableDataset):  # a stream: shuffled through a buffer, transformed as it is read
        rows = split.shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER) if train else split
        rows = rows.map(family.transform(processor, train=train), batched=True, batch_size=batch_size,
                        remove_columns=list(split.features or []))
        return DataLoader(rows, batch_size=batch_size, collate_fn=family.collate, **workers)
    return DataLoader(
        SeededBatches(split.with_transform(family.transform(processor, train=train)), seed),
        batch_size=batch_size,
        shuffle=train,
        drop_last=train and len(split) > batch_size,
        collate_fn=family.collate,
        # its own generator: starting an epoch's iterator then draws nothing from the global torch RNG
        # (dropout's), so a resumed run draws the same dropout masks as an uninterrupted one
        generator=torch.Generator().manual_seed(seed),
        **workers,
    )


MAX_AUTO_WORKERS = 8


def resolve_num_workers(num_workers: str | int, accelerator: Accelerator) -> int:
    """`--num-workers`: a number as given; `auto`: the cores this process may use, shared with the other training
    processes on this machine, minus what training itself uses (torch's threads on a CPU, one core feeding a GPU)."""
    if str(num_workers) != "auto":
        return int(num_workers)
    training = 1 if accelerator.device.type != "cpu" else torch.get_num_threads()
    return max(0, min(MAX_AUTO_WORKERS, cores_per_process() - training))


def cores_per_process() -> int:
    """The cores this process may use, shared with the other training processes on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # set by accelerate launch and torchrun


@torch.no_grad()
def evaluate_model(model, loader: DataLoader, family: Family, accelerator: Accelerator) -> dict[str, float]:
    """The family's metrics and the mean loss over a whole split, each sample counted once across processes."""
    config = accelerator.unwrap_model(model).config
    metrics = {name: load_metric(name, keep_in_memory=True) for name in family.metrics_for(config)}
    model.eval()
    loss_sum, count = 0.0, 0
    for batch in loader:
        outputs = model(**batch)
        inputs = accelerator.gather_for_metrics(family.metric_inputs(outputs, batch))
        batch_size = len(batch[next(iter(batch))])
        batch_losses = accelerator.gather_for_metrics(outputs.loss.detach().float().repeat(batch_size))
        loss_sum += batch_losses.sum().item()
        count += len(batch_losses)
        for metric in metrics.values():  # each metric takes the inputs it has features for
            metric.add_batch(**{key: value.cpu().numpy() for key, value in inputs.items() if key in metric.features})
    results = {"loss": loss_sum / max(count, 1), "num_samples": count}
    for name, metric in metrics.items():
        results.update(metric.compute(**family.metric_kwargs(name, config)))
    return results


def train(args: TrainingArguments, after_save: dict[str, Callable[[Path], Any]] | None = None) -> dict[str, Any]:
    """Trains one model; writes the best epoch's model, its processor and results to the run folder.
    `after_save` names steps `step(folder)` that run on the main process once the model and the run's records are in
    `folder`, the new version of the run folder, before it takes `output_dir`'s place and before the trackers close
    (the CLI renders the model card there, so the card is part of the version and tracked too).

    Nothing after the model is saved can lose it: when the baselines, the pictures, a step of `after_save` or the
    trackers fail, the rest still runs, the run folder still takes its place, and then `ModelSavedError` says what
    failed and where the model is."""
    started = time.time()
    family = get_family(args.model)
    dataset_name = args.dataset or family.default_dataset
    output_dir = Path(args.output_dir or f"runs/{family.name}-{Path(dataset_name).name}")
    resume_path = find_checkpoint(output_dir, args.resume_from_checkpoint) if args.resume_from_checkpoint else None
    accelerator = make_accelerator(args, output_dir)
    set_seed(args.seed)

    data = load_training_data(args, family, dataset_name, accelerator)
    model, processor, started_from = build_model(args, family, data)
    decode_images_once(args, family, accelerator, data, model.config)
    run = prepare_run(args, family, accelerator, model, processor, data)
    state, best_weights = resume_state(accelerator, resume_path, args, output_dir)
    tracker_runs = start_tracking(accelerator, args, output_dir, family, run.unwrapped.config)
    if accelerator.is_main_process:
        logger.info(
            "training %s (%s parameters) for %d steps (%s epochs) on %d process(es), device %s",
            family.name, f"{run.unwrapped.num_parameters():,}", run.max_steps, run.epochs or "streamed",
            accelerator.num_processes, accelerator.device,
        )

    with cached_lomo_check():
        samples_seen, best_weights = train_epochs(args, family, accelerator, run, state, best_weights, output_dir)

    final_split, final_metrics = score_best_model(family, accelerator, run, processor, data, state, best_weights)
    medical = data.facts["medical"] if args.medical is None else args.medical
    eval_results = {
        "task": family.pipeline_tag,
        "model": family.name,
        "medical": medical,  # the card and the app then say it is not a diagnostic device
        "dataset": {
            "name": data.name, "config": args.dataset_config, "revision": args.revision, "split": final_split,
            "sizes": data.sizes, "synthetic": data.facts["synthetic"],
        },
        "best_epoch": state.best_epoch,
        "metrics": final_metrics,
        "validation_metrics": {family.main_metric: state.best_metric},
        "validation": data.validation,  # the rows that chose the best epoch
        "baselines": {},
    }
    samples_per_process = accelerator.gather(torch.tensor([samples_seen], device=accelerator.device)).tolist()
    accelerator.wait_for_everyone()
    after_training = AfterTraining()
    if accelerator.is_main_process:
        records = {  # file name -> contents
            "training_args.json": {**args.to_dict(), "dataset": data.name, "output_dir": str(output_dir),
                                   "learning_rate": run.learning_rate, "epochs": run.epochs,
                                   "max_steps": run.max_steps, "medical": medical},
            "training_log.json": state.log_history,
            "run_info.json": {**run_info(accelerator, args, time.time() - started, run.model),
                              "samples_per_process": samples_per_process,
                              "resumed_from": str(resume_path) if resume_path else None, "tracker_runs": tracker_runs,
                              "started_from": started_from, "fine_tuning": run.fine_tuning.record(run.unwrapped),
                              "adapter": adapter_record(run.unwrapped, args.lora)},
            "eval_results.json": eval_results,
        }
        save_run(output_dir, family, run.unwrapped, processor, data, records, after_save or {}, after_training,
                 accelerator.save, args.merge_lora)
        accelerator.log({f"test/{k}": v for k, v in eval_results["metrics"].items()}, step=state.step)
        with after_training.step("logging to the trackers"):
            finish_tracking(accelerator, output_dir, family)
        logger.info(
            "done in %.1fs: best epoch %d (validation %s=%.4f); %s on %s; model in %s",
            time.time() - started, state.best_epoch, family.main_metric, state.best_metric,
            format_metrics(eval_results["metrics"]), final_split, output_dir,
        )
    accelerator.wait_for_everyone()
    accelerator.end_training()
    after_training.raise_failures(output_dir)
    return {"output_dir": str(output_dir), **eval_results}


# --- the phases of `train`, in the order it runs them -----------------------------------------------------------------


@dataclass
class TrainingData:
    name: str
    splits: DatasetDict  # `train` is the first rows of the stream when streaming
    train_rows: Dataset | IterableDataset  # what training reads: the train split or its stream
    sizes: dict[str, Any]
    facts: dict[str, bool]  # what the source declares: synthetic, medical (data/facts.py)
    validation: dict[str, Any]  # which rows pick the best epoch: where they come from, how many


# Fewer validation rows than this cannot pick an epoch reliably: one row moves accuracy by over a point.
MIN_VALIDATION_SIZE = 100


def load_training_data(args: TrainingArguments, family: Family, name: str, accelerator: Accelerator) -> TrainingData:
    """The data source with a validation split (carved from train when it has none, or when asked), checked for the
    family's columns. A family that decodes its images once (data/decoded.py) checks the files then, not here."""
    if args.streaming:
        train_rows, splits = load_streaming(name, args.data_options(), args.streaming_validation_size,
                                            STREAM_SAMPLE_SIZE)
        source = splits
    else:
        source = load_source(name, args.data_options(), check_images=not family.decodes_images)
        splits = with_validation_split(source, seed=args.seed, fraction=args.validation_from_train)
        train_rows = splits["train"]
    require_columns(splits, family.columns, name, args.data_options())
    sizes = {**split_sizes(splits), "train": "streamed"} if args.streaming else split_sizes(splits)
    if args.validation_from_train is not None:
        origin = f"carved from train ({args.validation_from_train:.0%}, stratified, seed {args.seed})"
    elif "validation" in source and source["validation"] is splits["validation"]:
        origin = "the source's validation split"
    else:
        origin = f"carved from train ({VALIDATION_FRACTION:.0%}, stratified, seed {args.seed}; the source has none)"
    validation = {"origin": origin, "num_samples": len(splits["validation"])}
    if accelerator.is_main_process:
        logger.info("dataset %s: %s; the best epoch is chosen on %d validation rows, %s", name, sizes,
                    validation["num_samples"], origin)
        if validation["num_samples"] < MIN_VALIDATION_SIZE and args.validation_from_train is None:
            logger.warning(
                "the validation split has only %d rows, too few to choose the best epoch on (one row moves "
                "accuracy by %.1f points); pass --validation-from-train 0.1 to choose it on a stratified tenth of "
                "train instead", validation["num_samples"], 100 / validation["num_samples"])
    return TrainingData(name, splits, train_rows, sizes, data_facts(name), validation)


def build_model(
    args: TrainingArguments, family: Family, data: TrainingData
) -> tuple[PreTrainedModel, Any, list[dict[str, Any]]]:
    """The model and its processor, fitted to the training data, with the user's config overrides, and the saved
    models it started from (`--init-from`, `--backbone`, `--text-backbone`), for run_info.json and the card."""
    overrides = args.model_config_overrides()
    if args.image_size is not None:
        if "image_size" not in getattr(family.config_class, "__annotations__", {}):
            raise ValueError(f"--image-size: the {family.name} model has no image size of its own (image "
                             "families: image-classifier, segmentation, autoencoder, vae)")
        overrides["image_size"] = args.image_size
    if args.class_weights == "auto":
        overrides["class_weights"] = family.balanced_class_weights(data.splits["train"])
        logger.info("class weights (inverse frequency in train): %s", overrides["class_weights"])
    if args.init_from:
        reference = ModelReference.parse("--init-from", args.init_from)
        model, processor, lineage = start_from(family, reference, data.splits["train"], overrides)
        started_from = [lineage]
        if args.lora:
            model = with_adapter(family, model, reference, args.lora, lineage)
    else:
        model, processor = family.build(data.splits["train"], overrides, tokenizer=args.tokenizer,
                                        backbone=args.backbone, text_backbone=args.text_backbone)
        parts = (("--backbone", args.backbone), ("--text-backbone", args.text_backbone))
        started_from = [part_lineage(flag, value) for flag, value in parts if value]
    if args.gradient_checkpointing:
        if not model.supports_gradient_checkpointing:
            raise ValueError(f"--gradient-checkpointing: the {family.name} model does not support it")
        model.gradient_checkpointing_enable()
    return model, processor, started_from


def with_adapter(family: Family, model: PreTrainedModel, reference: ModelReference, lora: str, lineage: dict):
    """`--lora`: the model a peft LoRA model, its base the `--init-from` model (a local folder by its absolute path)."""
    from ..pretrained.adapters import LoraSettings, add_lora

    if lineage["source_class"] not in {known.model_class.__name__ for known in FAMILIES.values()}:
        raise reference.error(f"a {lineage['source_class']} is converted on loading, so it cannot be an adapter's "
                              "base: start a run from it without --lora, then --lora --init-from that run")
    lineage["relation"] = "adapter"
    base = str(Path(reference.name).resolve()) if reference.is_local else reference.name
    return add_lora(family, model, LoraSettings.parse(lora), base, reference.revision)


def adapter_record(model, lora: str | None) -> dict[str, Any] | None:
    from ..pretrained.adapters import LoraSettings, lora_record

    return lora_record(model, LoraSettings.parse(lora)) if lora else None


def decode_images_once(args: TrainingArguments, family: Family, accelerator: Accelerator, data: TrainingData,
                       config) -> None:
    """For a family that reads its images at one size: every split's images decoded at the model's input size once
    (data/decoded.py; the main process first, the others then read its cache). A stream stays decoded as read."""
    if not family.decodes_images:
        return
    side = config.image_size
    if args.image_size:
        origin = "--image-size"
    elif args.init_from:
        origin = "what the --init-from model was trained on"
    elif args.backbone:
        origin = "fitted to the --backbone, see above"
    else:
        origin = f"default: the first image's shorter side, at most {MAX_DEFAULT_IMAGE_SIZE}; set --image-size"
    if accelerator.is_main_process:
        logger.info("input images: %dx%d, %d channel(s) (%s; shorter side resized, centre kept)", side, side,
                    config.num_channels, origin)
    if not args.streaming:
        # before training starts every core is free to decode (`auto`), else as many processes as workers
        processes = cores_per_process() if str(args.num_workers) == "auto" else int(args.num_workers)
        with accelerator.main_process_first():
            data.splits = decoded_images(data.splits, side, config.num_channels, num_proc=processes or None)
        data.train_rows = data.splits["train"]


@dataclass
class PreparedRun:
    """What the loop runs, prepared by accelerate (wrapped for the processes and devices), and its length."""

    model: torch.nn.Module
    unwrapped: PreTrainedModel
    optimizer: accelerate.optimizer.AcceleratedOptimizer
    scheduler: Any
    train_loader: DataLoader
    eval_loader: DataLoader
    learning_rate: float
    eval_batch_size: int
    max_steps: int
    epochs: int | None  # None: a streamed run, which ends after max_steps
    ema: ExponentialMovingAverage | None  # `--ema-decay`: the weights evaluated and saved
    fine_tuning: FineTuning  # what trains in which epoch, at which rate


def prepare_run(
    args: TrainingArguments, family: Family, accelerator: Accelerator, model: PreTrainedModel, processor,
    data: TrainingData,
) -> PreparedRun:
    """Loaders, AdamW and the learning-rate schedule, through `accelerator.prepare`."""
    eval_batch_size = args.eval_batch_size or args.batch_size
    workers = resolve_num_workers(args.num_workers, accelerator)
    if accelerator.is_main_process:
        logger.info("data loading: %d worker process(es)%s", workers,
                    " (--num-workers auto)" if str(args.num_workers) == "auto" else "")
    train_loader = make_loader(data.train_rows, family, processor, True, args.batch_size, workers, args.seed)
    eval_loader = make_loader(data.splits["validation"], family, processor, False, eval_batch_size, workers)
    learning_rate = args.learning_rate or family.default_learning_rate
    fine_tuning = FineTuning.plan(args, family, model)
    if fine_tuning.frozen_throughout:
        fine_tuning.apply(0)  # before DDP wraps the model: then the backbone is no part of its gradient reducer
    optimizer = torch.optim.AdamW(fine_tuning.parameter_groups(model, learning_rate, args.weight_decay))
    if accelerator.is_main_process:
        record = fine_tuning.record(model)
        logger.info("trainable parameters: %s of %s%s", f"{record['trainable_parameters']:,}",
                    f"{record['parameters']:,}", f" (backbone {', '.join(fine_tuning.backbone)} frozen: "
                    f"{record['frozen']})" if fine_tuning.backbone else "")
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    if args.streaming:  # a pass over the stream ends when it does; max_steps is required
        max_steps, epochs = args.max_steps, None
    else:
        steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
        max_steps = args.max_steps or steps_per_epoch * (args.epochs or family.default_epochs)
        epochs = math.ceil(max_steps / steps_per_epoch)
        if args.freeze_epochs and args.freeze_epochs >= epochs:
            raise ValueError(f"--freeze-epochs {args.freeze_epochs}: the run has only {epochs} epoch(s) "
                             f"({max_steps} steps), so the backbone would never train; use --freeze-backbone")
    # the prepared scheduler steps once per process on each optimizer step
    scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer,
        num_warmup_steps=int(args.warmup_ratio * max_steps) * accelerator.num_processes,
        num_training_steps=max_steps * accelerator.num_processes,
    )
    scheduler = accelerator.prepare(scheduler)
    unwrapped = accelerator.unwrap_model(model)
    ema_decay = family.default_ema_decay if args.ema_decay is None else args.ema_decay
    ema = ExponentialMovingAverage(unwrapped, ema_decay) if ema_decay else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)  # before a checkpoint is loaded into it
    return PreparedRun(model, unwrapped, optimizer, scheduler, train_loader, eval_loader, learning_rate,
                       eval_batch_size, max_steps, epochs, ema, fine_tuning)


def resume_state(
    accelerator: Accelerator, resume_path: Path | None, args: TrainingArguments, output_dir: Path
) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    """Where the loop starts: a fresh state, or the checkpoint's (model, optimizer, scheduler, RNGs restored)."""
    if resume_path is None:
        if args.resume_from_checkpoint == "auto" and accelerator.is_main_process:
            logger.info("--resume-from-checkpoint auto: no checkpoint in %s, starting fresh", output_dir)
        return TrainState(), None
    state, best_weights = load_checkpoint(accelerator, resume_path)
    if accelerator.is_main_process:
        logger.info("resumed from %s at step %d (epoch %d, batch %d)", resume_path, state.step, state.epoch + 1,
                    state.batches_in_epoch)
    return state, best_weights


def train_epochs(
    args: TrainingArguments, family: Family, accelerator: Accelerator, run: PreparedRun, state: TrainState,
    best_weights: dict[str, torch.Tensor] | None, output_dir: Path,
) -> tuple[int, dict[str, torch.Tensor]]:
    """The loop: steps, logged every `logging_steps` and checkpointed every `checkpoint_every`, and an evaluation
    after each epoch that keeps the best epoch's weights. Updates `state`; returns the samples this process saw
    (since it started) and the best weights."""
    zero_grad = gradient_zeroing(run.optimizer)
    samples_per_step = args.batch_size * args.gradient_accumulation_steps * accelerator.num_processes
    progress = StepProgress(run.max_steps, state.step, samples_per_step, accelerator.is_main_process,
                            args.logging_steps)
    samples_seen = 0
    while state.step < run.max_steps and (run.epochs is None or state.epoch < run.epochs):
        run.model.train()
        run.fine_tuning.apply(state.epoch)
        batches = (accelerator.skip_first_batches(run.train_loader, state.batches_in_epoch) if state.batches_in_epoch
                   else run.train_loader)
        batches.set_epoch(state.epoch)  # the data order, and so the augmentations, of this epoch (reshuffles a stream)
        for batch in progress.timed(batches):
            with accelerator.accumulate(run.model):
                loss = run.model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(run.model.parameters(), args.max_grad_norm)
                run.optimizer.step()
                run.scheduler.step()
                if accelerator.sync_gradients:
                    zero_grad(set_to_none=True)
                    if run.ema is not None:
                        run.ema.update(run.unwrapped)
            state.batches_in_epoch += 1
            samples_seen += len(batch[next(iter(batch))])
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            record = progress.update(state.step, state.epoch, loss, run.scheduler.get_last_lr()[0])
            if record:
                state.log_history.append(record)
                accelerator.log({"train/loss": record["loss"], "train/learning_rate": record["learning_rate"],
                                 "train/samples_per_second": record["samples_per_second"]}, step=state.step)
            if args.checkpoint_every and state.step % args.checkpoint_every == 0:
                save_checkpoint(accelerator, output_dir, state, best_weights, args.keep_checkpoints)
            if state.step >= run.max_steps:
                break
        ema_weights = run.ema.applied(run.unwrapped) if run.ema is not None else contextlib.nullcontext()
        with progress.paused(), ema_weights:  # evaluation time is neither data nor step time; EMA weights evaluated
            best_weights = end_epoch(family, accelerator, run, state, best_weights, progress, output_dir)
    progress.close()
    return samples_seen, best_weights


def end_epoch(
    family: Family, accelerator: Accelerator, run: PreparedRun, state: TrainState,
    best_weights: dict[str, torch.Tensor] | None, progress: StepProgress, output_dir: Path,
) -> dict[str, torch.Tensor]:
    """Scores the epoch on the validation split (the weights in the model: the EMA's where there is one); returns the
    best epoch's weights so far."""
    metrics = evaluate_model(run.model, run.eval_loader, family, accelerator)
    state.log_history.append({"epoch": state.epoch + 1, "step": state.step,
                              **{f"eval_{k}": v for k, v in metrics.items()}})
    accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.step)
    progress.write(f"epoch {state.epoch + 1}/{run.epochs or '?'}: " + format_metrics(metrics, prefix="eval_"))
    # the best epoch: by the main metric, ties broken by the lower validation loss
    value = metrics[family.main_metric]
    score = [value if family.greater_is_better else -value, -metrics["loss"]]
    if state.best_score is None or score > state.best_score:
        state.best_score, state.best_metric, state.best_epoch = score, value, state.epoch + 1
        best_weights = {k: v.detach().cpu().clone() for k, v in run.unwrapped.state_dict().items()}
    if accelerator.is_main_process:
        family.end_of_epoch(run.unwrapped, state.epoch + 1, output_dir)
    state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    return best_weights


def score_best_model(
    family: Family, accelerator: Accelerator, run: PreparedRun, processor, data: TrainingData, state: TrainState,
    best_weights: dict[str, torch.Tensor],
) -> tuple[str, dict[str, Any]]:
    """Loads the best epoch's weights into the model; returns the held-out split and its scores: test, scored
    now, when the source has one, else validation, scored at that epoch."""
    run.unwrapped.load_state_dict(best_weights)
    split = held_out_split(data.splits)
    if split == "validation":
        best = next(r for r in state.log_history if r.get("epoch") == state.best_epoch and "eval_loss" in r)
        return split, {key.removeprefix("eval_"): value for key, value in best.items() if key.startswith("eval_")}
    loader = accelerator.prepare(make_loader(data.splits[split], family, processor, False, run.eval_batch_size))
    return split, evaluate_model(run.model, loader, family, accelerator)


def save_run(
    output_dir: Path, family: Family, model: PreTrainedModel, processor, data: TrainingData,
    records: dict[str, Any], after_save: dict[str, Callable[[Path], Any]], after_training: AfterTraining,
    save_function: Callable, merge_lora: bool = False,
) -> None:
    """On the main process: the model (a LoRA model's adapter, and with `merge_lora` the merged model too), its
    processor and the run's `records` (file name -> contents) into a new version of the run folder, then the
    baselines, the pictures and the `after_save` steps, each of which may fail without losing the model; the new
    version replaces the old in one rename (a kill leaves one or the other)."""
    from ..pretrained.adapters import is_adapted, save_adapter_run

    with replaced_folder(output_dir, keep=run_history(output_dir)) as staging:
        if is_adapted(model):
            save_adapter_run(model, staging, processor, merge_lora, save_function)
        else:
            model.save_pretrained(staging, save_function=save_function)
        processor.save_pretrained(staging)
        for name, contents in records.items():
            write_json(staging / name, contents)
        # the model and its records are saved: what follows may fail without losing them
        eval_results = records["eval_results.json"]
        with after_training.step("the baselines"):
            eval_results["baselines"] = family.baselines(data.splits, eval_results["dataset"]["split"],
                                                         config=model.config, processor=processor)
            write_json(staging / "eval_results.json", eval_results)
        with after_training.step("the pictures"):
            family.write_artifacts(model, processor, data.splits, staging)
        for name, step in after_save.items():
            with after_training.step(name):
                step(staging)


# Two costs of accelerate's AcceleratedOptimizer on every step, which the loop avoids (below), measured on this
# accelerate version (docs/benchmarks-profile.md). tests/test_training.py shows that the installed accelerate still
# has each: when one of those tests fails, accelerate no longer has that cost; drop the workaround the test names.
ACCELERATE_MEASURED = "1.15.0"


@contextmanager
def cached_lomo_check() -> Iterator[None]:
    """While the loop runs: `AcceleratedOptimizer.step` asks twice a step whether lomo_optim is installed, each
    time a search of sys.path (0.2 ms of a 13 ms CPU step on accelerate 1.15.0). The answer cannot change while the
    loop runs, so it is asked once; accelerate's own check is back afterwards."""
    check = accelerate.optimizer.is_lomo_available
    accelerate.optimizer.is_lomo_available = functools.cache(check)
    try:
        yield
    finally:
        accelerate.optimizer.is_lomo_available = check


def gradient_zeroing(optimizer: accelerate.optimizer.AcceleratedOptimizer) -> Callable[..., None]:
    """What the loop zeroes gradients with. `AcceleratedOptimizer.zero_grad` inspects the wrapped optimizer's
    signature on every call (0.08 ms of a 13 ms CPU step on accelerate 1.15.0) before calling its `zero_grad`: the
    loop calls that directly, and only where accelerate would (it zeroes on the steps that sync gradients). Its
    subclasses (DeepSpeed's) leave zeroing to their engine: they keep their own."""
    plain = type(optimizer) is accelerate.optimizer.AcceleratedOptimizer
    return optimizer.optimizer.zero_grad if plain else optimizer.zero_grad


class AfterTraining:
    """The steps after the model is saved (baselines, pictures, card, trackers): each runs whatever failed before
    it, and a failure is remembered and logged in one line, then raised by `raise_failures` once the run folder is
    in place."""

    def __init__(self):
        self.failures: list[str] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except Exception as error:  # noqa: BLE001  any failure here must not lose the model; it is raised later
            failure = f"{name} failed ({type(error).__name__}: {first_line(error)})"
            logger.warning(failure)
            logger.debug("%s", name, exc_info=True)
            self.failures.append(failure)

    def raise_failures(self, output_dir: Path) -> None:
        if self.failures:
            raise ModelSavedError(output_dir, "; ".join(self.failures))


def run_history(output_dir: Path) -> tuple[str, ...]:
    """What the new version of a run folder carries over from the old: its folders (checkpoints, tracker logs),
    the MLflow store and the card (whose hand-written sections the new card keeps). The old model's files, records
    and pictures are replaced, and so are its MLflow model and its merged LoRA model (a run without MLflow tracking
    or --merge-lora then has none)."""
    if not output_dir.is_dir():
        return ()
    return tuple(entry.name for entry in output_dir.iterdir()
                 if (entry.is_dir() and not entry.name.startswith(STAGING_PREFIX)
                     and entry.name not in (MLFLOW_MODEL_DIR, MERGED_DIR))
                 or entry.name in ("README.md", "mlflow.db"))


def run_info(
    accelerator: Accelerator, args: TrainingArguments, wall_time: float, model: torch.nn.Module | None = None
) -> dict[str, Any]:
    """How the run was made, for the model card's training procedure and reproducibility sections: what actually
    ran (the distributed type, the wrapper accelerate put the model in, the precision), not what was asked for."""
    import accelerate
    import datasets
    import evaluate
    import transformers

    from .. import __version__

    return {
        "command": command_line(),
        "wall_time_seconds": round(wall_time, 1),
        "num_processes": accelerator.num_processes,
        "device": str(accelerator.device),
        "device_name": (torch.cuda.get_device_name() if torch.cuda.is_available()
                        else platform.processor() or platform.machine()),
        "mixed_precision": accelerator.mixed_precision,
        "distributed_type": accelerator.distributed_type.value,
        "model_wrapper": type(model).__name__ if model is not None and model is not accelerator.unwrap_model(model)
        else None,
        "seed": args.seed,
        "git_commit": git_commit(),
        "versions": {
            "hfmodels": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "accelerate": accelerate.__version__, "evaluate": evaluate.__version__,
            "python": platform.python_version(),
        },
    }


def command_line() -> str:
    """The command that started this process, as a user would type it again."""
    if Path(sys.argv[0]).name in ("hfmodels", "cli.py"):
        return shlex.join(["hfmodels", *sys.argv[1:]])
    launcher = ["accelerate", "launch"] if "ACCELERATE_MIXED_PRECISION" in os.environ else ["python"]
    return shlex.join([*launcher, *sys.argv])


def git_commit() -> str | None:
    """The commit of the hfmodels source tree, when hfmodels runs from a git checkout of it (an installed hfmodels
    has none, also when its environment lies inside some other repository)."""
    source_tree = Path(__file__).resolve().parents[2]
    if not (source_tree / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source_tree, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def format_metrics(metrics: dict[str, Any], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{k}={v:.4f}" if isinstance(v, float) else f"{prefix}{k}={v}" for k, v in metrics.items())


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


class StepProgress:
    """A progress bar on an interactive terminal; one plain line every logging step otherwise (CI, log files). Both
    show the time a step waited for its data beside the time it computed, so a slow loader shows as such."""

    def __init__(self, total: int, initial: int, samples_per_step: int, enabled: bool, logging_steps: int):
        self.enabled, self.logging_steps, self.total = enabled, logging_steps, total
        self.samples_per_step = samples_per_step
        self.last_time, self.last_step = time.time(), initial
        self.data_seconds = 0.0  # waited for batches since the last logging step
        interactive = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, file=sys.stderr, dynamic_ncols=True) if interactive else None

    def timed(self, batches) -> Iterator[Any]:
        """The batches of `batches`, the time spent waiting for each counted as data time."""
        iterator = iter(batches)
        while True:
            started = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.data_seconds += time.perf_counter() - started
            yield batch

    @contextmanager
    def paused(self) -> Iterator[None]:
        started = time.time()
        try:
            yield
        finally:
            self.last_time += time.time() - started

    def update(self, step: int, epoch: int, loss: torch.Tensor, learning_rate: float) -> dict[str, Any] | None:
        """Returns the record to log on logging steps, else None. The loss is read only then: reading it waits
        for the GPU to finish the step."""
        if self.bar is not None:
            self.bar.update(1)
        if step % self.logging_steps and step != self.total:
            return None
        loss = loss.item()
        now = time.time()
        steps = max(step - self.last_step, 1)
        steps_per_second = (step - self.last_step) / max(now - self.last_time, 1e-9)
        data_ms = 1000 * self.data_seconds / steps
        compute_ms = max(0.0, 1000 * (now - self.last_time) / steps - data_ms)
        self.last_time, self.last_step, self.data_seconds = now, step, 0.0
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{learning_rate:.2e}", data=f"{data_ms:.0f}ms",
                                 step=f"{compute_ms:.0f}ms")
        record = {"step": step, "epoch": epoch + 1, "loss": loss, "learning_rate": learning_rate,
                  "samples_per_second": steps_per_second * self.samples_per_step,
                  "data_ms_per_step": data_ms, "compute_ms_per_step": compute_ms, "time": now}
        if self.enabled and self.bar is None:
            eta = (self.total - step) / max(steps_per_second, 1e-9)
            logger.info("step %d/%d  loss %.4f  lr %.2e  %.0f samples/s  data %.1f ms + step %.1f ms  eta %.0fs",
                        step, self.total, loss, learning_rate, record["samples_per_second"], data_ms, compute_ms, eta)
        return record

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            logger.info(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
