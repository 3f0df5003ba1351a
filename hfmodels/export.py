"""`hfmodels export onnx RUN OUT`: a saved model as an ONNX graph, checked against PyTorch with onnxruntime.

The graph takes the tensors the family's processor makes (`pixel_values`; `input_ids` and `attention_mask`) with
the batch (and for texts the sequence) dimension dynamic, and returns the model's main outputs (logits; the
latents and reconstruction of the autoencoders). OUT also gets the config and processor files, so the processor
that made the inputs for PyTorch makes them for onnxruntime. torch's dynamo exporter writes it (onnxscript); optimum's
exporter configurations are not used: optimum-onnx requires transformers < 4.58, and these models are transformers 5.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .families import Family, family_of_config, load_config
from .training.run_folder import read_run

# What each family's graph returns, by the names of its model output's fields.
OUTPUTS = {"autoencoder": ("latents", "reconstruction"), "vae": ("latent_mean", "reconstruction")}
TOLERANCE = 1e-4  # max abs difference to PyTorch that the check accepts (float32 graphs differ by ~1e-6)


class OutputsOf(torch.nn.Module):
    """The model as a function of plain tensors (`input_names`, in order) to plain tensors (`output_names`)."""

    def __init__(self, model: torch.nn.Module, input_names: list[str], output_names: tuple[str, ...], text: bool):
        super().__init__()
        self.model, self.input_names, self.output_names = model, input_names, output_names
        self.options = {"use_cache": False} if text and "use_cache" in model.forward.__code__.co_varnames else {}

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(**dict(zip(self.input_names, inputs)), **self.options, return_dict=True)
        return tuple(outputs[name] for name in self.output_names)


def example_inputs(config, batch: int, seq: int) -> dict[str, torch.Tensor]:
    """Inputs of the shapes a model of `config` takes: images of its size, token ids of its vocabulary (the first
    row left-padded by one, so the padding path is exported too)."""
    generator = torch.Generator().manual_seed(batch * 100 + seq)
    inputs = {}
    vision = getattr(config, "vision_config", config)
    text = getattr(config, "text_config", config)
    if hasattr(vision, "num_channels"):
        size = vision.image_size
        inputs["pixel_values"] = torch.rand(batch, vision.num_channels, size, size, generator=generator)
    if hasattr(text, "vocab_size"):
        inputs["input_ids"] = torch.randint(3, text.vocab_size, (batch, seq), generator=generator)
        inputs["attention_mask"] = torch.ones(batch, seq, dtype=torch.long)
        inputs["attention_mask"][0, 0] = 0
    return inputs


def export_onnx(run: str | Path, out: str | Path, opset: int = 18) -> dict[str, Any]:
    """Writes OUT/model.onnx (and the config and processor files) for the model in `run`; checks it against
    PyTorch on inputs of another batch size and length than those it was traced with. Returns what it wrote and the
    check's max abs difference per output."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  torch's dynamo exporter writes the graph with it
    except ImportError as error:
        raise ValueError(f"ONNX export needs onnx, onnxscript and onnxruntime: pip install 'hfmodels[onnx]' "
                         f"({error})") from error
    run, out = Path(run), Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty: give a new folder for the export")
    family = family_of_config(load_config(run))
    model = family.model_class.from_pretrained(run).eval()
    out.mkdir(parents=True, exist_ok=True)
    graph, names = graph_of(family, model)
    text = "input_ids" in names
    seq_limit = model.config.get_text_config().max_position_embeddings if text else None
    traced = example_inputs(model.config, batch=2, seq=min(8, seq_limit or 8))
    batch_dim = torch.export.Dim("batch", min=1, max=1024)
    dynamic: dict[str, dict[int, Any]] = {name: {0: batch_dim} for name in names}
    if text:
        seq_dim = torch.export.Dim("sequence", min=2, max=seq_limit)
        dynamic.update({name: {0: batch_dim, 1: seq_dim} for name in ("input_ids", "attention_mask")})
    path = out / "model.onnx"
    # the exporter prints its progress to stdout, where the CLI prints its JSON; warnings about axis names it merges
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*axis name")
        program = torch.onnx.export(
            graph, tuple(traced[name] for name in names), input_names=names, output_names=list(graph.output_names),
            dynamic_shapes=(tuple(dynamic[name] for name in names),), opset_version=opset, dynamo=True,
        )
    program.save(str(path))
    for name in read_run(run).model_files():
        if not name.endswith((".safetensors", ".bin")):  # the code too: the processor may be remote code
            shutil.copy2(run / name, out / name)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    differences = compare(graph, session, example_inputs(model.config, batch=3, seq=min(5, seq_limit or 5)))
    worst = max(differences.values())
    if not worst <= TOLERANCE:
        raise ValueError(f"{path}: the ONNX graph differs from PyTorch by {worst:.3g} (> {TOLERANCE}): {differences}")
    result = {"onnx": str(path), "family": family.name, "inputs": names, "outputs": list(graph.output_names),
              "dynamic_axes": {name: list(axes) for name, axes in dynamic.items()}, "opset": opset,
              "max_abs_diff": differences}
    (out / "onnx_export.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def graph_of(family: Family, model: torch.nn.Module) -> tuple[OutputsOf, list[str]]:
    """The module to export for `model`, and its input names."""
    names = [name for name in ("pixel_values", "input_ids", "attention_mask")
             if name in example_inputs(model.config, 1, 2)]
    outputs = OUTPUTS.get(family.name, ("logits",))
    return OutputsOf(model, names, outputs, text="input_ids" in names).eval(), names


def compare(graph: OutputsOf, session, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Max abs difference between onnxruntime and PyTorch, per output."""
    with torch.no_grad():
        expected = graph(*(inputs[name] for name in graph.input_names))
    got = session.run(list(graph.output_names), {name: inputs[name].numpy() for name in graph.input_names})
    return {name: float((torch.from_numpy(g) - e).abs().max()) for name, g, e in zip(graph.output_names, got, expected)}


def time_inference(graph: OutputsOf, session, inputs: dict[str, torch.Tensor], repeats: int) -> tuple[float, float]:
    """Seconds per call of PyTorch eager and of onnxruntime on the same inputs (best of `repeats`)."""
    feeds = {name: inputs[name].numpy() for name in graph.input_names}
    args = tuple(inputs[name] for name in graph.input_names)
    eager, onnx = [], []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            graph(*args)
            eager.append(time.perf_counter() - start)
            start = time.perf_counter()
            session.run(None, feeds)
            onnx.append(time.perf_counter() - start)
    return min(eager), min(onnx)
