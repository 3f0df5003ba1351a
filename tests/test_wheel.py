"""hfmodels as its users get it: a wheel, built from the source tree and from its sdist, installed into a fresh
virtual environment with no source checkout on its path, every command run once from a folder of its own.

The fresh environment takes hfmodels from the wheel only; its dependencies come from this test's environment
through a `.pth` file (no network at test time). That file only adds a folder to `sys.path`: the `.pth` files in
it, the editable install of hfmodels among them, are not run.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from hfmodels import __version__
from hfmodels.data.digits import digits_pixels
from hfmodels.testing import free_port
from hfmodels.testing.fixtures import TEST_USER, client_env

from .conftest import REPO
from .test_app import gradio_client, wait_for_server

SKIPPED_IN_COPY = shutil.ignore_patterns(
    ".git", ".venv", ".venv-oldest", "build", "*.egg-info", "__pycache__", ".pytest_cache"
)
TINY_RUN = ["--max-steps", "20", "--batch-size", "32", "--model-config", "hidden_sizes=[8,8]", "depths=[1,1]"]


def build(source: Path, out_dir: Path, *what: str) -> Path:
    """`python -m build` without isolation (its build requirements are installed here; no network)."""
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out_dir), *what, str(source)],
                   check=True, capture_output=True, text=True, timeout=600)
    return out_dir


def wheel_contents(wheel: Path) -> dict[str, bytes]:
    """The wheel's files and their bytes, less the dist-info's RECORD (it lists the others with their hashes)."""
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith(".dist-info/RECORD")}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """A copy of the source tree as a user's checkout may hold it (with a training run inside), built twice: the
    wheel straight from the tree, and the sdist with the wheel built from it (what `python -m build` does)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=SKIPPED_IN_COPY)
    planted = source / "runs" / "planted-run"
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "config.json").write_text("{}")
    (planted / "model.safetensors").write_bytes(b"weights")
    direct = next(build(source, root / "direct", "--wheel").glob("*.whl"))
    from_sdist = build(source, root / "from_sdist")
    return {"direct": direct, "from_sdist": next(from_sdist.glob("*.whl")), "sdist": next(from_sdist.glob("*.tar.gz"))}


def test_the_wheel_holds_the_package_and_nothing_else(wheels):
    files = set(wheel_contents(wheels["direct"]))
    package = {name for name in files if not name.startswith("hfmodels-")}
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "hfmodels").rglob("*.py")
               if "__pycache__" not in path.parts}
    templates = {"hfmodels/" + path.relative_to(REPO).as_posix() for path in (REPO / "model_cards").rglob("*")
                 if path.is_file() and "__pycache__" not in path.parts}
    assert modules - package == set(), "modules of the source tree missing from the wheel (pyproject's packages)"
    assert templates - package == set(), "card templates missing from the wheel"
    assert package - modules - templates == set(), "the wheel holds files that are neither modules nor templates"
    assert {name.split("/")[0] for name in files} == {"hfmodels", f"hfmodels-{__version__}.dist-info"}
    for junk in ("tests/", "runs/", "planted", "benchmarks.json", "benchmarks.md", ".pyc", ".tmp-", "scripts/"):
        assert not any(junk in name for name in files), junk


def test_a_wheel_built_from_the_sdist_holds_the_same_files(wheels):
    assert wheel_contents(wheels["from_sdist"]) == wheel_contents(wheels["direct"])


@pytest.fixture(scope="module")
def installed(wheels, tmp_path_factory) -> dict:
    """A fresh virtual environment with the wheel installed; `run(*args)` runs its `hfmodels` in a folder of its own."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index",
                    "--no-deps", str(wheels["direct"])], check=True, capture_output=True, timeout=300)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True)
    site_packages = Path(purelib.stdout.strip())
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str, env_update: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "hfmodels"), *args], capture_output=True, text=True, cwd=work,
                              env={**env, **(env_update or {})}, timeout=timeout)

    return {"venv": venv, "python": python, "site_packages": site_packages, "work": work, "run": run, "env": env}


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    code = ("import hfmodels, hfmodels.model_cards, hfmodels.models.loading as loading; "
            "print(hfmodels.__file__); print(hfmodels.model_cards.__file__); print(loading.__file__)")
    result = subprocess.run([str(installed["python"]), "-c", code], capture_output=True, text=True, check=True,
                            cwd=installed["work"], env=installed["env"])
    for path in result.stdout.split():
        assert Path(path).is_relative_to(installed["site_packages"]), path


@pytest.fixture(scope="module")
def installed_run(installed) -> Path:
    """`hfmodels train` from the wheel: a short run on the embedded digits, tracked with MLflow (the default)."""
    result = installed["run"]("train", *TINY_RUN, "--output-dir", "runs/c")
    assert result.returncode == 0, result.stderr[-3000:]
    return installed["work"] / "runs" / "c"


def test_installed_train_writes_a_complete_run_folder_and_its_card(installed, installed_run):
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_image_classifier.py",
                 "loading.py", "README.md", "learning_curves.png", "confusion_matrix.png", "eval_results.json",
                 "run_info.json", "mlflow.db", "mlflow_model/MLmodel", "mlflow_model/mlflow_model.py"):
        assert (installed_run / name).is_file(), name
    assert not (installed_run / "loading.py").is_symlink()
    assert json.loads((installed_run / "run_info.json").read_text())["git_commit"] is None  # not a checkout
    checked = installed["run"]("card", "--check", str(installed_run))
    assert checked.returncode == 0, checked.stderr[-3000:]


def test_installed_evaluate_and_predict(installed, installed_run):
    evaluated = installed["run"]("evaluate", str(installed_run))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    saved = json.loads((installed_run / "eval_results.json").read_text())
    assert json.loads(evaluated.stdout)["metrics"]["accuracy"] == pytest.approx(saved["metrics"]["accuracy"])

    images, labels = digits_pixels()
    image = installed["work"] / "digit.png"
    Image.fromarray(images[0], mode="L").save(image)
    predicted = installed["run"]("predict", str(installed_run), str(image), "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert len(json.loads(predicted.stdout)[0]["predictions"]) == 2


def test_installed_push_to_the_loopback_hub_and_init_from_it(installed, installed_run, loopback_hub, tmp_path):
    hub_env = client_env(loopback_hub, tmp_path / "hf_home")
    pushed = installed["run"]("push", str(installed_run), f"{TEST_USER}/digits", env_update=hub_env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    files = set(loopback_hub.files(f"{TEST_USER}/digits"))
    assert {"config.json", "model.safetensors", "modeling_image_classifier.py", "loading.py", "README.md"} <= files
    # the published run starts another, downloaded through the Hub client
    started = installed["run"]("train", "--max-steps", "2", "--report-to", "none", "--output-dir", "runs/d",
                               "--init-from", f"{TEST_USER}/digits", env_update=hub_env)
    assert started.returncode == 0, started.stderr[-3000:]
    (lineage,) = json.loads((installed["work"] / "runs" / "d" / "run_info.json").read_text())["started_from"]
    assert lineage["base_model"] == f"{TEST_USER}/digits" and lineage["on_hub"]
    # a LoRA adapter on it, which evaluate loads onto the base from the Hub
    adapted = installed["run"]("train", "--max-steps", "2", "--report-to", "none", "--output-dir", "runs/lora",
                               "--init-from", f"{TEST_USER}/digits", "--lora", "r=2,alpha=4", env_update=hub_env)
    assert adapted.returncode == 0, adapted.stderr[-3000:]
    assert (installed["work"] / "runs" / "lora" / "adapter_model.safetensors").is_file()
    evaluated = installed["run"]("evaluate", "runs/lora", env_update=hub_env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]


def test_installed_app_answers_a_request(installed, installed_run, tmp_path):
    port = free_port()
    log = tmp_path / "app.log"
    with log.open("w") as output:
        process = subprocess.Popen([str(installed["venv"] / "bin" / "hfmodels"), "app", str(installed_run), "--port",
                                    str(port), "--no-examples"], cwd=installed["work"], env=installed["env"],
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        url = wait_for_server(f"http://127.0.0.1:{port}/", process, log=log)
        images, _ = digits_pixels()
        Image.fromarray(images[1], mode="L").save(tmp_path / "digit.png")
        label, _ = gradio_client.Client(url, verbose=False).predict(
            gradio_client.handle_file(str(tmp_path / "digit.png")), api_name="/classify")
        assert label["label"] in {str(digit) for digit in range(10)} and label["confidences"]
    finally:
        process.terminate()
        process.wait(timeout=30)
