"""Images decoded once per data source and input size, and reused by every epoch and every later run.

Decoding a 1-2 megapixel JPEG costs 15-30 ms; the model at 64x64 needs well under 1 ms a sample. So the `image`
column of each split is decoded and resized to the model's input size in one `datasets.Dataset.map` (which also
finds the corrupt files, naming them), stored as small PNGs in an Arrow file in the datasets cache, and read from
there by every epoch. The file's name is a fingerprint of the split (datasets fingerprints a loaded folder by its
files' paths and modification times) and of the size and channels: a second run on the same data and size opens it
at once; a changed file or size makes another. datasets writes the file under a temporary name and renames it when
complete, so a crash or a bad image leaves no half-written cache behind.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, DatasetDict, Image
from datasets.fingerprint import Hasher

from .images import decode_for_model

logger = logging.getLogger(__name__)

CACHE_FOLDER = "hfmodels-decoded-images"
CACHE_VERSION = 1  # bump when decode_for_model changes what it makes
MAP_BATCH = 64


def decoded_images(data: DatasetDict, image_size: int, num_channels: int, num_proc: int | None = None) -> DatasetDict:
    """Every split with an `image` column, its images decoded to `image_size` x `image_size` in `num_channels`
    channels (see `decode_for_model`). Splits held only in memory (generated data, already small) are kept as they
    are; `num_proc` processes decode a large split."""
    return DatasetDict({
        split: decoded_split(rows, split, image_size, num_channels, num_proc) if is_cacheable(rows) else rows
        for split, rows in data.items()
    })


def is_cacheable(rows: Dataset) -> bool:
    return isinstance(rows.features.get("image"), Image) and bool(rows.cache_files)


def cache_file(rows: Dataset, image_size: int, num_channels: int) -> tuple[Path, str]:
    """Where the decoded split is kept, and its fingerprint."""
    fingerprint = Hasher.hash([rows._fingerprint, image_size, num_channels, CACHE_VERSION])
    return Path(datasets.config.HF_DATASETS_CACHE) / CACHE_FOLDER / f"decoded-{fingerprint}.arrow", fingerprint


def decoded_split(rows: Dataset, split: str, image_size: int, num_channels: int, num_proc: int | None) -> Dataset:
    path, fingerprint = cache_file(rows, image_size, num_channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(rows) < 4 * MAP_BATCH or (num_proc or 1) < 2:
        num_proc = None  # starting processes costs more than it saves
    if path.is_file() or (num_proc and any(path.parent.glob(f"{path.stem}_*_of_{num_proc:05d}.arrow"))):
        logger.info("split %s: decoded %dx%d images from the cache (%s)", split, image_size, image_size, path.name)
    return rows.cast_column("image", Image(decode=False)).map(
        decode_batch,
        fn_kwargs={"image_size": image_size, "num_channels": num_channels},
        batched=True,
        batch_size=MAP_BATCH,
        features=datasets.Features({**rows.features, "image": Image(decode=False)}),
        cache_file_name=str(path),
        new_fingerprint=fingerprint,
        num_proc=num_proc,
        desc=f"decoding the {split} images to {image_size}x{image_size} (once; cached)",
    ).cast_column("image", Image())


def decode_batch(batch: dict[str, list], image_size: int, num_channels: int) -> dict[str, list[dict[str, Any]]]:
    images = []
    for image in batch["image"]:
        name = image["path"] or "an image of the dataset"
        picture = decode_for_model(image["bytes"] or image["path"], image_size, num_channels, name=name)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=1)  # fast to write and to read back
        images.append({"bytes": buffer.getvalue(), "path": image["path"]})
    return {"image": images}
