"""Images in and out: decode safely, bring a picture to the training data's convention, write PNGs.

Real pictures (a digit drawn on a 280x280 canvas, a photo of a shirt, a transparent PNG) do
not look like training samples until they are treated the way the datasets' makers treated
theirs: grey, the background made dark, the ink cropped, scaled into the dataset's box with
its aspect kept, and placed the way the dataset places it. ``prepare`` does that.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.settings import spell

# Only the formats softreg means to read: Pillow knows dozens more (EPS would start Ghostscript).
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
MAX_PIXELS = 50_000_000  # a 48 Mpixel phone photo passes; below Pillow's own 89 Mpixel warning
WORK_SIDE = 1024  # larger pictures are reduced to this longer side first: enough for a 28x28 box
EMPTY_CONTRAST = 0.1  # ink weaker than this share of the full range counts as no ink at all
INK_THRESHOLD = 0.25  # a pixel is ink (for the crop) at this share of the image's strongest ink
FITS = ("auto", "dataset", "resize")
INVERTS = ("auto", "yes", "no")

# Warning filters are process-wide; decoding under one lock keeps our temporary filters from
# leaking between threads (a server decodes on many), and restores them afterwards.
_DECODE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Convention:
    """How a dataset's images were made, so a new picture can be made the same way.

    shape : (H, W) of a sample; pixel_max : the value of full ink.
    box : share of the canvas the ink's longer side is scaled to (MNIST: 20 of 28 pixels).
    centre : "mass" puts the centre of mass at the canvas centre (MNIST); "box" centres the
        ink's bounding box (Fashion-MNIST, the bundled digits).
    block : >1 renders at ``block`` times the size and stores each block's mean ink (the
        bundled digits are 4x4 counts of a 32x32 bitmap, values 0..16).
    """

    shape: tuple[int, int]
    pixel_max: float
    box: float = 20 / 28
    centre: str = "mass"
    block: int = 1


def convention_for(name: str | None, image_shape, pixel_max: float) -> Convention:
    """The convention of a dataset by name; MNIST's for any other image data."""
    shape = (int(image_shape[0]), int(image_shape[1]))
    if name == "digits":  # the ink spans the whole 8 rows, aspect kept, centred
        return Convention(shape, pixel_max, box=1.0, centre="box", block=4)
    if name == "fashion-mnist":  # longest edge scaled to 28, centred
        return Convention(shape, pixel_max, box=1.0, centre="box")
    return Convention(shape, pixel_max)


@dataclass
class PreparedImage:
    """A picture as the model sees it: ``pixels`` of shape (H, W), values in [0, pixel_max]."""

    pixels: torch.Tensor
    warnings: list[str] = field(default_factory=list)
    empty: bool = False


def _describe(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "image"


MAX_FILE_BYTES = 256 << 20  # an image file larger than this is refused before decoding


def load_grey(source: bytes | str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a PNG / JPEG / GIF / BMP / WebP into grey values of shape (H, W), 0..255 float32.

    Transparent pixels are composited on the background the picture implies: a dark drawing
    on a transparent canvas lands on white, a light one on black. Pictures larger than
    ``WORK_SIDE`` are reduced first. Raises UserInputError naming the problem.
    """
    what = _describe(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise UserInputError(f"{path}: no such image file; give the path of a PNG or JPEG.")
        # decoded from memory: Pillow reading a file honours chunk lengths written in the file
        # (a 200-byte PNG can ask for gigabytes); from bytes it cannot read past their end
        from softreg.system.limits import read_at_most

        try:
            with open(path, "rb") as f:
                data = read_at_most(f, MAX_FILE_BYTES)
        except OSError as exc:
            raise UserInputError(f"cannot read {path} ({exc.strerror or exc}); check the file.") from None
        if data is None:
            raise UserInputError(f"{path}: the file is over {MAX_FILE_BYTES >> 20} MB, more than any picture "
                                 "softreg reads; give a smaller image.")
        source = data
    max_pixels = min(int(max_pixels), 2 * 89_478_485)
    with _DECODE_LOCK, warnings.catch_warnings():
        from PIL import Image

        warnings.simplefilter("ignore")  # EXIF and metadata complaints: harmless for pixels
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(source, max_pixels, what)
        except UserInputError:
            raise
        except MemoryError:
            raise UserInputError(f"{what}: too large to decode in memory; give a smaller image.") from None
        except Exception as exc:  # noqa: BLE001  a damaged file can make a decoder fail in any way
            if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
                raise UserInputError(
                    f"{what}: the picture is over the limit of {max_pixels / 1e6:.0f} Mpixel; give a smaller image."
                ) from None
            if isinstance(exc, FileNotFoundError):
                raise UserInputError(f"{what}: no such image file; give the path of a PNG or JPEG.") from None
            if isinstance(exc, Image.UnidentifiedImageError):  # its text names a Python object
                detail = "not a format softreg reads"
            else:
                detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise UserInputError(
                f"{what}: not a readable image ({detail}); give a PNG or JPEG file "
                f"(formats read: {', '.join(ALLOWED_FORMATS)})."
            ) from None


def _decode(source, max_pixels: int, what: str) -> np.ndarray:
    from PIL import Image, ImageOps

    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    with Image.open(fp, formats=list(ALLOWED_FORMATS)) as img:
        width, height = img.size
        if width < 1 or height < 1 or width * height > max_pixels:
            raise UserInputError(
                f"{what}: {width}x{height} pixels is over the limit of {max_pixels / 1e6:.0f} Mpixel; "
                "give a smaller image."
            )
        if img.format == "JPEG" and max(width, height) > WORK_SIDE:
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale for almost nothing
            scale = WORK_SIDE / max(width, height)
            img.draft("L", (max(1, int(width * scale)), max(1, int(height * scale))))
        img.load()
        img = ImageOps.exif_transpose(img)  # phone photos store their rotation apart
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit PNG
            img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
        img = img.convert("LA" if has_alpha else "L")
        factor = -(-max(img.size) // WORK_SIDE)
        if factor > 1:
            img = img.reduce(factor)
        values = np.asarray(img, dtype=np.float32)
    if not has_alpha:
        return values  # (H, W)
    grey, alpha = values[..., 0], values[..., 1] / 255.0  # (H, W) each
    opaque = alpha > 0.5
    ink_grey = float(grey[opaque].mean()) if opaque.any() else 0.0
    background = 255.0 if ink_grey < 127.5 else 0.0  # the side of the range the ink is not on
    return grey * alpha + background * (1.0 - alpha)


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of float values (H, W) to ``size`` = (H', W')."""
    from PIL import Image

    h, w = size
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize((w, h), Image.Resampling.LANCZOS),
                      dtype=np.float32)


def _invert_and_level(grey: np.ndarray, invert: str) -> np.ndarray:
    """Light ink on a dark background, background at 0, in 0..1. grey : (H, W) in 0..255."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if invert == "yes" or (invert == "auto" and background > 127.5):
        grey, background = 255.0 - grey, 255.0 - background
    return np.clip(grey - background, 0.0, None) / 255.0


def _shift(values: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """values (H, W) moved by (dy, dx) pixels, bilinear, zeros shifted in."""
    from PIL import Image

    img = Image.fromarray(values.astype(np.float32))
    moved = img.transform(img.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy),
                          resample=Image.Resampling.BILINEAR, fillcolor=0.0)
    return np.asarray(moved, dtype=np.float32)


def _centre_shift(ink: np.ndarray, centre: str) -> tuple[float, float]:
    """Where the ink's centre (of mass or of its box) lies, in pixels from the top-left."""
    if centre == "mass":
        total = float(ink.sum())
        rows, cols = np.indices(ink.shape)
        return float((rows * ink).sum()) / total, float((cols * ink).sum()) / total
    return (ink.shape[0] - 1) / 2.0, (ink.shape[1] - 1) / 2.0


def _place(ink: np.ndarray, convention: Convention) -> np.ndarray:
    """Scale cropped ink (h, w, values 0..1) into the box and place it on the canvas."""
    block = convention.block
    canvas_h, canvas_w = convention.shape[0] * block, convention.shape[1] * block
    box = max(1.0, convention.box * min(canvas_h, canvas_w))
    scale = box / max(ink.shape)
    size = (max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale)))
    scaled = np.clip(_resize(ink, size), 0.0, 1.0)  # Lanczos rings a little below 0 / above 1
    cy, cx = _centre_shift(scaled, convention.centre)
    canvas = np.zeros((canvas_h, canvas_w), dtype=np.float32)
    top, left = (canvas_h - size[0]) // 2, (canvas_w - size[1]) // 2
    canvas[top : top + size[0], left : left + size[1]] = scaled
    # move the chosen centre onto the canvas centre; sub-pixel shifts keep the ink's shape
    dy = (canvas_h - 1) / 2.0 - (top + cy)
    dx = (canvas_w - 1) / 2.0 - (left + cx)
    if abs(dy) > 1e-3 or abs(dx) > 1e-3:
        canvas = _shift(canvas, dy, dx)
    if block > 1:  # mean ink per block, as the digits count set pixels of 4x4 blocks
        canvas = canvas.reshape(convention.shape[0], block, convention.shape[1], block).mean(axis=(1, 3))
    return np.clip(canvas, 0.0, 1.0)


def prepare(grey: np.ndarray, convention: Convention, invert: str = "auto",
            fit: str = "auto") -> PreparedImage:
    """Bring a decoded picture (H, W grey 0..255, from ``load_grey``) to the training convention.

    fit : "dataset" crops the ink and scales it into the convention's box; "resize" squeezes
        the whole picture to the sample shape; "auto" is "dataset" unless the picture already
        has the sample shape (a saved test sample), which is then taken as it is.
    invert : "auto" inverts when the border is mostly light (dark ink on paper).
    Returns pixels of shape ``convention.shape`` in [0, pixel_max].
    """
    if invert not in INVERTS:
        raise UserInputError(f"{spell('invert')} must be auto, yes or no; got {invert!r}.")
    if fit not in FITS:
        raise UserInputError(f"{spell('fit')} must be auto, dataset or resize; got {fit!r}.")
    shape, top = convention.shape, convention.pixel_max
    if fit == "auto":
        fit = "as-is" if tuple(grey.shape) == shape else "dataset"
    if fit == "as-is":
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        if invert == "yes" or (invert == "auto" and float(border.mean()) > 127.5):
            grey = 255.0 - grey
        pixels = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32) * np.float32(top / 255.0))
        empty = float(pixels.max()) < EMPTY_CONTRAST * top
        return PreparedImage(pixels, [EMPTY_NOTE] if empty else [], empty)
    ink = _invert_and_level(grey, invert)  # (H, W) in 0..1, background 0
    strongest = float(ink.max())
    if strongest < EMPTY_CONTRAST:
        return PreparedImage(torch.zeros(shape, dtype=torch.float32), [EMPTY_NOTE], True)
    if fit == "resize":
        values = np.clip(_resize(ink / strongest, shape), 0.0, 1.0)
    else:
        mask = ink >= INK_THRESHOLD * strongest
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        # full ink at the strongest strokes, as MNIST's and the digits' ink is
        values = _place(np.clip(crop / np.percentile(crop[crop > 0], 99), 0.0, 1.0), convention)
    return PreparedImage(torch.from_numpy(values.astype(np.float32) * np.float32(top)), [], False)


EMPTY_NOTE = "the image is empty (no ink found); the prediction means nothing"


def read_image(path: str | Path, image_shape: tuple[int, int], pixel_max: float,
               invert: str = "auto", fit: str = "auto", dataset: str | None = None) -> torch.Tensor:
    """A picture file brought to a model's input convention: float32 of shape (1, H, W).

    A shortcut for ``prepare(load_grey(path), convention_for(dataset, ...))``.
    """
    if invert not in INVERTS:
        raise UserInputError(f"{spell('invert')} must be auto, yes or no; got {invert!r}.")
    convention = convention_for(dataset, image_shape, pixel_max)
    return prepare(load_grey(path), convention, invert, fit).pixels.unsqueeze(0)


def write_image(path: str | Path, image: torch.Tensor, pixel_max: float) -> Path:
    """Save one (H, W) image with values in [0, pixel_max] as an 8-bit grayscale PNG."""
    from PIL import Image

    pixels = image.detach().cpu().double().numpy() * (255.0 / pixel_max)
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    path = Path(path)
    Image.fromarray(pixels).save(path)
    return path


def png_bytes(image: torch.Tensor, pixel_max: float) -> bytes:
    """One (H, W) image with values in [0, pixel_max] as the bytes of an 8-bit grey PNG."""
    from PIL import Image

    pixels = np.clip(np.rint(image.detach().cpu().double().numpy() * (255.0 / pixel_max)), 0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()
