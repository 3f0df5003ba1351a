"""Reading image files with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


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
