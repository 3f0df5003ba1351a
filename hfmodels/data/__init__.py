"""Data sources for every family, as `datasets.DatasetDict`s with the columns the families read:
`image` (a datasets `Image`), `text` and `label` (a `ClassLabel`), whatever the source called them.

`--dataset` is one of: an embedded dataset (`digits`, `shapes`); an image folder `<root>/<split>/<class>/<file>`
(the layout of the chest X-ray pneumonia data); a mask folder `<root>[/<split>]/images|masks/<file>` (segmentation:
an `image` and a `mask` column, see `segmentation.py`); a csv / json / parquet file, or a folder of
`train.*` / `validation.*` / `test.*` such files; or a Hub dataset name (`org/name`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Image,
    IterableDataset,
    IterableDatasetDict,
    load_dataset,
    load_from_disk,
)
from datasets.exceptions import DatasetGenerationError

from .digits import load_digits_dataset
from .digits_arithmetic import load_digits_arithmetic_dataset
from .images import IMAGE_SUFFIXES, open_image
from .segmentation import is_mask_folder, load_mask_folder
from .shapes import load_shape_names_dataset, load_shapes_any_colour_dataset, load_shapes_dataset
from .stdlib import load_stdlib_corpus, load_stdlib_functions, load_stdlib_pretrain_corpus

logger = logging.getLogger(__name__)

EMBEDDED_DATASETS = {
    "digits": load_digits_dataset, "shapes": load_shapes_dataset, "stdlib": load_stdlib_corpus,
    "stdlib-functions": load_stdlib_functions, "digits-arithmetic": load_digits_arithmetic_dataset,
    "stdlib-pretrain": load_stdlib_pretrain_corpus, "shapes-any-colour": load_shapes_any_colour_dataset,
    "shape-names": load_shape_names_dataset,
}
TABLE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
VALIDATION_FRACTION = 0.1


@dataclass
class DataOptions:
    """How to read a source: which columns hold what, and which Hub config and revision."""

    image_column: str = "image"
    text_column: str = "text"
    label_column: str = "label"
    config: str | None = None
    revision: str | None = None


def load_source(name: str, options: DataOptions | None = None, check_images: bool = True) -> DatasetDict:
    """Loads a data source by name; every split it has is returned, none of them empty. `check_images=False` leaves
    out the up-front decoding of every image file of a folder or table (a corrupt file is then found, and named, by
    the pass that decodes them once for the model: `decoded.decoded_images`)."""
    options = options or DataOptions()
    path = Path(name)
    if name in EMBEDDED_DATASETS:
        data = EMBEDDED_DATASETS[name]()
    elif (path / "dataset_dict.json").is_file():  # written by DatasetDict.save_to_disk
        data = rename_columns(load_from_disk(str(path)), options)
    elif path.is_dir() and table_files(path):
        data = load_tables(table_files(path), options, check_images)
    elif path.is_dir() and is_mask_folder(path):
        data = load_mask_folder(path)
    elif path.is_dir():
        data = load_image_folder(path, check_images)
    elif path.is_file():
        if path.suffix not in TABLE_FORMATS:
            raise ValueError(
                f"--dataset {name}: unsupported file type {path.suffix!r}; use one of {sorted(TABLE_FORMATS)}"
            )
        data = load_tables({"train": path}, options, check_images)
    elif HUB_NAME.match(name):
        data = load_hub_dataset(name, options)
    else:
        raise ValueError(
            f"Unknown --dataset {name!r}: not an embedded dataset ({', '.join(sorted(EMBEDDED_DATASETS))}), "
            "an existing folder or file, or a Hub dataset name of the form org/name"
        )
    for split, rows in data.items():
        if len(rows) == 0:
            raise ValueError(f"Split {split!r} of --dataset {name} is empty")
    return data


def load_streaming(
    name: str, options: DataOptions, validation_size: int, sample_size: int
) -> tuple[IterableDataset, DatasetDict]:
    """For data too big for the disk cache: the train split as a stream, read while training, and the rest
    in memory: `train` (its first `sample_size` rows, to fit the config, baselines and pictures), `validation`
    (the source's, else the first `validation_size` rows of the stream, which training then skips) and `test`."""
    path = Path(name)
    if name in EMBEDDED_DATASETS:
        streams = IterableDatasetDict(
            {split: rows.to_iterable_dataset() for split, rows in EMBEDDED_DATASETS[name]().items()}
        )
    elif path.is_dir() and not table_files(path) and not (path / "dataset_dict.json").is_file():
        streams = IterableDatasetDict(load_dataset("imagefolder", data_dir=str(path), streaming=True))
    elif HUB_NAME.match(name) and not path.exists():
        streams = load_hub_dataset(name, options, streaming=True)
    else:  # tables need a pass over every label to name the classes
        raise ValueError(
            f"--streaming reads embedded data, image folders and Hub datasets, not {name}; drop --streaming"
        )
    if "train" not in streams:
        raise ValueError(f"--dataset {name} has no train split; it has: {', '.join(streams)}")
    train = streams["train"]
    held_out = {split: materialize(rows, split, name) for split, rows in streams.items() if split != "train"}
    if "validation" not in held_out:
        held_out["validation"] = materialize(train.take(validation_size), "validation", name)
        train = train.skip(validation_size)
    held_out["train"] = materialize(train.take(sample_size), "train", name)
    return train, DatasetDict(held_out)


def materialize(rows: IterableDataset, split: str, name: str) -> Dataset:
    dataset = Dataset.from_list(list(rows), features=rows.features)
    if len(dataset) == 0:
        raise ValueError(f"Split {split!r} of --dataset {name} is empty")
    return dataset


def table_files(folder: Path) -> dict[str, Path]:
    """`train.csv`, `validation.parquet`, ... in a folder, by split."""
    return {
        file.stem: file for file in sorted(folder.iterdir())
        if file.suffix in TABLE_FORMATS and file.stem in ("train", "validation", "test")
    }


def load_image_folder(root: Path, check_images: bool = True) -> DatasetDict:
    """`<root>/<split>/<class>/<image>` (or `<root>/<class>/<image>` for train only), via datasets' imagefolder.
    Every split must hold every class."""
    files = [file for file in root.rglob("*") if file.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"--dataset {root}: the folder has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if check_images:
        for file in files:  # fail now, naming the file, rather than deep inside a training epoch
            open_image(file)
    data = load_dataset("imagefolder", data_dir=str(root))
    if "label" not in data["train"].column_names:
        raise ValueError(f"--dataset {root}: put the images in one sub-folder per class, e.g. train/NORMAL/x.png")
    names = data["train"].features["label"].names
    for split, rows in data.items():
        counts = np.bincount(rows["label"], minlength=len(names))
        if (counts == 0).any():
            empty = [names[index] for index in np.flatnonzero(counts == 0)]
            raise ValueError(
                f"--dataset {root}: split {split!r} has no image of class(es) {empty} (their folders there are "
                f"empty or missing; it has {dict(zip(names, counts.tolist()))}); every split needs every class"
            )
    return data


def load_tables(files: dict[str, Path], options: DataOptions, check_images: bool = True) -> DatasetDict:
    """csv / json / parquet files; image paths are read relative to their file's folder."""
    formats = {TABLE_FORMATS[file.suffix] for file in files.values()}
    if len(formats) > 1:
        raise ValueError(f"--dataset: mix of table formats {sorted(formats)} in {sorted(map(str, files.values()))}")
    (table_format,) = formats
    data = DatasetDict({split: read_table(table_format, split, file) for split, file in files.items()})
    columns = data["train"].column_names
    if options.image_column not in columns and options.text_column not in columns:
        raise ValueError(
            f"Neither --image-column {options.image_column!r} nor --text-column {options.text_column!r} is a column "
            f"of {files['train']}; its columns are {columns}"
        )
    data = rename_columns(data, options)
    if "label" in data["train"].column_names:
        data = encode_labels(data)
    if "image" in data["train"].column_names:
        data = DatasetDict({
            split: rows.map(lambda row: {"image": resolve_image_path(row["image"], files[split].parent, check_images)})
            for split, rows in data.items()
        }).cast_column("image", Image())
    return data


def read_table(table_format: str, split: str, file: Path) -> Dataset:
    try:
        return load_dataset(table_format, data_files={split: str(file)}, split=split)
    except (DatasetGenerationError, ValueError) as error:  # datasets' words for a file without rows, among others
        raise ValueError(
            f"Split {split!r} of --dataset {file} is empty or unreadable: {error.__cause__ or error}"
        ) from error


def resolve_image_path(value: str, folder: Path, check_image: bool = True) -> str:
    path = Path(value) if Path(value).is_absolute() else folder / value
    if check_image:
        open_image(path)  # names the file if it is missing or corrupt
    elif not path.is_file():
        raise ValueError(f"Image file not found: {path}")
    return str(path)


def encode_labels(data: DatasetDict) -> DatasetDict:
    """Labels become a `ClassLabel` shared by every split: class names sorted, or integer ids 0..n-1 kept."""
    values = sorted({value for rows in data.values() for value in rows["label"]}, key=lambda v: (str(type(v)), v))
    if all(isinstance(value, int) for value in values):
        if values[0] < 0:
            raise ValueError(f"Integer labels must be >= 0, found {values[0]} in the label column")
        names = [str(index) for index in range(values[-1] + 1)]
    else:
        names = [str(value) for value in values]
        data = data.map(lambda row: {"label": str(row["label"])})
    return data.cast_column("label", ClassLabel(names=names))


def load_hub_dataset(name: str, options: DataOptions, streaming: bool = False) -> DatasetDict | IterableDatasetDict:
    offline = os.environ.get("HF_HUB_OFFLINE", "0").upper() in ("1", "ON", "YES", "TRUE") or os.environ.get(
        "HF_DATASETS_OFFLINE", "0"
    ).upper() in ("1", "ON", "YES", "TRUE")
    try:
        data = load_dataset(name, options.config, revision=options.revision, streaming=streaming)
    except (ConnectionError, FileNotFoundError, OSError) as error:
        where = "the Hub is offline here (HF_HUB_OFFLINE=1)" if offline else "it could not be fetched"
        raise ValueError(
            f"--dataset {name}: Hub dataset not found in the local cache and {where}. Download it once where the "
            f"Hub is reachable (`datasets.load_dataset({name!r}).save_to_disk(...)` or `hf download {name} "
            "--repo-type dataset --local-dir DIR`), then point --dataset at the local folder or files."
        ) from error
    return rename_columns(data, options)


def rename_columns(data: DatasetDict | IterableDatasetDict, options: DataOptions) -> DatasetDict | IterableDatasetDict:
    """The source's image / text / label columns under the names the families read."""
    columns = next(iter(data.values())).column_names or []
    renames = {options.image_column: "image", options.text_column: "text", options.label_column: "label"}
    for source, target in renames.items():
        if columns and source != target and source not in columns:  # a column named on purpose must exist
            raise ValueError(f"--{target}-column {source!r} is not a column of the data; its columns are {columns}")
    return data.rename_columns({s: t for s, t in renames.items() if s in columns and s != t})


def require_columns(
    data: DatasetDict | IterableDatasetDict, columns: tuple[str, ...], name: str, options: DataOptions
) -> None:
    """Fails, naming the option to set, when the data lacks a column a family reads (`image`, `text`, `label`...)."""
    for split, rows in data.items():
        present = rows.column_names or list(rows.features or [])
        for column in columns:
            if column not in present:
                source_name = getattr(options, f"{column}_column", column)
                raise ValueError(
                    f"--{column}-column {source_name!r} is not a column of split {split!r} of --dataset {name}; its "
                    f"columns are {present}"
                )


def with_validation_split(data: DatasetDict, seed: int, fraction: float | None = None) -> DatasetDict:
    """Adds a `validation` split carved from `train` (seeded, stratified by label) when the source has none, or, with
    `fraction` (`--validation-from-train`), in place of the source's own (which is then not used)."""
    if "train" not in data:
        raise ValueError(f"The dataset has no train split; it has: {', '.join(data)}")
    if "validation" in data and fraction is None:
        return data
    fraction = VALIDATION_FRACTION if fraction is None else fraction
    has_labels = isinstance(data["train"].features.get("label"), ClassLabel)
    if has_labels:
        require_stratifiable(data["train"], fraction)
    try:
        parts = data["train"].train_test_split(
            test_size=fraction, seed=seed, stratify_by_column="label" if has_labels else None
        )
    except ValueError as error:  # too few rows, or of a class, for the fraction
        raise ValueError(f"Cannot carve {fraction:.0%} of {len(data['train'])} training rows as a validation split "
                         f"(stratified by label): {error}") from error
    replaced = f", in place of the source's own ({len(data['validation'])} rows)" if "validation" in data else ""
    data = DatasetDict({**data, "train": parts["train"], "validation": parts["test"]})
    logger.info("made a validation split from train (%.0f%%, seed %d%s): %s", fraction * 100, seed, replaced,
                split_sizes(data))
    return data


def require_stratifiable(train: Dataset, fraction: float) -> None:
    """A ValueError saying what to change when `fraction` of `train` cannot be split off with every class on both
    sides (scikit-learn's own message names neither the class nor the flag)."""
    labels = np.asarray(train["label"])
    names = train.features["label"].names
    counts = np.bincount(labels, minlength=len(names))
    present = np.flatnonzero(counts)
    rarest = present[np.argmin(counts[present])]
    validation_rows = int(np.ceil(fraction * len(train)))
    remedy = "give the dataset a validation split, or more training rows"
    if counts[rarest] < 2:
        raise ValueError(f"Cannot carve a validation split stratified by label from train: class {names[rarest]!r} "
                         f"has {counts[rarest]} training row(s), and each class needs at least 2; {remedy}")
    if not len(present) <= validation_rows <= len(train) - len(present):
        raise ValueError(f"Cannot carve {fraction:.0%} of {len(train)} training rows as a validation split stratified "
                         f"by label: {validation_rows} validation rows for {len(present)} classes (each side needs one "
                         f"row of each class); set --validation-from-train to another fraction, or {remedy}")


def split_sizes(data: DatasetDict) -> dict[str, int]:
    return {split: len(rows) for split, rows in data.items()}


__all__ = [
    "DataOptions", "load_source", "require_columns", "load_streaming", "with_validation_split", "split_sizes",
    "load_digits_dataset", "EMBEDDED_DATASETS",
]
