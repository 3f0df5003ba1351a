"""The web app (`hfmodels app`), the Space export and the pneumonia demo workflow, served for real on 127.0.0.1
and called through gradio_client and a real browser (Debian's Chromium driven by Playwright)."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset
from PIL import Image

from hfmodels.testing import free_port
from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER

from .conftest import run_cli
from .model_tester import BLOCK_HFMODELS

gradio_client = pytest.importorskip("gradio_client")  # installed by `make install` (the dev extra)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def pneumonia_run(tmp_path_factory) -> Path:
    """The demo workflow's first steps: synthetic data at real size (0.9-2.2 MP JPEGs, the real split sizes divided
    by 168: 8 NORMAL and 23 PNEUMONIA in train, 2 and 2 in val and in test), then a short class-weighted run."""
    root = tmp_path_factory.mktemp("pneumonia")
    made = run_cli("data", "make-pneumonia-demo", str(root / "chest_xray"), "--scale-down", "168")
    assert made.returncode == 0, made.stderr[-3000:]
    trained = run_cli(
        "train", "--dataset", str(root / "chest_xray"), "--class-weights", "auto", "--max-steps", "12",
        "--batch-size", "16", "--image-size", "32", "--report-to", "none", "--output-dir", str(root / "run"),
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    return root / "run"


def save_tiny(family_name: str, folder: Path) -> Path:
    """A tiny untrained model of a family, saved with its processor (and code) like a run folder."""
    import torch

    from hfmodels.families import get_family
    from hfmodels.models import AutoencoderConfig, DiffusionConfig, UNetConfig, VAEConfig

    torch.manual_seed(0)
    family = get_family(family_name)
    small = {"num_channels": 1, "image_size": 8, "hidden_sizes": [4, 8], "latent_dim": 3}
    gpt = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 64,
           "vocab_size": 300}
    texts = ["def add(a, b):\n    return a + b\n", "import os\nprint(os.getcwd())\n"] * 8
    if family_name in ("gpt", "text-classifier"):
        rows = Dataset.from_dict({"text": texts, "label": [0, 1] * 8})
        rows = rows.cast_column("label", ClassLabel(names=["function", "script"]))
        model, processor = family.build(rows, gpt)
    elif family_name == "fusion":
        images = [Image.new("L", (8, 8), shade) for shade in range(0, 256, 16)]
        rows = Dataset.from_dict({"image": images, "text": texts, "label": [0, 1] * 8})
        rows = rows.cast_column("label", ClassLabel(names=["function", "script"]))
        model, processor = family.build(
            rows, {"text_config": gpt, "vision_config": {"hidden_sizes": [4], "depths": [1]}}
        )
    else:
        config = {
            "segmentation": lambda: UNetConfig(num_channels=1, image_size=16, depth=2, base_channels=4,
                                               id2label={0: "background", 1: "square", 2: "circle"}),
            "autoencoder": lambda: AutoencoderConfig(**small),
            "vae": lambda: VAEConfig(**small),
            "diffusion": lambda: DiffusionConfig(num_channels=1, image_size=8, block_channels=[4, 8], norm_num_groups=4,
                                                 num_attention_heads=2, num_classes=2, num_train_timesteps=20,
                                                 id2label={0: "zero", 1: "one"}),
        }[family_name]()
        model, processor = family.model_class(config), family.build_processor(config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    families = ("segmentation", "autoencoder", "vae", "diffusion", "gpt", "text-classifier", "fusion")
    return {name: save_tiny(name, root / name) for name in families}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Uploads of every kind the app must cope with."""
    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    files = {
        "rgb": Image.fromarray(pixels),
        "rgba": Image.fromarray(np.dstack([pixels, np.full((40, 40), 128, np.uint8)])),
        "grayscale": Image.fromarray(pixels[..., 0]),
        "16bit": Image.fromarray(pixels[..., 0].astype(np.uint16) * 257),
        "bomb": Image.new("1", (7000, 7000)),  # 49 million pixels in a few kilobytes
    }
    paths = {}
    for name, image in files.items():
        paths[name] = folder / f"{name}.png"
        image.save(paths[name])
    paths["not_an_image"] = folder / "notes.png"
    paths["not_an_image"].write_text("this is text, not a picture")
    assert Image.open(paths["16bit"]).mode.startswith("I;16")
    return paths


@pytest.fixture
def serve():
    """Starts apps in this process on free 127.0.0.1 ports; yields a function model -> (app URL, app)."""
    from hfmodels.app.server import build
    from hfmodels.app.views import launch

    apps = []

    def start(model: Path, examples: bool = False) -> tuple[str, object]:
        app = build(model, examples=examples)
        apps.append(app)
        launch(app, port=free_port(), block=False)
        return app.local_url, app

    yield start
    for app in apps:
        app.close()


def test_pneumonia_workflow_data_training_metrics_card_and_app(pneumonia_run, serve, loopback_hub, tmp_path):
    data_dir = pneumonia_run.parent / "chest_xray"
    assert "synthetic" in (data_dir / "README.txt").read_text().lower()
    assert json.loads((data_dir / "hfmodels_data.json").read_text()) == {"synthetic": True, "medical": True}
    assert sorted(p.name for p in data_dir.iterdir()) == ["README.txt", "hfmodels_data.json", "test", "train", "val"]
    upload = data_dir / "test/PNEUMONIA/synthetic_0000.jpeg"
    assert 0.9e6 <= Image.open(upload).width * Image.open(upload).height <= 2.2e6

    config = json.loads((pneumonia_run / "config.json").read_text())
    assert config["id2label"] == {"0": "NORMAL", "1": "PNEUMONIA"} and config["image_size"] == 32
    assert config["class_weights"] == pytest.approx([31 / 16, 31 / 46], abs=1e-6)  # 8 NORMAL, 23 PNEUMONIA
    results = json.loads((pneumonia_run / "eval_results.json").read_text())
    assert results["dataset"]["sizes"] == {"train": 31, "validation": 4, "test": 4}  # `val/` became validation
    assert results["medical"] is True and results["dataset"]["synthetic"] is True  # from hfmodels_data.json
    assert results["validation"] == {"origin": "the source's validation split", "num_samples": 4}
    for metric in ("accuracy", "f1", "sensitivity", "specificity", "roc_auc"):
        assert 0.0 <= results["metrics"][metric] <= 1.0, metric
    (baseline,) = results["baselines"]
    assert baseline == "logistic regression on the 32x32 pixels"
    assert set(results["baselines"][baseline]) == {"accuracy", "f1", "sensitivity", "specificity", "roc_auc"}
    assert (pneumonia_run / "confusion_matrix.png").is_file()

    evaluated = run_cli("evaluate", str(pneumonia_run))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout)["metrics"] == pytest.approx(results["metrics"])
    assert json.loads(evaluated.stdout)["baselines"] == results["baselines"]

    card = (pneumonia_run / "README.md").read_text()
    assert "not a medical device" in card and "trained on synthetic data" in card
    assert f"| {baseline} |" in card and "No baseline was recorded" not in card
    assert "chosen on the validation split (4 examples, the source's validation split)" in card

    from hfmodels.hub import push_run

    push_run(pneumonia_run, f"{TEST_USER}/pneumonia", token=TEST_TOKEN)
    assert {"README.md", "model.safetensors", "eval_results.json"} <= set(loopback_hub.files(f"{TEST_USER}/pneumonia"))

    url, _ = serve(pneumonia_run, examples=True)
    page = urllib.request.urlopen(url + "config").read().decode()
    assert "not a diagnostic device" in page and "Trained on synthetic data" in page
    assert str(data_dir) not in page  # the title and results heading name the folder, not where it lies here
    client = gradio_client.Client(url, verbose=False)
    label, overlay = client.predict(gradio_client.handle_file(str(upload)), api_name="/classify")
    assert {c["label"] for c in label["confidences"]} == {"NORMAL", "PNEUMONIA"}
    width, height = Image.open(upload).size
    shown = Image.open(overlay).size  # the saliency overlay at the X-ray's own proportions, 256 on its longer side
    assert max(shown) == 256 and abs(shown[0] / shown[1] - width / height) < 0.02

    big = tmp_path / "xray-2000.jpeg"  # a 2,000 x 2,000 upload is answered too
    Image.open(upload).convert("L").resize((2000, 2000)).save(big)
    label, overlay = client.predict(gradio_client.handle_file(str(big)), api_name="/classify")
    assert label["label"] in ("NORMAL", "PNEUMONIA") and Image.open(overlay).size == (256, 256)


def test_the_app_states_what_the_run_recorded_not_what_its_card_or_labels_suggest(tmp_path):
    from hfmodels.app.views import NOT_A_DIAGNOSTIC_DEVICE, TRAINED_ON_SYNTHETIC_DATA, card_markdown

    (tmp_path / "README.md").write_text("A PNEUMONIA classifier trained on a synthetic stand-in.\n")
    results = {"medical": False, "dataset": {"name": "chest_xray", "split": "test", "synthetic": False},
               "metrics": {"accuracy": 0.75}}
    (tmp_path / "eval_results.json").write_text(json.dumps(results))
    shown = card_markdown(tmp_path)
    assert NOT_A_DIAGNOSTIC_DEVICE not in shown and TRAINED_ON_SYNTHETIC_DATA not in shown and "0.75" in shown
    results["medical"], results["dataset"]["synthetic"] = True, True
    (tmp_path / "eval_results.json").write_text(json.dumps(results))
    shown = card_markdown(tmp_path)
    assert NOT_A_DIAGNOSTIC_DEVICE in shown and TRAINED_ON_SYNTHETIC_DATA in shown


def test_every_family_has_an_app_view():
    from hfmodels.app.views import VIEWS
    from hfmodels.families import FAMILIES

    assert sorted(VIEWS) == sorted(FAMILIES)


def test_class_weights_auto_is_refused_where_the_loss_has_none():
    result = run_cli("train", "--model", "gpt", "--class-weights", "auto", "--max-steps", "1")
    assert result.returncode == 1 and "--class-weights auto is for classifiers" in result.stderr


@pytest.mark.parametrize(
    ("family", "api_name", "inputs", "check"),
    [
        ("segmentation", "/segment", ("rgb",),
         lambda out: Path(out["image"]).is_file() and {a["label"] for a in out["annotations"]} <= {"square", "circle"}),
        ("autoencoder", "/reconstruct", ("rgb",), lambda out: Image.open(out[1]).size == (256, 256) and out[2] >= 0),
        ("vae", "/sample", (3, 4), lambda out: Image.open(out).size == (4 * 256, 256)),
        ("vae", "/interpolate", ("rgb", "grayscale", 5), lambda out: Image.open(out).size == (5 * 256, 256)),
        ("diffusion", "/sample", (3, 4, 5, "dpm-solver", "one", 2.0),
         lambda out: Image.open(out).size == (4 * 256, 256)),
        ("gpt", "/generate", ("def ", 0.0, 1.0, 5), lambda out: out.startswith("def ") and len(out) > 4),
        ("text-classifier", "/classify", ("import sys",),
         lambda out: {c["label"] for c in out["confidences"]} == {"function", "script"}),
        ("fusion", "/classify", ("grayscale", "import sys"),
         lambda out: {c["label"] for c in out["confidences"]} == {"function", "script"}),
    ],
)
def test_gradio_client_calls_every_family(tiny_models, images, serve, family, api_name, inputs, check):
    url, _ = serve(tiny_models[family])
    client = gradio_client.Client(url, verbose=False)
    arguments = [gradio_client.handle_file(str(images[i])) if i in images else i for i in inputs]
    assert check(client.predict(*arguments, api_name=api_name))


def test_generation_streams_tokens(tiny_models, serve):
    url, _ = serve(tiny_models["gpt"])
    job = gradio_client.Client(url, verbose=False).submit("def ", 0.0, 1.0, 6, api_name="/generate")
    updates = list(job)  # one update per generated piece
    assert len(updates) >= 2 and all(later.startswith(earlier) for earlier, later in zip(updates, updates[1:]))


def test_bad_inputs_are_messages_not_tracebacks(pneumonia_run, tiny_models, images, serve):
    url, _ = serve(pneumonia_run)
    client = gradio_client.Client(url, verbose=False)
    for kind in ("rgba", "grayscale", "16bit"):  # converted, then classified
        label, _ = client.predict(gradio_client.handle_file(str(images[kind])), api_name="/classify")
        assert label["label"] in ("NORMAL", "PNEUMONIA"), kind
    expected = {"bomb": "accepts up to 36,000,000", "not_an_image": "notes.png is not an image this app can read"}
    for kind, message in expected.items():
        with pytest.raises(gradio_client.exceptions.AppError, match=message):
            client.predict(gradio_client.handle_file(str(images[kind])), api_name="/classify")
    with pytest.raises(gradio_client.exceptions.AppError, match="Upload an image first"):
        client.predict(None, api_name="/classify")
    gpt_url, _ = serve(tiny_models["gpt"])
    with pytest.raises(gradio_client.exceptions.AppError, match="Write a prompt first"):
        gradio_client.Client(gpt_url, verbose=False).predict("   ", 0.8, 0.9, 5, api_name="/generate")


def test_importing_hfmodels_does_not_import_gradio():
    code = "import sys, hfmodels, hfmodels.cli, hfmodels.app; assert 'gradio' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def browser_page(playwright, tmp_path):
    """A Chromium page that may only reach 127.0.0.1; returns (page, list of refused URLs)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused = []

    def only_loopback(route):
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    return page, refused


@pytest.fixture
def playwright():
    sync_api = pytest.importorskip("playwright.sync_api")  # installed by `make install` (the dev extra)
    assert Path(CHROMIUM).is_file(), "Chromium is missing: `make test` installs it (apt-get install -y chromium)"
    with sync_api.sync_playwright() as running:
        yield running


def test_browser_uploads_an_image_and_reads_the_predicted_label(pneumonia_run, serve, playwright, tmp_path):
    url, _ = serve(pneumonia_run)
    upload = pneumonia_run.parent / "chest_xray/test/PNEUMONIA/synthetic_0001.jpeg"
    expected = gradio_client.Client(url, verbose=False).predict(gradio_client.handle_file(str(upload)),
                                                                api_name="/classify")[0]
    page, refused = browser_page(playwright, tmp_path)
    page.goto(url)
    page.get_by_text("not a diagnostic device").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(upload))
    page.get_by_role("button", name="Classify").click()
    predicted = page.get_by_test_id("label-output-value")
    predicted.wait_for(timeout=60_000)
    assert predicted.inner_text().strip() == expected["label"]
    page.screenshot(path=str(tmp_path / "classifier.png"), full_page=True)
    assert (tmp_path / "classifier.png").stat().st_size > 0 and refused == []


def test_browser_shows_a_segmentation_overlay_with_its_legend(tiny_models, images, serve, playwright, tmp_path):
    url, _ = serve(tiny_models["segmentation"])
    expected = gradio_client.Client(url, verbose=False).predict(gradio_client.handle_file(str(images["rgb"])),
                                                                api_name="/segment")
    page, refused = browser_page(playwright, tmp_path)
    page.goto(url)
    page.locator("input[type=file]").first.set_input_files(str(images["rgb"]))
    page.get_by_role("button", name="Segment").click()
    legend = page.locator(".legend-item")
    legend.first.wait_for(timeout=60_000)
    assert sorted(legend.all_inner_texts()) == sorted(a["label"] for a in expected["annotations"])
    page.screenshot(path=str(tmp_path / "segmentation.png"), full_page=True)
    assert refused == []


def test_exported_space_runs_without_hfmodels_and_predicts_the_same(pneumonia_run, serve, tmp_path, loopback_hub):
    space = tmp_path / "space"
    exported = run_cli("space", "export", str(pneumonia_run), str(space), "--model-repo", f"{TEST_USER}/pneumonia")
    assert exported.returncode == 0, exported.stderr[-3000:]
    readme = (space / "README.md").read_text()
    assert "sdk: gradio" in readme and "app_file: app.py" in readme and f"- {TEST_USER}/pneumonia" in readme
    assert "gradio==" in (space / "requirements.txt").read_text() and (space / "model/model.safetensors").is_file()

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "PYTHONPATH": "",
           "HF_MODULES_CACHE": str(tmp_path / "modules")}
    script = BLOCK_HFMODELS + "import runpy\nrunpy.run_path('app.py', run_name='__main__')\n"
    process = subprocess.Popen([sys.executable, "-c", script], cwd=space, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        space_url = wait_for_server(f"http://127.0.0.1:{port}/", process)
        upload = gradio_client.handle_file(str(next((space / "examples").glob("*.png"))))
        in_space = gradio_client.Client(space_url, verbose=False).predict(upload, api_name="/classify")[0]
        url, _ = serve(pneumonia_run)
        here = gradio_client.Client(url, verbose=False).predict(upload, api_name="/classify")[0]
        assert in_space["label"] == here["label"]
        assert [c["confidence"] for c in in_space["confidences"]] == pytest.approx(
            [c["confidence"] for c in here["confidences"]], abs=1e-6
        )
    finally:
        process.terminate()
        process.wait(timeout=30)

    from hfmodels.app.space import push_space

    commit = push_space(space, f"{TEST_USER}/pneumonia-demo", token=TEST_TOKEN)
    files = loopback_hub.files(f"{TEST_USER}/pneumonia-demo", repo_type="space")
    assert {"app.py", "requirements.txt", "README.md", "hfmodels_app.py", "model/config.json"} <= set(files)
    assert len(loopback_hub.commits(f"{TEST_USER}/pneumonia-demo", repo_type="space")) == 2  # creation + one upload
    assert commit.oid


def wait_for_server(url: str, process: subprocess.Popen, timeout: float = 180, log: Path | None = None) -> str:
    """`url` once its app answers; the process's output (its stdout pipe, else `log`) if it exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else log.read_text() if log else ""
            raise AssertionError(f"the app exited with {process.returncode}:\n{output[-4000:]}")
        try:
            urllib.request.urlopen(url + "config", timeout=5)
            return url
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the app did not answer on {url} within {timeout} s")


def small_upload(pneumonia_run: Path) -> Path:
    """A 64x64 PNG of a test X-ray: the load tests measure serving, not the decoding of 2 MP JPEGs (which the
    workflow test and the benchmark's app rows do)."""
    path = pneumonia_run.parent / "upload-64.png"
    if not path.is_file():
        Image.open(pneumonia_run.parent / "chest_xray/test/NORMAL/synthetic_0000.jpeg").resize((64, 64)).save(path)
    return path


def test_measure_latency_reports_percentiles_under_concurrent_clients(pneumonia_run, serve):
    from hfmodels.app.server import measure_latency

    url, _ = serve(pneumonia_run)
    upload = small_upload(pneumonia_run)
    result = measure_latency(url, upload, requests=3, clients=8)
    assert result["errors"] == []
    assert result["single_client"]["requests"] == 3 and result["concurrent"]["requests"] == 24
    assert 0 < result["single_client"]["p50_s"] <= result["single_client"]["p95_s"]


# Load (issue 12): 20 clients at once, each predicting in a loop (`load_test`). "Bounded memory": the serving
# process's resident memory grows by less than a bound over the second half of the run. Warm-up (thread arenas,
# caches) lands in the first half; a leak grows with every request, the second half as much as the first. At the
# ~8 requests/s of a 2-core machine the 60 s run's second half has ~240 requests: 32 MB catches a leak of ~135 KB a
# request (one 256x256 RGB overlay is 192 KB). Measured: 5-13 MB (docs/reliability.md). A 4 s run is still
# warming up (its second half grew 9-24 MB over five runs), so the short one only catches gross leaks (64 MB).
LOAD_CLIENTS = 20
LOAD_GROWTH_BOUND_MB = 32


def assert_kept_answering(result: dict, growth_bound_mb: float = LOAD_GROWTH_BOUND_MB) -> None:
    print(json.dumps(result))  # the figures (pytest -s shows them)
    assert result["errors"] == 0, result["first_errors"]
    answers = result["answers_per_client"]
    assert len(answers) == result["clients"] == LOAD_CLIENTS and min(answers) >= 1, result
    memory = result["memory"]
    assert memory["samples"] >= 3 and memory["rss_peak_mb"] >= memory["rss_start_mb"] > 0, memory
    assert memory["second_half_growth_mb"] < growth_bound_mb, memory


def test_app_keeps_answering_20_clients_for_4_seconds(pneumonia_run, serve):
    """The default suite's short run: the app in this process (so its memory includes the 20 clients'), which
    spares the seconds a fresh `hfmodels app` process takes to start."""
    from hfmodels.app.server import load_test

    url, _ = serve(pneumonia_run)
    upload = small_upload(pneumonia_run)
    result = load_test(url, upload, clients=LOAD_CLIENTS, seconds=4, pid=os.getpid())
    assert_kept_answering(result, growth_bound_mb=2 * LOAD_GROWTH_BOUND_MB)


@pytest.mark.slow
def test_app_keeps_answering_20_clients_for_60_seconds(pneumonia_run, tmp_path):
    """The issue's figure: `hfmodels app` in its own process, as a user runs it, so that its memory is the
    server's alone; 20 clients for 60 s."""
    from hfmodels.app.server import load_test

    port, log = free_port(), tmp_path / "app.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "hfmodels.cli", "app", str(pneumonia_run), "--port", str(port), "--no-examples"],
            stdout=output, stderr=subprocess.STDOUT, env={**os.environ},
        )
    try:
        url = wait_for_server(f"http://127.0.0.1:{port}/", process, log=log)
        upload = pneumonia_run.parent / "chest_xray/test/NORMAL/synthetic_0000.jpeg"
        assert_kept_answering(load_test(url, upload, clients=LOAD_CLIENTS, seconds=60, pid=process.pid))
        assert process.poll() is None, log.read_text()[-4000:]
    finally:
        process.terminate()
        process.wait(timeout=30)
