"""Images in and out: read a PNG (any size) into a model's input shape, write samples as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError


def read_image(path: str | Path, image_shape: tuple[int, int], pixel_max: float,
               invert: str = "auto") -> torch.Tensor:
    """A grayscale image resized to ``image_shape`` with values in [0, pixel_max].

    Training images (MNIST-style and the bundled digits) are light strokes on a
    dark background; with ``invert="auto"`` an image whose border is mostly light
    (a dark digit on white paper) is inverted to match.

    Returns a float32 tensor of shape (1, H, W).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such image file; give the path of a PNG or JPEG.")
    try:
        with Image.open(path) as img:
            img.load()
            gray = img.convert("L")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"{path}: not a readable image ({exc}); give a PNG or JPEG file.") from None
    h, w = image_shape
    if gray.size != (w, h):
        gray = gray.resize((w, h), Image.Resampling.LANCZOS)
    pixels = np.asarray(gray, dtype=np.float32)  # (H, W) in 0..255
    if invert not in ("auto", "yes", "no"):
        raise UserInputError(f"--invert must be auto, yes or no; got {invert!r}.")
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 127.5):
        pixels = 255.0 - pixels
    return torch.from_numpy(pixels * (pixel_max / 255.0)).unsqueeze(0)


def write_image(path: str | Path, image: torch.Tensor, pixel_max: float) -> Path:
    """Save one (H, W) image with values in [0, pixel_max] as an 8-bit grayscale PNG."""
    from PIL import Image

    pixels = image.detach().cpu().double().numpy() * (255.0 / pixel_max)
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    path = Path(path)
    Image.fromarray(pixels).save(path)
    return path
