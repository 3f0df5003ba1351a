"""`hfmodels space export`: a Gradio Space folder for a model, runnable with `python app.py` and without hfmodels
(the model is loaded from the code saved beside its weights, the view from a copy of `views.py`); `--push` creates
the Space on the Hub and uploads the folder in one commit."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import transformers
from huggingface_hub import CommitInfo, HfApi

from ..atomic import replaced_folder
from .server import family_name, resolve_model, write_examples

VIEWS_FILE = Path(__file__).with_name("views.py")
VIEWS_MODULE = "hfmodels_app"  # the name views.py has inside a Space
# What a Space needs of a model folder: config, weights, code, processor, card and results; not its run records.
MODEL_SUFFIXES = (".json", ".safetensors", ".py", ".md", ".txt", ".png")
RUN_RECORDS = ("training_log.json", "training_args.json", "run_info.json")

APP_TEMPLATE = '''"""The Gradio Space of {title}, written by `hfmodels space export`. Run it with `python app.py`."""

from pathlib import Path

from {module} import build_app, launch

HERE = Path(__file__).resolve().parent
app = build_app(
    HERE / "model", family={family!r}, trust_remote_code=True,
    examples=sorted(str(path) for path in (HERE / "examples").glob("*.png")), title={title!r},
)

if __name__ == "__main__":
    launch(app)  # 127.0.0.1, or GRADIO_SERVER_NAME / GRADIO_SERVER_PORT as a Space sets them
'''

README_TEMPLATE = """---
title: {title}
emoji: 🔬
colorFrom: blue
colorTo: gray
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
{models}---

# {title}

A demo of {model_link}, a {family} model made with [hfmodels](https://github.com/hfmodels/hfmodels). The model's
files are in `model/` (its card: `model/README.md`); the app loads them with `trust_remote_code=True`, so the Space
needs only torch, transformers and gradio. Run it locally with `pip install -r requirements.txt && python app.py`.
"""


def export_space(model: str | Path, out_dir: str | Path, model_repo: str | None = None) -> Path:
    """Writes `app.py`, `requirements.txt`, `README.md` (Space front matter), the view code, the model files and
    example images into `out_dir`. `model_repo` is the Hub repo the card links to (default: `model` when it is a
    repo id rather than a folder)."""
    import gradio

    model_dir = resolve_model(model)
    family = family_name(model_dir)
    model_repo = model_repo or (None if Path(model).is_dir() else str(model))
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; export into a new folder")
    title = model_repo.split("/")[-1] if model_repo else model_dir.resolve().name
    with replaced_folder(out) as staging:  # the Space whole, or (a failed export) nothing
        (staging / "model").mkdir()
        for file in sorted(model_dir.iterdir()):
            if file.is_file() and file.suffix in MODEL_SUFFIXES and file.name not in RUN_RECORDS:
                shutil.copy2(file, staging / "model" / file.name)
        shutil.copy2(VIEWS_FILE, staging / f"{VIEWS_MODULE}.py")
        write_examples(model_dir, staging / "examples")
        (staging / "app.py").write_text(APP_TEMPLATE.format(title=title, family=family, module=VIEWS_MODULE))
        (staging / "requirements.txt").write_text(
            f"torch=={torch.__version__.split('+')[0]}\ntransformers=={transformers.__version__}\n"
            f"gradio=={gradio.__version__}\nnumpy\npillow\n" + sampler_requirements(family)
            + adapter_requirements(model_dir)
        )
        (staging / "README.md").write_text(README_TEMPLATE.format(
            title=title, gradio_version=gradio.__version__, family=family,
            models=f"models:\n- {model_repo}\n" if model_repo else "",
            model_link=f"[{model_repo}](https://huggingface.co/{model_repo})" if model_repo else f"`{title}`",
        ))
    return out


def sampler_requirements(family: str) -> str:
    """The diffusion family samples through a diffusers scheduler: its app needs diffusers too."""
    if family != "diffusion":
        return ""
    import diffusers

    return f"diffusers=={diffusers.__version__}\n"


def adapter_requirements(model_dir: Path) -> str:
    """A LoRA run's app loads its base model and the adapter through peft."""
    from ..pretrained.adapters import is_adapter_run

    if not is_adapter_run(model_dir):
        return ""
    import peft

    return f"peft=={peft.__version__}\n"


def push_space(folder: str | Path, space_id: str, private: bool = False, token: str | None = None) -> CommitInfo:
    """Creates the Space `space_id` (a Gradio Space; kept when it exists) and uploads `folder` in one commit, with the
    timeouts and retries of a model push (hfmodels.hub.push); a push that fails raises PushError (a ValueError)."""
    from ..hub.push import check_repo_id, commit_files

    folder = Path(folder)
    if not (folder / "app.py").is_file():
        raise ValueError(f"{folder} has no app.py: export it first with `hfmodels space export`")
    check_repo_id(space_id)
    api = HfApi(token=token)
    files = [(file.relative_to(folder).as_posix(), file)
             for file in sorted(folder.rglob("*")) if file.is_file() and "__pycache__" not in file.parts]
    return commit_files(
        api, space_id, files, action=f"pushing {folder} to {api.endpoint}/spaces/{space_id}", token=token,
        repo_type="space", space_sdk="gradio", private=private,
        commit_message=f"Space for {folder.name} (hfmodels space export)",
    )
