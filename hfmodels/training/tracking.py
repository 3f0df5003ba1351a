"""Experiment tracking through accelerate's trackers; MLflow by default, with a store in the run folder."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from .run_folder import read_run

logger = logging.getLogger(__name__)

TRACKERS = ("mlflow", "tensorboard", "trackio", "wandb")


def tracker_names(report_to: str) -> list[str] | None:
    """`--report-to` as accelerate's `log_with`: a name, `all`, `none`, or `auto` (MLflow when installed)."""
    if report_to == "auto":
        return ["mlflow"] if importlib.util.find_spec("mlflow") else None
    if report_to == "none":
        return None
    if report_to == "all":
        return [name for name in TRACKERS if importlib.util.find_spec(name)]
    names = [name.strip() for name in report_to.split(",")]
    for name in names:
        if name not in TRACKERS:
            raise ValueError(
                f"--report-to {name!r} is not a tracker; choose from {', '.join(TRACKERS)}, all, none, auto"
            )
        if importlib.util.find_spec(name) is None:
            raise ValueError(
                f"--report-to {name}: the package {name!r} is not installed (pip install 'hfmodels[trackers]')"
            )
    return names


def start_tracking(accelerator: Accelerator, args, output_dir: Path, family, model_config) -> dict[str, str]:
    """Opens the tracker runs and logs the resolved arguments and model config as parameters.
    Returns the run ids (for the run's reproducibility record)."""
    if not accelerator.log_with:
        return {}
    names = [str(getattr(t, "value", t)) for t in accelerator.log_with]
    init_kwargs: dict[str, Any] = {}
    if "mlflow" in names and accelerator.is_main_process:
        import mlflow

        output_dir.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(args.tracking_uri or f"sqlite:///{output_dir.resolve()}/mlflow.db")
        init_kwargs["mlflow"] = {"logging_dir": str(output_dir.resolve() / "mlartifacts"), "run_name": output_dir.name}
    params = {**{f"args.{k}": v for k, v in args.to_dict().items()},
              **{f"model.{k}": v for k, v in model_config.to_diff_dict().items()}}
    params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
    accelerator.init_trackers(f"hfmodels-{family.name}", config=params, init_kwargs=init_kwargs)
    if "mlflow" in names and accelerator.is_main_process:
        return {"mlflow": accelerator.get_tracker("mlflow").active_run.info.run_id}
    return {}


def finish_tracking(accelerator: Accelerator, output_dir: Path, family) -> None:
    """On the main process: logs the card, results and pictures, and the model as an MLflow pyfunc model."""
    if not accelerator.trackers:
        return
    try:
        accelerator.get_tracker("mlflow")
    except ValueError:
        return
    with warnings.catch_warnings():  # mlflow warns about its own classes' missing type hints on import
        warnings.simplefilter("ignore", UserWarning)
        import mlflow

        from .mlflow_model import PipelinePyfuncModel
    from transformers.pipelines import SUPPORTED_TASKS

    run = read_run(output_dir)
    for name in run.record_files():
        mlflow.log_artifact(str(output_dir / name))
    if family.pipeline_tag not in SUPPORTED_TASKS:  # e.g. sampling models: no pipeline to serve
        return
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        model_dir.mkdir()
        for name in run.model_files():
            shutil.copy2(output_dir / name, model_dir / name)
        mlflow.pyfunc.log_model(
            name="model",
            python_model=PipelinePyfuncModel(),
            artifacts={"model": str(model_dir)},
            pip_requirements=["hfmodels"],
        )
    logger.info("logged the model to MLflow run %s", mlflow.active_run().info.run_id)
