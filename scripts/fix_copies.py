"""Writes the model code that several model folders share into each of them: `make fix-copies`.

A model folder (hfmodels/models/<family>/) is what `save_pretrained` copies beside the weights and what a
`trust_remote_code=True` user downloads, so it may import only its own files. Code that several folders need
has ONE source, a file in hfmodels/models/, and each folder that needs it holds a generated, real copy whose
first line names the source: the idea of transformers' utils/check_copies.py. Edit the source, then run
`make fix-copies`. `--check` (run by `make test`, in tests/test_copies.py) changes nothing and lists every copy
that differs from its source, is missing or is a symlink (Git for Windows checks symlinks out as text files).

    python scripts/fix_copies.py            # rewrite the copies
    python scripts/fix_copies.py --check    # exit 1, naming each drifted copy and its source
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "hfmodels" / "models"
ALL_FOLDERS = ("autoencoder", "diffusion", "fusion", "gpt", "image_classifier", "segmentation", "vae")
IMAGE_FOLDERS = ("autoencoder", "diffusion", "image_classifier", "segmentation", "vae")

# source file in hfmodels/models/ -> the model folders that hold a copy of it
COPIES = {
    "loading.py": ALL_FOLDERS,
    "validation.py": ALL_FOLDERS,
    "image_processing_base.py": IMAGE_FOLDERS,
    "conv_autoencoder.py": ("autoencoder", "vae"),
    "backbone.py": ("image_classifier", "segmentation", "gpt", "fusion"),
    "conv_blocks.py": ("image_classifier", "segmentation"),
}
HEADER = "# Generated from hfmodels/models/{source} by `make fix-copies`: edit that file, not this copy.\n"


def expected_copy(models: Path, source: str) -> str:
    return HEADER.format(source=source) + (models / source).read_text()


def drifted(models: Path = MODELS) -> list[str]:
    """One line per copy that is not what `make fix-copies` writes, naming it and its source."""
    root = models.parent.parent
    problems = []
    for source, folders in COPIES.items():
        for folder in folders:
            copy = models / folder / source
            where = f"{copy.relative_to(root)} (the copy of {(models / source).relative_to(root)})"
            if copy.is_symlink():
                problems.append(f"{where} is a symlink, not a file")
            elif not copy.is_file():
                problems.append(f"{where} is missing")
            elif copy.read_text() != expected_copy(models, source):
                problems.append(f"{where} differs from its source")
    return problems


def fix(models: Path = MODELS) -> list[Path]:
    """Writes every copy that differs from its source; returns the files written."""
    written = []
    for source, folders in COPIES.items():
        for folder in folders:
            copy, text = models / folder / source, expected_copy(models, source)
            if copy.is_symlink() or not copy.is_file() or copy.read_text() != text:
                copy.unlink(missing_ok=True)
                copy.write_text(text)
                written.append(copy)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a copy has drifted")
    parser.add_argument("--models", type=Path, default=MODELS, help="the hfmodels/models folder (default: this one)")
    args = parser.parse_args(argv)
    if args.check:
        problems = drifted(args.models)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("Run `make fix-copies` to rewrite the copies from their sources.", file=sys.stderr)
        return 1 if problems else 0
    for copy in fix(args.models):
        print(f"wrote {copy.relative_to(args.models.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
