"""Images with masks for semantic segmentation: `image` and `mask` columns (datasets `Image`s), a mask being a
single-channel image of class ids of its image's size.

A mask folder is `<root>/images/<name>` + `<root>/masks/<name>.png` (train only), or the same per split,
`<root>/<split>/images|masks`. An optional `<root>/id2label.json` ({"0": "background", ...}) names the
classes; without it they are 0..(the largest id in the masks). Pixels of value 255 are unlabelled: the loss and
the metrics skip them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features, Image

from .images import IMAGE_SUFFIXES, open_image

IGNORE_INDEX = 255  # UNetConfig.semantic_loss_ignore_index's default
MASK_MODES = ("1", "L", "P", "I", "I;16")  # single-channel PIL modes
CLASS_NAMES_KEY = "mask_classes"  # where the class names live in a dataset's `info.description` (JSON)
FEATURES = Features({"image": Image(), "mask": Image()})


def mask_dataset(images: list, masks: list, class_names: list[str]) -> Dataset:
    """A dataset of (image, mask) rows (PIL images or file paths) that carries the names of its classes."""
    rows = Dataset.from_dict({"image": images, "mask": masks}, features=FEATURES)
    rows.info.description = json.dumps({CLASS_NAMES_KEY: list(class_names)})
    return rows


def mask_classes(rows: Dataset) -> list[str]:
    """The class names a dataset carries; else the ids 0..(the largest id in its masks), as strings."""
    try:
        return list(json.loads(rows.info.description or "")[CLASS_NAMES_KEY])
    except (ValueError, KeyError, TypeError):
        pass
    largest = max(int(np.max(labelled_ids(np.asarray(mask)), initial=0)) for mask in rows["mask"])
    return [str(class_id) for class_id in range(max(largest, 1) + 1)]


def labelled_ids(mask: np.ndarray) -> np.ndarray:
    return mask[mask != IGNORE_INDEX]


def is_mask_folder(root: Path) -> bool:
    return bool(mask_split_folders(root))


def mask_split_folders(root: Path) -> dict[str, Path]:
    """`{"train": root}` for `<root>/images|masks`, else `{split: <root>/<split>}` for each split that has them."""
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return {"train": root}
    return {
        folder.name: folder for folder in sorted(root.iterdir())
        if (folder / "images").is_dir() and (folder / "masks").is_dir()
    } if root.is_dir() else {}


def load_mask_folder(root: Path) -> DatasetDict:
    """Every image and mask is opened and checked up front, so a bad file fails now, named, not mid-epoch."""
    names_file = root / "id2label.json"
    names = read_class_names(names_file) if names_file.is_file() else None
    pairs = {split: image_mask_pairs(folder) for split, folder in mask_split_folders(root).items()}
    largest: tuple[int, Path | None] = (0, None)  # the largest class id and a mask that has it
    seen: set[int] = set()
    for image_path, mask_path in (pair for split_pairs in pairs.values() for pair in split_pairs):
        ids = np.unique(labelled_ids(check_pair(image_path, mask_path)))
        if names is not None and ids.size and ids[-1] >= len(names):
            raise ValueError(
                f"Mask {mask_path} has class id {ids[-1]}, but {names_file} names {len(names)} classes "
                f"(ids 0..{len(names) - 1}; {IGNORE_INDEX} marks unlabelled pixels)"
            )
        seen.update(ids.tolist())
        if ids.size and ids[-1] > largest[0]:
            largest = (int(ids[-1]), mask_path)
    if names is None:
        missing = sorted(set(range(largest[0] + 1)) - seen)
        if missing:  # most likely masks saved as 0/255 pictures, or ids that are not numbered from 0
            raise ValueError(
                f"Mask {largest[1]} has class id {largest[0]}, but ids {missing[:10]} occur in no mask: number the "
                f"classes 0..n-1 ({IGNORE_INDEX} marks unlabelled pixels), or name them in {names_file}"
            )
        names = [str(class_id) for class_id in range(max(largest[0], 1) + 1)]
    return DatasetDict({
        split: mask_dataset([str(image) for image, _ in split_pairs], [str(mask) for _, mask in split_pairs], names)
        for split, split_pairs in pairs.items()
    })


def image_mask_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths matched by file name without suffix; an image without a mask (or the reverse) is an error."""
    images = {file.stem: file for file in sorted((folder / "images").iterdir())
              if file.suffix.lower() in IMAGE_SUFFIXES}
    masks = {file.stem: file for file in sorted((folder / "masks").iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES}
    if not images:
        raise ValueError(f"--dataset: {folder / 'images'} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for stem, image in images.items():
        if stem not in masks:
            raise ValueError(f"Image {image} has no mask: expected {folder / 'masks' / stem}.png")
    for stem, mask in masks.items():
        if stem not in images:
            raise ValueError(f"Mask {mask} has no image: expected {folder / 'images' / stem}.<png|jpg|...>")
    return [(images[stem], masks[stem]) for stem in images]


def check_pair(image_path: Path, mask_path: Path) -> np.ndarray:
    """The mask's class ids, after checking that it is a single-channel image of its image's size."""
    image, mask = open_image(image_path), open_image(mask_path)
    if mask.mode not in MASK_MODES:
        raise ValueError(
            f"Mask {mask_path} has PIL mode {mask.mode!r}; a mask must be a single-channel image of class ids "
            f"(mode {', '.join(MASK_MODES)}), e.g. an 8-bit grayscale PNG"
        )
    if mask.size != image.size:
        raise ValueError(f"Mask {mask_path} is {mask.size[0]}x{mask.size[1]} pixels, its image {image_path} "
                         f"{image.size[0]}x{image.size[1]}: a mask must have its image's size")
    ids = np.asarray(mask)
    if ids.min() < 0:
        raise ValueError(f"Mask {mask_path} has negative class id {ids.min()}")
    return ids


def read_class_names(path: Path) -> list[str]:
    try:
        id2label = json.loads(path.read_text())
        names = [str(id2label[str(class_id)]) for class_id in range(len(id2label))]
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(
            f"{path} must map the class ids 0..n-1 to names, e.g. {{\"0\": \"background\"}} ({error!r})"
        ) from error
    if len(names) < 2:
        raise ValueError(
            f"{path} names {len(names)} class(es); segmentation needs at least 2 (background and one more)"
        )
    return names
