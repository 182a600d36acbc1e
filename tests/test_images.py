"""Images in and out (softreg.images): resizing, inversion, errors and the PNG round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from softreg.errors import UserInputError
from softreg.images import read_image, write_image


def digit_like(size: int = 28, dark_on_light: bool = False) -> np.ndarray:
    """A (size, size) uint8 picture: a bright vertical stroke on black (or the reverse)."""
    img = np.zeros((size, size), dtype=np.uint8)
    img[size // 4 : 3 * size // 4, size // 2 - size // 14 : size // 2 + size // 14] = 255
    return 255 - img if dark_on_light else img


def test_write_then_read_round_trip(tmp_path):
    pixels = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    pixels[0, :] = 0  # a dark border: no automatic inversion
    pixels[-1, :] = 0
    pixels[:, 0] = 0
    pixels[:, -1] = 0
    path = write_image(tmp_path / "x.png", pixels.float(), 255.0)
    back = read_image(path, (28, 28), 255.0)
    assert back.shape == (1, 28, 28) and back.dtype == torch.float32
    assert torch.equal(back[0], pixels.float())


def test_round_trip_with_another_pixel_scale(tmp_path):
    values = torch.arange(64, dtype=torch.float32).reshape(8, 8) % 17  # 0..16 like the bundled digits
    values[0], values[-1], values[:, 0], values[:, -1] = 0, 0, 0, 0
    path = write_image(tmp_path / "d.png", values, 16.0)
    with Image.open(path) as img:
        assert img.mode == "L" and img.size == (8, 8)
    back = read_image(path, (8, 8), 16.0)[0]
    assert torch.allclose(back, values, atol=16 / 255 / 2 + 1e-6)


def test_resizes_to_the_model_shape(tmp_path):
    Image.fromarray(digit_like(56)).save(tmp_path / "big.png")
    x = read_image(tmp_path / "big.png", (28, 28), 255.0)
    assert x.shape == (1, 28, 28)
    expected = torch.from_numpy(digit_like(28)).float()
    # the stroke lands where it would in a 28x28 drawing
    assert (x[0] - expected).abs().mean() < 10
    assert x[0, 14, 14] > 200 and x[0, 2, 2] < 10


def test_non_square_and_colour_images_become_gray(tmp_path):
    rgb = np.zeros((30, 90, 3), dtype=np.uint8)
    rgb[10:20, 40:50] = (255, 255, 255)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    x = read_image(tmp_path / "wide.png", (8, 8), 16.0)
    assert x.shape == (1, 8, 8)
    assert 0 <= float(x.min()) and float(x.max()) <= 16.0


def test_dark_on_light_is_inverted_automatically(tmp_path):
    Image.fromarray(digit_like(dark_on_light=True)).save(tmp_path / "paper.png")
    Image.fromarray(digit_like()).save(tmp_path / "screen.png")
    paper = read_image(tmp_path / "paper.png", (28, 28), 255.0)
    screen = read_image(tmp_path / "screen.png", (28, 28), 255.0)
    assert torch.equal(paper, screen)
    assert float(paper[0, 0, 0]) == 0.0  # background dark, as in MNIST


@pytest.mark.parametrize("invert, corner", [("no", 255.0), ("yes", 0.0)])
def test_invert_can_be_forced(tmp_path, invert, corner):
    Image.fromarray(digit_like(dark_on_light=True)).save(tmp_path / "paper.png")
    x = read_image(tmp_path / "paper.png", (28, 28), 255.0, invert=invert)
    assert float(x[0, 0, 0]) == corner


def test_light_on_dark_is_kept(tmp_path):
    Image.fromarray(digit_like()).save(tmp_path / "screen.png")
    x = read_image(tmp_path / "screen.png", (28, 28), 255.0)
    assert torch.equal(x[0], torch.from_numpy(digit_like()).float())


def test_bad_invert_value(tmp_path):
    Image.fromarray(digit_like()).save(tmp_path / "x.png")
    with pytest.raises(UserInputError, match="--invert must be auto, yes or no; got 'sometimes'"):
        read_image(tmp_path / "x.png", (28, 28), 255.0, invert="sometimes")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("shopping list")
    with pytest.raises(UserInputError, match=r"notes\.png: not a readable image .*give a PNG or JPEG file"):
        read_image(tmp_path / "notes.png", (28, 28), 255.0)


def test_truncated_image(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "x.png")
    data = (tmp_path / "x.png").read_bytes()
    (tmp_path / "x.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="not a readable image"):
        read_image(tmp_path / "x.png", (28, 28), 255.0)


@pytest.mark.parametrize("name", ["missing.png", "."])
def test_missing_image(tmp_path, name):
    with pytest.raises(UserInputError, match="no such image file"):
        read_image(tmp_path / name, (28, 28), 255.0)


def test_jpeg_is_read(tmp_path):
    Image.fromarray(digit_like()).save(tmp_path / "x.jpg", quality=95)
    x = read_image(tmp_path / "x.jpg", (28, 28), 255.0)
    assert (x[0] - torch.from_numpy(digit_like()).float()).abs().mean() < 8
