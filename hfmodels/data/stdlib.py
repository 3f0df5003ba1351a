"""Text from the Python standard library of the running interpreter: real source code on every machine,
with nothing to download. The splits are made per file (by a hash of the file's path), so no file is in two."""

from __future__ import annotations

import ast
import os
import random
import sysconfig
import textwrap
import zlib
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Folders that are not the library's own code (installed packages), are data rather than code (codec tables,
# pydoc topics), or are absent from many Python builds (idlelib, tkinter, lib2to3 are split off by Debian).
SKIPPED_FOLDERS = {
    "site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__", "encodings", "pydoc_data",
    "idlelib", "tkinter", "lib2to3", "turtledemo", "ensurepip", "__phello__",
}
# The text classifier's classes: packages with many functions spread over many files, in every Python 3.10+.
PACKAGES = ("asyncio", "email", "importlib", "multiprocessing", "unittest", "xml")
CORPUS_VALIDATION_PERCENT = 10
SPLIT_SHARES = {"test": 0.25, "validation": 0.10, "train": 0.65}  # of each package's functions


def stdlib_files() -> list[Path]:
    """The standard library's .py files, sorted by path."""
    files = []
    for folder, subfolders, names in os.walk(STDLIB):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS and not name.startswith("config-")]
        files += [Path(folder) / name for name in names if name.endswith(".py")]
    return sorted(files)


def read_source(file: Path) -> str:
    # a few files hold bytes that are not UTF-8 on purpose (codec tests); keep them readable as text
    return file.read_text(encoding="utf-8", errors="replace")


def path_hash(file: Path) -> int:
    """A number fixed by the file's path inside the standard library: the same on every machine."""
    return zlib.crc32(file.relative_to(STDLIB).as_posix().encode())


def load_stdlib_corpus() -> DatasetDict:
    """The standard library's own source files (one row per file: `text`, `path`), for language modelling.
    Split per file: about 90% train, 10% validation."""
    rows: dict[str, dict[str, list[str]]] = {"train": {"text": [], "path": []}, "validation": {"text": [], "path": []}}
    for file in stdlib_files():
        split = "validation" if path_hash(file) % 100 < CORPUS_VALIDATION_PERCENT else "train"
        rows[split]["text"].append(read_source(file))
        rows[split]["path"].append(file.relative_to(STDLIB).as_posix())
    return DatasetDict({split: Dataset.from_dict(columns) for split, columns in rows.items()})


def load_stdlib_functions() -> DatasetDict:
    """Functions and methods of six standard-library packages (asyncio, email, importlib, multiprocessing,
    unittest, xml: those with many files in every Python 3.10+), each labelled with its package (columns `text`,
    `label`, `path`). The splits
    are per file: in the order of a hash of their paths, each of a package's files goes to the split that is
    least filled relative to its share of functions (test 25%, validation 10%, train 65%). Each split is then
    balanced: the same number of functions per package (a seeded sample of the larger ones)."""
    by_split = package_functions_by_split()
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(PACKAGES)), "path": Value("string")})
    data = {}
    for split, functions in by_split.items():
        per_class = min(len(functions[package]) for package in PACKAGES)
        rows = {"text": [], "label": [], "path": []}
        for label, package in enumerate(PACKAGES):
            chosen = random.Random(f"{split}-{package}").sample(functions[package], per_class)
            rows["text"] += [text for text, _ in chosen]
            rows["path"] += [path for _, path in chosen]
            rows["label"] += [label] * per_class
        data[split] = Dataset.from_dict(rows, features=features)
    return DatasetDict({split: data[split] for split in ("train", "validation", "test")})


def package_functions_by_split() -> dict[str, dict[str, list[tuple[str, str]]]]:
    """(function source, file path) pairs by split and package, before balancing: every file of a package goes
    whole to one split."""
    by_split: dict[str, dict[str, list[tuple[str, str]]]] = {split: {p: [] for p in PACKAGES} for split in SPLIT_SHARES}
    for package in PACKAGES:
        files = sorted((file for file in stdlib_files() if file.relative_to(STDLIB).parts[0] == package), key=path_hash)
        for file in files:
            split = min(SPLIT_SHARES, key=lambda s: len(by_split[s][package]) / SPLIT_SHARES[s])
            path = file.relative_to(STDLIB).as_posix()
            by_split[split][package] += [(function, path) for function in function_sources(read_source(file))]
    return by_split


def load_stdlib_pretrain_corpus() -> DatasetDict:
    """The `stdlib` corpus without the files of `stdlib-functions`' validation and test splits: a language model
    pretrained on it, then fine-tuned as a text classifier, has never read a function it is scored on."""
    by_split = package_functions_by_split()
    held_out = {path for split in ("validation", "test") for pairs in by_split[split].values() for _, path in pairs}
    corpus = load_stdlib_corpus()
    return DatasetDict({split: rows.filter(lambda row: row["path"] not in held_out) for split, rows in corpus.items()})


def function_sources(source: str) -> list[str]:
    """The source of every function and method in a module (its whole lines, from `def` on), dedented."""
    lines = source.splitlines(keepends=True)
    return [
        textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
        for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
