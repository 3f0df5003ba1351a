"""The model code several model folders share has one source, and each folder a generated, real copy of it
(scripts/fix_copies.py, `make fix-copies`): these tests are the check in `make test` that fails on any drift."""

import shutil
import subprocess
import sys

from .conftest import REPO

FIX_COPIES = REPO / "scripts" / "fix_copies.py"


def fix_copies(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FIX_COPIES), *args], capture_output=True, text=True, timeout=60)


def test_every_copy_is_what_make_fix_copies_writes():
    result = fix_copies("--check")
    assert result.returncode == 0, result.stderr


def test_no_symlink_is_checked_in():
    """Git for Windows checks symlinks out as text files by default: a model folder must be plain files."""
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "--stage"], capture_output=True, text=True,
                             check=True)
    links = [line.split("\t")[-1] for line in tracked.stdout.splitlines() if line.startswith("120000")]  # mode: link
    assert not links, links
    assert not [path for path in (REPO / "hfmodels").rglob("*") if path.is_symlink()]


def test_a_copy_edited_by_hand_fails_the_check_naming_it_and_its_source(tmp_path):
    models = tmp_path / "hfmodels" / "models"
    shutil.copytree(REPO / "hfmodels" / "models", models, ignore=shutil.ignore_patterns("__pycache__"))
    edited = models / "vae" / "loading.py"
    edited.write_text(edited.read_text().replace("strict: bool = True", "strict: bool = False"))
    (models / "gpt" / "validation.py").unlink()

    result = fix_copies("--check", "--models", str(models))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "hfmodels/models/vae/loading.py (the copy of hfmodels/models/loading.py) differs from its source",
        "hfmodels/models/gpt/validation.py (the copy of hfmodels/models/validation.py) is missing",
        "Run `make fix-copies` to rewrite the copies from their sources.",
    ]

    written = fix_copies("--models", str(models))
    assert written.returncode == 0
    assert written.stdout.splitlines() == [
        "wrote hfmodels/models/vae/loading.py", "wrote hfmodels/models/gpt/validation.py"
    ]
    assert fix_copies("--check", "--models", str(models)).returncode == 0
    assert edited.read_text() == (REPO / "hfmodels" / "models" / "vae" / "loading.py").read_text()
