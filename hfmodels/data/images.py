"""Reading image files with errors that name the file, and decoding them once at a model's input size."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Larger files are refused, naming them, before any pixel is decoded: PIL's own decompression-bomb limit (89 MP)
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


def open_image(path: str | Path) -> Image.Image:
    """Opens and fully decodes an image file; a missing or corrupt file is a ValueError naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError as error:
        raise ValueError(f"Image file not found: {path}") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot read image file {path}: {error}") from error


def decode_for_model(source: str | Path | bytes, size: int, num_channels: int, name: str | Path = "") -> Image.Image:
    """An image file (or its encoded bytes) as a `size` x `size` 8-bit image in the model's channels ("L" for 1,
    "RGB" for 3): the shorter side resized to `size`, then the centre cropped, so a non-square image keeps its
    proportions. A JPEG is decoded at a reduced scale where that still leaves at least `size` pixels (PIL's draft
    mode: a 2,000 x 2,000 X-ray is read at 250 x 250 for a 64-pixel model, several times faster). 16-bit images are
    scaled to 8 bits, transparency flattened onto black, palettes and CMYK converted. `name` (default: the path)
    names the file in errors: a missing, truncated or corrupt file, or one of more than MAX_IMAGE_PIXELS pixels."""
    mode = "L" if num_channels == 1 else "RGB"
    name = name or source
    try:
        with opened(source, name) as image:
            if image.format == "JPEG":
                shorter = min(image.size)
                image.draft(mode, (image.width * size // shorter, image.height * size // shorter))
            image.load()
            picture = to_8bit(image).convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot read image file {name}: {error}") from error
    return ImageOps.fit(picture, (size, size), Image.Resampling.BILINEAR, centering=(0.5, 0.5))


@contextmanager
def opened(source: str | Path | bytes, name: str | Path) -> Iterator[Image.Image]:
    """`Image.open` of a path or encoded bytes, with errors that name the file: not found, unreadable, or too many
    pixels (checked from the header, before anything is decoded)."""
    try:
        with warnings.catch_warnings():  # PIL's warning for 89-179 MP: the check below makes it an error
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError as error:
        raise ValueError(f"Image file not found: {name}") from error
    except Image.DecompressionBombError as error:
        raise ValueError(f"Image file {name} is too large to open safely ({error})") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot read image file {name}: {error}") from error
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ValueError(
                f"Image file {name} is {width}x{height} = {width * height:,} pixels, more than the "
                f"{MAX_IMAGE_PIXELS:,} decoded safely here; downscale it first"
            )
        yield image


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float images scaled to 0..255 by their own range (a 16-bit X-ray rarely spans the whole range);
    transparency flattened onto black; other modes (palette, CMYK, YCbCr, ...) left to `convert`."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = pixels.min(), pixels.max()
        scaled = (pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image
