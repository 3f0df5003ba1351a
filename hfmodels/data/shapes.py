"""Synthetic shapes for semantic segmentation, generated with fixed seeds: 64x64 RGB images of textured
noise with 2 to 4 circles, upright squares and upward-pointing triangles each (random sizes, places and
colours, overlapping, later shapes on top), and masks of class ids 0 background, 1 circle, 2 square, 3 triangle.
Each kind has its own range of hues (circles red to yellow, squares green, triangles blue to violet; saturation and
brightness random), so a small model learns the kinds on CPU in minutes; the outline decides the mask's edges.

`shapes-any-colour` is the same task without that crutch: every shape of any hue, so only the outline tells the
kind. `shape-names` is a related task to pretrain a backbone on: one shape of any colour per image, labelled with
its kind (image classification)."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features
from datasets import Image as ImageFeature
from PIL import Image, ImageDraw

from .segmentation import mask_dataset

SHAPE_CLASSES = ["background", "circle", "square", "triangle"]
SHAPES_IMAGE_SIZE = 64
# The one fixed split every number in this project is measured on: each split has its own seed.
SHAPES_SPLITS = {"train": (2000, 0), "test": (500, 1)}  # split: (images, seed)
NOISE_STD = 12.0  # per-pixel noise over shapes and background alike
HUES = {"circle": (0.0, 0.17), "square": (0.25, 0.45), "triangle": (0.58, 0.8)}  # HSV hue range of each kind
ANY_HUE = (0.0, 1.0)
# other seeds than the segmentation data's: no image of shape-names is one of shapes-any-colour
SHAPE_NAMES_SPLITS = {"train": (2000, 10), "test": (500, 11)}


def shape_polygon(kind: str, x: float, y: float, size: float) -> list[tuple[float, float]] | None:
    """The corners of a square or triangle of about the area of a circle of radius 0.8 * size (None: a circle)."""
    if kind == "circle":
        return None
    # the first corner straight up (y grows downwards): a triangle points up, a square is turned to stand on a side
    corners, radius = (4, size) if kind == "square" else (3, 1.25 * size)
    angle = -math.pi / 2 + (math.pi / 4 if corners == 4 else 0)
    return [(x + radius * math.cos(angle + 2 * math.pi * k / corners),
             y + radius * math.sin(angle + 2 * math.pi * k / corners))
            for k in range(corners)]


def draw_shapes_example(
    rng: np.random.Generator, size: int = SHAPES_IMAGE_SIZE, any_colour: bool = False, shapes: tuple[int, int] = (2, 5)
) -> tuple[Image.Image, Image.Image]:
    """One image and its mask: `shapes` (low, high: high excluded) shapes, each kind of its own hues unless
    `any_colour`."""
    # background: smooth random colour blotches (a 5x5 grid upsampled), noise added at the end
    blotches = rng.uniform(60, 170, (5, 5, 3)).astype(np.uint8)
    image = Image.fromarray(blotches, mode="RGB").resize((size, size), Image.Resampling.BICUBIC)
    mask = Image.new("L", (size, size), 0)
    draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(rng.integers(*shapes)):
        class_id = int(rng.integers(1, len(SHAPE_CLASSES)))
        shape_size = rng.uniform(0.11, 0.25) * size
        x, y = rng.uniform(0.1 * size, 0.9 * size, 2)
        hues = ANY_HUE if any_colour else HUES[SHAPE_CLASSES[class_id]]
        hue, saturation, value = rng.uniform(*hues), rng.uniform(0.5, 1), rng.uniform(0.55, 1)
        colour = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value))
        polygon = shape_polygon(SHAPE_CLASSES[class_id], x, y, shape_size)
        for draw, fill in ((draw_image, colour), (draw_mask, class_id)):
            if polygon is None:
                radius = 0.8 * shape_size
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
            else:
                draw.polygon(polygon, fill=fill)
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, NOISE_STD, (size, size, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB"), mask


def generate_shapes(count: int, seed: int, any_colour: bool = False) -> Dataset:
    rng = np.random.default_rng(seed)
    images, masks = zip(*(draw_shapes_example(rng, any_colour=any_colour) for _ in range(count)))
    return mask_dataset(list(images), list(masks), SHAPE_CLASSES)


def load_shapes_dataset() -> DatasetDict:
    """The fixed split: 2,000 training and 500 test images (64x64 RGB), generated from seeds 0 and 1."""
    return DatasetDict({split: generate_shapes(count, seed) for split, (count, seed) in SHAPES_SPLITS.items()})


def load_shapes_any_colour_dataset() -> DatasetDict:
    """The shapes split (same sizes and seeds), every shape of any hue: the outline alone tells the kind."""
    return DatasetDict({split: generate_shapes(count, seed, any_colour=True)
                        for split, (count, seed) in SHAPES_SPLITS.items()})


def load_shape_names_dataset() -> DatasetDict:
    """2,000 training and 500 test images (64x64 RGB, seeds 10 and 11) of one shape of any hue each, labelled
    circle, square or triangle."""
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=SHAPE_CLASSES[1:])})
    splits = {}
    for split, (count, seed) in SHAPE_NAMES_SPLITS.items():
        rng = np.random.default_rng(seed)
        images, labels = [], []
        for _ in range(count):
            image, mask = draw_shapes_example(rng, any_colour=True, shapes=(1, 2))
            images.append(image)
            labels.append(int(np.asarray(mask).max()) - 1)  # the one shape's class id; 0 is the background
        splits[split] = Dataset.from_dict({"image": images, "label": labels}, features=features)
    return DatasetDict(splits)
