"""`hfmodels app`: a model folder or Hub repo served with its family's view, and `measure_latency` for the
benchmark. The views themselves live in `views.py` (self-contained, so Spaces can run them without hfmodels)."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from transformers import AutoConfig

logger = logging.getLogger(__name__)

EXAMPLES_PER_APP = 4


def resolve_model(model: str | Path) -> Path:
    """A local model folder as it is, a Hub repo id downloaded (or taken from the cache) to a local folder."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(model)))
    except Exception as error:  # huggingface_hub raises many kinds: not found, offline, bad id, ...
        raise ValueError(f"{model}: neither a model folder nor a Hub model repo that could be fetched ({error})") from error


def family_name(model_dir: Path) -> str:
    """The family of a saved model, from its config."""
    from ..families import family_of_config

    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} has no config.json: it is not a saved model folder")
    return family_of_config(AutoConfig.from_pretrained(model_dir)).name


def write_examples(model_dir: Path, out_dir: Path, count: int = EXAMPLES_PER_APP) -> list[str]:
    """Up to `count` held-out images of the data the model was trained on (one per class first), saved as PNGs
    in `out_dir`; none for text families or when the data cannot be loaded here."""
    from ..data import load_source
    from ..families import get_family
    from ..training.evaluation import training_arguments_of

    family = get_family(family_name(model_dir))
    if "image" not in family.columns:
        return []
    dataset = training_arguments_of(model_dir).get("dataset") or family.default_dataset
    try:
        data = load_source(dataset)
    except ValueError as error:
        logger.warning("no example images: the training data %s cannot be loaded here (%s)", dataset, error)
        return []
    split = data["test"] if "test" in data else data["validation"] if "validation" in data else data["train"]
    rows = list(range(len(split)))
    if "label" in split.column_names:  # one image of each class first, then the rest in order
        first_of_class = {label: index for index, label in reversed(list(enumerate(split["label"])))}
        rows = sorted(first_of_class.values()) + [i for i in rows if i not in first_of_class.values()]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in rows[:count]:
        path = out_dir / f"example_{len(paths)}.png"
        split[index]["image"].save(path)
        paths.append(str(path))
    return paths


def build(model: str | Path, concurrency: int = 2, examples: bool = True):
    """The gradio app of a model folder or Hub repo (hfmodels installed: no remote code is run)."""
    from .views import build_app

    model_dir = resolve_model(model)
    family = family_name(model_dir)
    example_paths = write_examples(model_dir, Path(tempfile.mkdtemp(prefix="hfmodels-app-"))) if examples else []
    return build_app(model_dir, family, examples=example_paths, concurrency=concurrency, title=f"{model} ({family})")


def serve(model: str | Path, port: int | None = None, share: bool = False, concurrency: int = 2,
          examples: bool = True) -> None:
    """Serves the app on 127.0.0.1 until interrupted."""
    from .views import launch

    launch(build(model, concurrency, examples), port=port, share=share)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_latency(
    url: str, image: str | Path, api_name: str = "/classify", requests: int = 20, clients: int = 8
) -> dict[str, Any]:
    """Prediction latency of a running app (e.g. `hfmodels app` on 127.0.0.1), through its API as a client sees it.

    First `requests` calls one after another (p50 / p95 of one image); then `clients` clients at once, each making
    `requests` calls: their latencies include the time spent waiting in the app's queue. Returns seconds.

    Each client uploads its own copy of the image (same pixels, other bytes): gradio (6.31) stores uploads under
    their content's hash, and identical uploads at the same instant can race in its upload folder."""
    from gradio_client import Client, handle_file
    from PIL import Image, PngImagePlugin

    copies = Path(tempfile.mkdtemp(prefix="hfmodels-latency-"))
    for index in range(clients):
        note = PngImagePlugin.PngInfo()
        note.add_text("client", str(index))
        with Image.open(image) as picture:
            picture.save(copies / f"client_{index}.png", pnginfo=note)

    def timed_calls(count: int, client_index: int = 0) -> tuple[list[float], list[str]]:
        client = Client(url, verbose=False)
        upload = copies / f"client_{client_index}.png"
        latencies, errors = [], []
        for _ in range(count):
            started = time.perf_counter()
            try:
                client.predict(handle_file(str(upload)), api_name=api_name)
                latencies.append(time.perf_counter() - started)
            except Exception as error:  # counted and reported: the point is how the app behaves under load
                errors.append(f"{type(error).__name__}: {error}")
        return latencies, errors

    timed_calls(2)  # warm-up: first calls pay for lazy initialisation
    alone, alone_errors = timed_calls(requests)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(timed_calls, [requests] * clients, range(clients)))
    wall = time.perf_counter() - started
    loaded = [latency for latencies, _ in results for latency in latencies]
    errors = alone_errors + [error for _, errors in results for error in errors]
    if not alone or not loaded:
        raise RuntimeError(f"every call to {url}{api_name} failed; first error: {errors[0] if errors else '?'}")
    return {
        "single_client": {"requests": len(alone), "p50_s": statistics.median(alone), "p95_s": percentile(alone, 0.95)},
        "concurrent": {
            "clients": clients, "requests": len(loaded), "p50_s": statistics.median(loaded),
            "p95_s": percentile(loaded, 0.95), "throughput_per_s": len(loaded) / wall,
        },
        "errors": errors,
    }
