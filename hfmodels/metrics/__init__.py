"""Local `evaluate` metric modules, loadable offline: `evaluate.load(metric_path("accuracy"))`."""

from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).parent


def available_metrics() -> list[str]:
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def metric_path(name: str) -> Path:
    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        raise ValueError(f"Unknown metric {name!r}; the local metrics are: {', '.join(available_metrics())}")
    return path


def load_metric(name: str, **kwargs) -> evaluate.EvaluationModule:
    """Loads one of the package's metric modules from disk (no network)."""
    return evaluate.load(str(metric_path(name)), **kwargs)
