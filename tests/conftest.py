import os

# Offline before anything imports huggingface_hub or datasets (they read these once, at import).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist there is a worker per core: one thread each (and in the processes they start), else the torch
# thread pools of the workers fight over the cores and a training run takes many times as long.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# The loopback Hub fixtures (`loopback_hub`), registered once for every test module.
pytest_plugins = ["hfmodels.testing.fixtures"]

# transformers' common model tests, which tests/test_transformers_common.py imports: not test modules of their own
collect_ignore_glob = ["transformers_common/*"]

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs `hfmodels <args>` in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "hfmodels.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, env={**os.environ},
    )


@pytest.fixture(scope="session")
def trained_digits_classifier(tmp_path_factory) -> Path:
    """The default run (`hfmodels train`: the image classifier on digits), trained once per test session."""
    output_dir = tmp_path_factory.mktemp("runs") / "image-classifier-digits"
    result = run_cli("train", "--output-dir", str(output_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir
