"""A small SYNTHETIC stand-in for the chest X-ray pneumonia data (`hfmodels data make-pneumonia-demo DIR`).

Same layout as the real data (`train/`, `val/`, `test/`, each with `NORMAL/` and `PNEUMONIA/`), so the whole
workflow (train, evaluate, app) runs offline. The images are drawn, not X-rays: a bright body outline with two
dark lung fields, a spine and faint ribs; PNEUMONIA images add diffuse, blurred opacities inside the lungs. As in
the real data, the training split has three PNEUMONIA images for every NORMAL one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .facts import FACTS_FILE

SYNTHETIC_NOTE = (
    "SYNTHETIC DATA: a generated synthetic stand-in for the chest X-ray pneumonia data set, made by "
    "`hfmodels data make-pneumonia-demo`. These are drawings, not X-rays of people. A model trained on them "
    "learns to tell drawn blobs apart and says nothing about real chest X-rays or pneumonia."
)
PNEUMONIA_PER_NORMAL = 3  # the imbalance of the real training split (about 3,900 PNEUMONIA to 1,300 NORMAL)


def chest_image(rng: np.random.Generator, size: int, pneumonia: bool) -> Image.Image:
    """One grayscale chest-like picture, `size` x `size`."""
    scale = size / 64
    picture = Image.new("L", (size, size), 10)
    draw = ImageDraw.Draw(picture)
    shift = rng.uniform(-3, 3, size=2) * scale
    draw.ellipse([4 * scale + shift[0], 2 * scale + shift[1], 60 * scale + shift[0], 70 * scale + shift[1]], fill=150)
    lungs = []
    for side in (-1, 1):  # the two lung fields, dark because air stops few X-rays
        centre_x, centre_y = 32 * scale + side * 13 * scale + shift[0], 33 * scale + shift[1]
        width, height = rng.uniform(9, 11) * scale, rng.uniform(19, 23) * scale
        box = [centre_x - width, centre_y - height, centre_x + width, centre_y + height]
        draw.ellipse(box, fill=int(rng.uniform(45, 65)))
        lungs.append(box)
    for rib in range(6):  # faint ribs across both lungs
        y = (14 + rib * 7) * scale + shift[1]
        draw.arc([8 * scale, y - 6 * scale, 56 * scale, y + 6 * scale], 200, 340, fill=95, width=max(1, round(scale)))
    draw.rectangle([29 * scale + shift[0], 0, 35 * scale + shift[0], size], fill=185)  # the spine
    if pneumonia:  # diffuse opacities: soft bright patches inside one or both lungs
        haze = Image.new("L", (size, size), 0)
        haze_draw = ImageDraw.Draw(haze)
        for _ in range(rng.integers(2, 5)):
            left, top, right, bottom = lungs[rng.integers(0, 2)]
            x, y = rng.uniform(left + 3 * scale, right - 3 * scale), rng.uniform(top + 6 * scale, bottom - 6 * scale)
            radius = rng.uniform(4, 8) * scale
            haze_draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=int(rng.uniform(70, 110)))
        haze = haze.filter(ImageFilter.GaussianBlur(2.5 * scale))
        picture = Image.fromarray(np.clip(np.asarray(picture, np.int16) + np.asarray(haze), 0, 255).astype(np.uint8))
    picture = picture.filter(ImageFilter.GaussianBlur(0.8 * scale))
    noise = rng.normal(0, 8, size=(size, size))
    return Image.fromarray(np.clip(np.asarray(picture, np.float64) + noise, 0, 255).astype(np.uint8), mode="L")


def make_pneumonia_demo(
    out_dir: str | Path, normal: int = 40, image_size: int = 64, seed: int = 0
) -> dict[str, dict[str, int]]:
    """Writes the stand-in into `out_dir` (must be new or empty): `normal` NORMAL training images and three
    times as many PNEUMONIA ones; `val/` and `test/` balanced. Returns the image count per split and class."""
    if normal < 4:
        raise ValueError(f"normal={normal}: need at least 4 NORMAL training images")
    if image_size < 16:
        raise ValueError(f"image_size={image_size}: need at least 16 pixels")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new folder")
    rng = np.random.default_rng(seed)
    counts = {
        "train": {"NORMAL": normal, "PNEUMONIA": PNEUMONIA_PER_NORMAL * normal},
        "val": {"NORMAL": max(2, normal // 4), "PNEUMONIA": max(2, normal // 4)},
        "test": {"NORMAL": max(4, normal // 2), "PNEUMONIA": max(4, normal // 2)},
    }
    for split, classes in counts.items():
        for name, count in classes.items():
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                chest_image(rng, image_size, name == "PNEUMONIA").save(folder / f"synthetic_{index:04d}.png")
    (out / "README.txt").write_text(SYNTHETIC_NOTE + "\n")
    # the same, for the run's records: a model trained on this is marked synthetic and medical (see facts.py)
    (out / FACTS_FILE).write_text(json.dumps({"synthetic": True, "medical": True}) + "\n")
    return counts
