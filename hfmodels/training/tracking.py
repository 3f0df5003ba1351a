"""Experiment tracking through accelerate's trackers; MLflow by default, with a store in the run folder."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from .run_folder import read_run

logger = logging.getLogger(__name__)

TRACKERS = ("mlflow", "tensorboard", "trackio", "wandb")
MLFLOW_MODEL_DIR = "mlflow_model"  # the run's MLflow model, in the run folder
TRACKIO_DIR = "trackio"  # trackio's store, in the run folder


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
    if "trackio" in names and accelerator.is_main_process:
        init_kwargs["trackio"] = {"name": output_dir.name}
        keep_trackio_in(output_dir.resolve() / TRACKIO_DIR, f"hfmodels-{family.name}")
    params = {**{f"args.{k}": v for k, v in args.to_dict().items()},
              **{f"model.{k}": v for k, v in model_config.to_diff_dict().items()}}
    params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
    accelerator.init_trackers(f"hfmodels-{family.name}", config=params, init_kwargs=init_kwargs)
    runs = {}
    if "mlflow" in names and accelerator.is_main_process:
        runs["mlflow"] = accelerator.get_tracker("mlflow").active_run.info.run_id
    if "trackio" in names and accelerator.is_main_process:
        runs["trackio"] = accelerator.get_tracker("trackio").run.name
    return runs


def keep_trackio_in(folder: Path, project: str) -> None:
    """Points trackio's store (`$TRACKIO_DIR`, else `$HF_HOME/trackio`) at the run folder's `folder`. trackio reads
    the variable once, when it is first imported: a process that already imported it (several runs in one process)
    keeps its first store, which the log names.

    The run folder's new version holds hard links to the old one's files (atomic.py), while trackio writes from a
    thread of its own: a file it created or wrote beside the database while the new version was made would stay
    behind in the old one. So the project's database exists before training starts (an empty file is an empty
    SQLite database) and is written in place, through a rollback journal instead of trackio's write-ahead log."""
    os.environ["TRACKIO_SQLITE_JOURNAL_MODE"] = "delete"
    if "trackio" not in sys.modules:
        os.environ["TRACKIO_DIR"] = str(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{project}.db").touch()
        return
    from trackio.utils import TRACKIO_DIR as store

    if Path(store) != folder:
        logger.warning("trackio stores this run in %s, where this process first imported it (not in %s)", store,
                       folder)


def finish_tracking(accelerator: Accelerator, output_dir: Path, family) -> None:
    """On the main process: logs the card, results and pictures, and the model as an MLflow pyfunc model (also saved
    as `mlflow_model/` in the run folder, whose paths are relative: it serves from wherever the folder is)."""
    if not accelerator.trackers:
        return
    try:
        accelerator.get_tracker("mlflow")
    except ValueError:
        return
    with warnings.catch_warnings():  # mlflow warns about its own classes' missing type hints on import
        warnings.simplefilter("ignore", UserWarning)
        import mlflow

    run = read_run(output_dir)
    for name in run.record_files():
        mlflow.log_artifact(str(output_dir / name))
    model_dir = save_mlflow_model(output_dir, family, output_dir / MLFLOW_MODEL_DIR)
    if model_dir is not None:
        mlflow.log_artifacts(str(model_dir), "model")
        logger.info("logged the model to MLflow run %s (served with `mlflow models serve -m %s`)",
                    mlflow.active_run().info.run_id, model_dir)


# The task name the served model answers for the fusion family (image + text -> class), which has no pipeline.
IMAGE_TEXT_TASK = "image-text-classification"


def served_task(family) -> str | None:
    """What the MLflow model serves: the family's pipeline task, image + text classification for the fusion
    family, None for a family without one (the VAE samples through its own API)."""
    from transformers.pipelines import SUPPORTED_TASKS

    if family.pipeline_tag in SUPPORTED_TASKS:
        return family.pipeline_tag
    return IMAGE_TEXT_TASK if {"image", "text"} <= set(family.columns) else None


def served_requirements() -> list[str]:
    """What the served model needs from a package index (hfmodels is none of them: its code travels as artifacts):
    hfmodels' own ranges of the packages the pyfunc and the saved model code import; MLflow adds itself."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    needed = ("torch", "transformers", "safetensors", "pillow", "numpy")
    return [str(r) for r in map(Requirement, requires("hfmodels") or []) if r.name in needed and not r.marker]


def save_mlflow_model(run_dir: Path, family, target: Path) -> Path | None:
    """Writes the run's model as a self-contained MLflow pyfunc model folder `target` (replaced when it exists):
    the model folder and its code as artifacts, the pyfunc file (`mlflow_model.py`, which imports no hfmodels),
    a signature and requirements that resolve from PyPI. A LoRA run serves its merged model (`--merge-lora`).
    Returns `target`, or None when the family has nothing to serve, or the LoRA run no merged model."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from ..pretrained.adapters import MERGED_DIR, is_adapter_run

    task = served_task(family)
    if task is None:
        return None
    if is_adapter_run(run_dir):
        if not (run_dir / MERGED_DIR).is_dir():
            logger.info("no MLflow model: a LoRA run serves its merged model, which --merge-lora writes")
            return None
        run_dir = run_dir / MERGED_DIR
    inputs = [name for name in ("image", "text") if name in family.columns]
    params = ParamSchema([ParamSpec("max_new_tokens", "long", 0)]) if task == "text-generation" else None
    signature = ModelSignature(
        inputs=Schema([ColSpec("binary" if name == "image" else "string", name) for name in inputs]),
        params=params,
    )
    run = read_run(run_dir)
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        model_dir.mkdir()
        for name in run.model_files():
            shutil.copy2(run_dir / name, model_dir / name)
        with warnings.catch_warnings():  # models from code: MLflow notes that it reads no type hints
            warnings.simplefilter("ignore", UserWarning)
            mlflow.pyfunc.save_model(
                str(target),
                python_model=str(Path(__file__).with_name("mlflow_model.py")),
                artifacts={"model": str(model_dir)},
                model_config={"task": task, "inputs": inputs},
                signature=signature,
                pip_requirements=served_requirements(),
            )
    return target
