"""`hfmodels app`: a model folder or Hub repo served with its family's view; `load_test` (concurrent clients
against a running app) and `measure_latency` for the benchmark. The views themselves live in `views.py`
(self-contained, so Spaces can run them without hfmodels)."""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
        raise ValueError(
            f"{model}: neither a model folder nor a Hub model repo that could be fetched ({error})"
        ) from error


def family_name(model_dir: Path) -> str:
    """The family of a saved model, from its config."""
    from ..families import family_of_config, load_config

    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} has no config.json: it is not a saved model folder")
    return family_of_config(load_config(model_dir)).name


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
        data = load_source(dataset, check_images=False)  # only the few shown are read
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


def build(model: str | Path, concurrency: int = 2, examples: bool = True, title: str | None = None):
    """The gradio app of a model folder or Hub repo (hfmodels installed: no remote code is run), under `title`
    (default: the Hub repo id, or the folder's name: a local path is not shown to visitors)."""
    from .views import build_app

    model_dir = resolve_model(model)
    family = family_name(model_dir)
    example_paths = write_examples(model_dir, Path(tempfile.mkdtemp(prefix="hfmodels-app-"))) if examples else []
    name = Path(model).name if Path(model).exists() else str(model)
    return build_app(model_dir, family, examples=example_paths, concurrency=concurrency,
                     title=title or f"{name} ({family})")


def serve(model: str | Path, port: int | None = None, share: bool = False, concurrency: int = 2,
          examples: bool = True, title: str | None = None) -> None:
    """Serves the app on 127.0.0.1 until interrupted."""
    from .views import launch

    launch(build(model, concurrency, examples, title), port=port, share=share)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def resident_mb(pid: int) -> float:
    """Resident memory (VmRSS) of process `pid` in MiB: /proc on Linux, else psutil (if installed)."""
    status = Path(f"/proc/{pid}/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import psutil  # not a dependency: only needed where there is no /proc

    return psutil.Process(pid).memory_info().rss / 2**20


def memory_summary(pid: int, samples: list[tuple[float, float]]) -> dict[str, Any]:
    """(seconds since the start, MiB) samples -> start, peak, end, and the growth over each half of the run.
    Warm-up (allocator arenas, caches, a first request per session) lands in the first half; a leak, which
    grows with every request, grows the second half as much as the first."""
    (_, start), (end_time, end) = samples[0], samples[-1]
    _, middle = min(samples, key=lambda sample: abs(sample[0] - end_time / 2))
    return {
        "pid": pid, "samples": len(samples), "rss_start_mb": start, "rss_peak_mb": max(mb for _, mb in samples),
        "rss_middle_mb": middle, "rss_end_mb": end, "first_half_growth_mb": middle - start,
        "second_half_growth_mb": end - middle,
    }


def client_uploads(image: str | Path, clients: int) -> list[Path]:
    """One copy of the image per client (same pixels, other bytes): gradio (6.31) stores uploads under their
    content's hash, and identical uploads at the same instant can race in its upload folder."""
    from PIL import Image, PngImagePlugin

    copies = Path(tempfile.mkdtemp(prefix="hfmodels-load-"))
    for index in range(clients):
        note = PngImagePlugin.PngInfo()
        note.add_text("client", str(index))
        with Image.open(image) as picture:
            picture.save(copies / f"client_{index}.png", pnginfo=note)
    return [copies / f"client_{index}.png" for index in range(clients)]


def load_test(
    url: str, image: str | Path, clients: int = 20, seconds: float | None = None, requests: int | None = None,
    api_name: str = "/classify", pid: int | None = None, sample_every: float = 0.25, error_messages: int | None = 5,
) -> dict[str, Any]:
    """`clients` gradio_client clients calling a running app at once, each predicting `image` in a loop, one
    call after another: for `seconds`, or `requests` calls each. Latencies include the wait in the app's queue.

    Every client connects and makes one untimed call first (warm-up); the clock starts when all have. With `pid`
    (the process serving the app), its resident memory is sampled every `sample_every` seconds from then until the
    last client stops.

    Returns `requests` answered, `errors` (count) with the first `error_messages` of them (None: all),
    `requests_per_s`, p50 / p95 / p99 / max latency in seconds, the answers each client got, and `memory`
    (see `memory_summary`; None without `pid`)."""
    if (seconds is None) == (requests is None):
        raise ValueError("load_test needs either seconds (a duration) or requests (calls per client)")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # gradio_client's usage report, read per Client
    from gradio_client import Client, handle_file

    uploads = client_uploads(image, clients)
    clock: dict[str, float] = {}
    samples: list[tuple[float, float]] = []

    def start_clock() -> None:  # run once, by the last client to connect, before any of them calls
        clock["started"] = time.perf_counter()
        clock["deadline"] = clock["started"] + (seconds if seconds is not None else float("inf"))
        if pid is not None:
            samples.append((0.0, resident_mb(pid)))

    connected = threading.Barrier(clients, action=start_clock)

    def calls(index: int) -> tuple[list[float], list[str]]:
        latencies: list[float] = []
        errors: list[str] = []
        try:
            client = Client(url, verbose=False)
        except Exception as error:  # noqa: BLE001  counted and reported: how the app behaves under load
            errors.append(f"connecting: {type(error).__name__}: {error}")
            connected.wait()
            return latencies, errors
        try:
            upload = handle_file(str(uploads[index]))
            try:  # untimed: a client's first call starts its threads and the app's first work for its session
                client.predict(upload, api_name=api_name)
            except Exception as error:  # noqa: BLE001  counted and reported, as above
                errors.append(f"warm-up: {type(error).__name__}: {error}")
            connected.wait()
            done, limit = 0, requests if requests is not None else float("inf")
            while done < limit and time.perf_counter() < clock["deadline"]:
                started = time.perf_counter()
                try:
                    client.predict(upload, api_name=api_name)
                    latencies.append(time.perf_counter() - started)
                except Exception as error:  # noqa: BLE001  counted and reported, as above
                    errors.append(f"{type(error).__name__}: {error}")
                done += 1
        finally:
            client.close()
        return latencies, errors

    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(sample_every):
            if "started" in clock:
                samples.append((time.perf_counter() - clock["started"], resident_mb(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    if pid is not None:
        sampler.start()
    try:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(calls, range(clients)))
    finally:
        stop_sampling.set()
        if sampler.is_alive():
            sampler.join()
    wall = time.perf_counter() - clock["started"]
    if pid is not None:
        samples.append((wall, resident_mb(pid)))
    latencies = [latency for answered, _ in results for latency in answered]
    errors = [error for _, failed in results for error in failed]
    ordered = sorted(latencies) or [float("nan")]
    return {
        "clients": clients, "seconds": wall, "requests": len(latencies), "errors": len(errors),
        "first_errors": errors[:error_messages] if error_messages is not None else errors,
        "requests_per_s": len(latencies) / wall, "answers_per_client": [len(answered) for answered, _ in results],
        "p50_s": statistics.median(ordered), "p95_s": percentile(ordered, 0.95), "p99_s": percentile(ordered, 0.99),
        "max_s": ordered[-1], "memory": memory_summary(pid, samples) if pid is not None else None,
    }


def measure_latency(
    url: str, image: str | Path, api_name: str = "/classify", requests: int = 20, clients: int = 8
) -> dict[str, Any]:
    """Prediction latency of a running app (e.g. `hfmodels app` on 127.0.0.1), through its API as a client sees it.

    First `requests` calls one after another (p50 / p95 of one image); then `clients` clients at once, each making
    `requests` calls (`load_test`, which warms each client up with one untimed call): their latencies include the
    time spent waiting in the app's queue. Returns seconds, and every error message."""
    alone = load_test(url, image, clients=1, requests=requests, api_name=api_name, error_messages=None)
    loaded = load_test(url, image, clients=clients, requests=requests, api_name=api_name, error_messages=None)
    errors = alone["first_errors"] + loaded["first_errors"]
    if not alone["requests"] or not loaded["requests"]:
        raise RuntimeError(f"every call to {url}{api_name} failed; first error: {errors[0] if errors else '?'}")
    return {
        "single_client": {"requests": alone["requests"], "p50_s": alone["p50_s"], "p95_s": alone["p95_s"]},
        "concurrent": {
            "clients": clients, "requests": loaded["requests"], "p50_s": loaded["p50_s"], "p95_s": loaded["p95_s"],
            "throughput_per_s": loaded["requests_per_s"],
        },
        "errors": errors,
    }
