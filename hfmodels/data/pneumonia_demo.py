"""A small SYNTHETIC stand-in for the chest X-ray pneumonia data (`hfmodels data make-pneumonia-demo DIR`).

Same layout as the real data (`train/`, `val/`, `test/`, each with `NORMAL/` and `PNEUMONIA/`), the real split
sizes divided by `scale_down` (the real data: 1,341 NORMAL / 3,875 PNEUMONIA in train, 8 / 8 in val, 234 / 390 in
test), and files like the real ones: JPEGs of 0.9-2.2 megapixels, of varied sizes and proportions, a few of them RGB
(the rest grayscale), so the demo path is the real path (decoded once at the model's size: data/decoded.py). With
`image_size`, small square PNGs instead (fast, for tests). The images are drawn, not X-rays: a bright body outline
with two dark lung fields, a spine and faint ribs; PNEUMONIA images add diffuse, blurred opacities inside the lungs.
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
REAL_SPLITS = {  # the real data's image counts by split (folder) and class
    "train": {"NORMAL": 1341, "PNEUMONIA": 3875},
    "val": {"NORMAL": 8, "PNEUMONIA": 8},
    "test": {"NORMAL": 234, "PNEUMONIA": 390},
}
MEGAPIXELS = (0.9, 2.2)  # the range of the real data's image sizes, about
RGB_FRACTION = 0.03  # a few of the real files are RGB
DRAWING_SIZE = 256  # pictures are drawn at most this large, then enlarged (with full-size noise) to their file size


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
    out_dir: str | Path, scale_down: int = 20, image_size: int | None = None, seed: int = 0
) -> dict[str, dict[str, int]]:
    """Writes the stand-in into `out_dir` (must be new or empty): the real data's split sizes divided by
    `scale_down` (at least 2 images of each class in each split), as real-size JPEGs, or with `image_size` as
    `image_size` x `image_size` PNGs. Returns the image count per split and class."""
    if scale_down < 1:
        raise ValueError(f"scale_down={scale_down}: must be >= 1 (1: the real data's sizes)")
    if image_size is not None and image_size < 16:
        raise ValueError(f"image_size={image_size}: need at least 16 pixels")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new folder")
    rng = np.random.default_rng(seed)
    counts = {split: {name: max(2, round(count / scale_down)) for name, count in classes.items()}
              for split, classes in REAL_SPLITS.items()}
    for split, classes in counts.items():
        for name, count in classes.items():
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                if image_size is not None:
                    picture = chest_image(rng, image_size, name == "PNEUMONIA")
                    picture.save(folder / f"synthetic_{index:04d}.png")
                else:
                    picture = real_size_image(rng, name == "PNEUMONIA", rgb=index == 1 or rng.random() < RGB_FRACTION)
                    picture.save(folder / f"synthetic_{index:04d}.jpeg", quality=90)
    (out / "README.txt").write_text(SYNTHETIC_NOTE + "\n")
    # the same, for the run's records: a model trained on this is marked synthetic and medical (see facts.py)
    (out / FACTS_FILE).write_text(json.dumps({"synthetic": True, "medical": True}) + "\n")
    return counts


def real_size_image(rng: np.random.Generator, pneumonia: bool, rgb: bool) -> Image.Image:
    """A picture of 0.9-2.2 megapixels, its proportions 4:5 to 5:4: the chest drawn in a square of the shorter side,
    centred on a dark detector background, enlarged from DRAWING_SIZE with noise of its own size."""
    area, aspect = rng.uniform(*MEGAPIXELS) * 1e6, rng.uniform(0.8, 1.25)
    width, height = round((area * aspect) ** 0.5), round((area / aspect) ** 0.5)
    side = min(width, height)
    chest = chest_image(rng, DRAWING_SIZE, pneumonia).resize((side, side), Image.Resampling.BILINEAR)
    picture = Image.new("L", (width, height), 10)
    picture.paste(chest, ((width - side) // 2, (height - side) // 2))
    noise = rng.normal(0, 6, size=(height, width)).astype(np.float32)
    picture = Image.fromarray(np.clip(np.asarray(picture, np.float32) + noise, 0, 255).astype(np.uint8), mode="L")
    if rgb:  # a faint tint, as a scan saved in colour shows
        return Image.merge("RGB", [picture, picture, picture.point(lambda value: value * 0.96)])
    return picture
