"""Deployment as a user's tools see it: `mlflow models serve` of a run's MLflow model, answering a remote client;
`hfmodels export onnx` checked with onnxruntime; the pipelines' defaults; launch configs that do what they say."""

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from packaging.requirements import Requirement
from PIL import Image

import hfmodels
from hfmodels.families import get_family
from hfmodels.models.segmentation import UNetImageProcessor
from hfmodels.testing import free_port
from hfmodels.training.tracking import save_mlflow_model

from .conftest import REPO, run_cli
from .model_tester import BLOCK_HFMODELS
from .saved_before import build

TINY_CLASSIFIER = ["--model-config", "hidden_sizes=[4,8]", "depths=[1,1]", "--batch-size", "16", "--max-steps", "3"]
SERVER_START_TIMEOUT = 120


def png_bytes(value: int = 200) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), value).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_gpt_folder(folder: Path) -> Path:
    """A GPT built by its family (the tokenizer trained on a few texts) and saved untrained: what serving and the
    pipeline's defaults need is the saved folder, not a good model."""
    texts = Dataset.from_dict({"text": [f"def f{i}(x):\n    return x + {i}\n" for i in range(40)]})
    model, tokenizer = get_family("gpt").build(texts, {"vocab_size": 300, "max_position_embeddings": 32,
                                                       "hidden_size": 16, "num_hidden_layers": 1,
                                                       "num_attention_heads": 2})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def blocked_hfmodels_env(folder: Path) -> dict[str, str]:
    """The environment of a process (and the processes it starts) in which hfmodels cannot be imported: a
    sitecustomize that installs the same import blocker as tests/model_tester.py's run_without_hfmodels."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCK_HFMODELS)
    return {**os.environ, "PYTHONPATH": str(folder), "HF_MODULES_CACHE": str(folder / "modules_cache"),
            "OMP_NUM_THREADS": "1",  # the server starts `uvicorn` from PATH: ours, of this environment
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


class Server:
    """`mlflow models serve` of one MLflow model folder on 127.0.0.1, as a deployment would run it."""

    def __init__(self, model_dir: Path, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", str(model_dir),
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )

    def wait_until_up(self) -> None:
        deadline = time.time() + SERVER_START_TIMEOUT
        while time.time() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"the server did not come up: {self.log.read_text()[-3000:]}")

    def post(self, payload: dict) -> tuple[int, dict]:
        """POSTs JSON to /invocations as a remote client would; returns the status and the JSON answer."""
        request = urllib.request.Request(self.url + "/invocations", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A trained classifier's MLflow model (what MLflow tracking writes into the run folder, see test_training), its
    run folder then moved elsewhere, and a GPT's: each served by `mlflow models serve` in a process where hfmodels
    cannot be imported."""
    root = tmp_path_factory.mktemp("served")
    trained = run_cli("train", *TINY_CLASSIFIER, "--report-to", "none", "--output-dir", str(root / "run"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    save_mlflow_model(root / "run", get_family("image-classifier"), root / "run" / "mlflow_model")
    moved = root / "moved" / "run"
    shutil.move(root / "run", moved)  # the MLflow model's paths are relative: it serves from the new place
    gpt = save_mlflow_model(tiny_gpt_folder(root / "gpt"), get_family("gpt"), root / "gpt-mlflow")
    env = blocked_hfmodels_env(root / "blocked")
    servers = {"classifier server": Server(moved / "mlflow_model", env, root / "classifier.log"),
               "gpt server": Server(gpt, env, root / "gpt.log")}
    try:
        for server in servers.values():
            server.wait_until_up()
        yield {"run": moved, "gpt": gpt, **servers}
    finally:
        for server in servers.values():
            server.stop()


def test_a_served_classifier_takes_image_bytes_and_returns_class_probabilities(served):
    status, answer = served["classifier server"].post(
        {"dataframe_records": [{"image": base64.b64encode(png_bytes(v)).decode()} for v in (30, 220)]}
    )
    assert status == 200, answer
    rows = answer["predictions"]
    assert len(rows) == 2
    for row in rows:
        assert set(row["probabilities"]) == {str(d) for d in range(10)}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)


def test_a_served_model_never_opens_a_path_a_client_names(served, tmp_path):
    on_the_server = tmp_path / "digit.png"  # a real image where the server can read it
    on_the_server.write_bytes(png_bytes())
    for value in (str(on_the_server), "/etc/passwd"):
        status, answer = served["classifier server"].post({"dataframe_records": [{"image": value}]})
        assert 400 <= status < 500, answer
    status, answer = served["classifier server"].post({"dataframe_records": [{"picture": "x"}]})
    assert 400 <= status < 500 and "image" in answer["message"]


def test_a_served_gpt_continues_a_text_prompt(served):
    status, answer = served["gpt server"].post(
        {"dataframe_records": [{"text": "def main("}, {"text": "import os\n"}], "params": {"max_new_tokens": 4}}
    )
    assert status == 200, answer
    texts = [row["generated_text"] for row in answer["predictions"]]
    assert texts[0].startswith("def main(") and texts[1].startswith("import os\n")
    assert all(len(text) > len(prompt) for text, prompt in zip(texts, ("def main(", "import os\n")))


def test_the_mlflow_model_is_self_contained_with_a_signature_and_index_requirements(served):
    model_dir = served["run"] / "mlflow_model"
    requirements = [Requirement(line) for line in (model_dir / "requirements.txt").read_text().split()]
    names = {requirement.name for requirement in requirements}
    assert "hfmodels" not in names and {"torch", "transformers", "mlflow"} <= names
    assert not any("+" in str(requirement.specifier) for requirement in requirements)  # no local build like +cpu
    mlmodel = (model_dir / "MLmodel").read_text()
    assert '"type": "binary", "name": "image"' in mlmodel
    # nothing it loads from points back into the source tree (model_code_path only names the file it copied)
    assert not [line for line in mlmodel.splitlines() if str(REPO) in line and "model_code_path" not in line]
    assert (model_dir / "artifacts" / "model" / "modeling_image_classifier.py").is_file()  # the model's code travels


def test_generation_and_segmentation_pipelines_work_with_their_defaults(served, tmp_path):
    from transformers import pipeline
    from transformers.utils import logging as transformers_logging

    generated = pipeline("text-generation", model=str(served["gpt"] / "artifacts" / "model"),
                         trust_remote_code=False)("def main(")  # no max_new_tokens: the saved config stops in time
    assert generated[0]["generated_text"].startswith("def main(")
    model = build(hfmodels, "unet")
    model.save_pretrained(tmp_path / "unet")
    processor = UNetImageProcessor(num_channels=1, size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5])
    processor.save_pretrained(tmp_path / "unet")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    transformers_logging.get_logger("transformers").addHandler(handler)
    try:
        segments = pipeline("image-segmentation", model=str(tmp_path / "unet"), trust_remote_code=False)(
            Image.new("L", (8, 8), 100))
    finally:
        transformers_logging.get_logger("transformers").removeHandler(handler)
    assert segments and [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []


# An export costs ~5 s of CPU: the default run exports the classifier, the GPT and the fusion model (images, texts,
# both); the others reuse their layers and exporter paths (convolutions, the GPT backbone) and run with `-m slow`.
SLOW = pytest.mark.slow
ONNX_MODELS = ("image_classifier", "gpt_causal_lm", "fusion", pytest.param("unet", marks=SLOW),
               pytest.param("autoencoder", marks=SLOW), pytest.param("vae", marks=SLOW),
               pytest.param("gpt_classifier", marks=SLOW))


@pytest.mark.parametrize("name", ONNX_MODELS)
def test_onnx_export_matches_pytorch_on_other_shapes_than_traced(name, tmp_path):
    import onnxruntime

    from hfmodels.export import example_inputs, export_onnx, graph_of
    from hfmodels.families import family_of_config

    model = build(hfmodels, name).eval()
    model.save_pretrained(tmp_path / "model")
    result = export_onnx(tmp_path / "model", tmp_path / "onnx")
    assert max(result["max_abs_diff"].values()) <= 1e-4
    session = onnxruntime.InferenceSession(result["onnx"], providers=["CPUExecutionProvider"])
    graph, names = graph_of(family_of_config(model.config), model)
    for batch, seq in ((1, 3), (4, 11)):  # traced with (2, 8): the batch and the sequence are dynamic
        inputs = example_inputs(model.config, batch, seq)
        got = session.run(None, {key: inputs[key].numpy() for key in names})
        with torch.no_grad():
            expected = graph(*(inputs[key] for key in names))
        for ours, theirs in zip(got, expected):
            assert ours.shape == tuple(theirs.shape)
            assert np.abs(ours - theirs.numpy()).max() <= 1e-4


def test_the_export_refuses_a_folder_in_use_before_loading_anything(tmp_path):
    from hfmodels.export import export_onnx

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export_onnx(tmp_path / "no-model-here", tmp_path / "out")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["keep.txt"]


def launch(config: Path, *args: str, cwd: Path, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file CONFIG [OPTIONS] scripts/train.py ARGS`, as the README shows it."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file", str(config), *options,
         str(REPO / "scripts" / "train.py"), *args],
        capture_output=True, text=True, cwd=cwd, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_the_launch_configs_precision_holds_unless_the_flag_is_given(tmp_path):
    """No --mixed-precision: the launch config's bf16 runs (it used to be overridden by the flag's default `no`), and
    run_info.json says what ran."""
    config = tmp_path / "bf16.yaml"
    config.write_text((REPO / "scripts" / "accelerate_configs" / "cpu.yaml").read_text()
                      .replace('mixed_precision: "no"', "mixed_precision: bf16"))
    result = launch(config, *TINY_CLASSIFIER[:-2], "--max-steps", "2", "--report-to", "none",
                    "--output-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["mixed_precision"] == "bf16"
    assert info["distributed_type"] == "NO" and info["model_wrapper"] is None


def test_an_fsdp_launch_config_on_a_cpu_is_refused_not_run_as_ddp(tmp_path):
    result = launch(REPO / "scripts" / "accelerate_configs" / "fsdp.yaml", "--report-to", "none", "--output-dir",
                    str(tmp_path / "run"), cwd=tmp_path, options=("--num_processes", "1"))
    assert result.returncode != 0
    assert "FSDP launch config (distributed_type: FSDP) needs GPUs" in result.stderr
    assert not (tmp_path / "run").exists()


def test_evaluate_defaults_to_the_split_training_reports_on(served, tmp_path):
    from hfmodels.training.evaluation import evaluate_saved

    from .test_training import make_image_folder

    folder = make_image_folder(tmp_path / "no-test-split", splits=(("train", 12),))
    result = evaluate_saved(served["run"], dataset=str(folder))
    assert result["split"] == "validation" and result["metrics"]["num_samples"] > 0


PUSH_DATASET = """
import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as ImageFeature
from PIL import Image

rng = np.random.default_rng(0)
features = Features({"image": ImageFeature(), "label": ClassLabel(names=["dark", "light"])})

def split(count):
    labels = [i % 2 for i in range(count)]
    images = [Image.fromarray((rng.integers(0, 100, (8, 8)) + 120 * label).astype(np.uint8)) for label in labels]
    return Dataset.from_dict({"image": images, "label": labels}, features=features)

DatasetDict({"train": split(40), "test": split(10)}).push_to_hub("tester/tiny-images")
"""


def test_datasets_push_to_hub_then_train_on_it_through_the_loopback_hub(tmp_path):
    """The loopback Hub answers preupload as the Hub does (parquet shards as LFS), so `DatasetDict.push_to_hub`
    works against it (it failed with FileNotFoundError on its temporary shard), and training reads the data back."""
    from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER, client_env
    from hfmodels.testing.hub import LoopbackHub

    with LoopbackHub({TEST_TOKEN: TEST_USER}, upload_modes="hub") as hub:
        env = {key: value for key, value in client_env(hub, tmp_path / "hf_home").items()
               if key != "HF_DATASETS_OFFLINE"}
        env.update({"HF_HUB_DISABLE_XET": "1", "OMP_NUM_THREADS": "1"})
        pushed = subprocess.run([sys.executable, "-c", PUSH_DATASET], capture_output=True, text=True, env=env,
                                cwd=tmp_path, timeout=300)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        files = hub.files("tester/tiny-images", repo_type="dataset")
        shards = [path for path in files if path.endswith(".parquet")]
        assert len(shards) == 2  # train and test, each through the LFS batch API, not inline in the commit
        assert all(f"lfs:{hashlib.sha256(files[path]).hexdigest()}" in hub.uploaded for path in shards)
        assert not [path for path in hub.uploaded if path.endswith(".parquet")]
        trained = subprocess.run(
            [sys.executable, "-m", "hfmodels.cli", "train", "--dataset", "tester/tiny-images", *TINY_CLASSIFIER[:-2],
             "--max-steps", "2", "--report-to", "none", "--output-dir", str(tmp_path / "run")],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
        )
    assert trained.returncode == 0, trained.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert results["dataset"]["name"] == "tester/tiny-images" and results["dataset"]["sizes"]["test"] == 10


def test_vae_interpolates_batches_of_pairs_like_single_pairs():
    model = build(hfmodels, "vae").eval()
    images = torch.rand(3, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # 3 pairs
    strips = model.interpolate(images[:, 0], images[:, 1], steps=4)
    assert strips.shape == (3, 4, 1, 8, 8)
    for pair, strip in zip(images, strips):
        torch.testing.assert_close(strip, model.interpolate(pair[0], pair[1], steps=4))
    torch.testing.assert_close(strips[:, [0, -1]], model(images.flatten(0, 1)).reconstruction.unflatten(0, (3, 2)))
    with pytest.raises(ValueError, match=r"a and b must be images of one shape"):
        model.interpolate(images[:, 0], images[0, 1], steps=4)
