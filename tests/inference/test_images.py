"""Images in (softreg.inference.images): safe decoding, the datasets' conventions, empty pictures, PNG out."""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from softreg.errors import UserInputError
from softreg.inference.images import (Convention, convention_for, load_grey, png_bytes, prepare, read_image,
                            write_image)

MNIST = convention_for("mnist", (28, 28), 255.0)


def encode(array: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt, **kwargs)
    return out.getvalue()


def stroke_picture(h: int = 200, w: int = 200, box=(40, 90, 120, 110), dark_on_light: bool = True) -> np.ndarray:
    """(h, w) uint8: a solid bar (top, left, bottom, right) of ink on a plain background."""
    img = np.zeros((h, w), dtype=np.uint8)
    top, left, bottom, right = box
    img[top:bottom, left:right] = 255
    return 255 - img if dark_on_light else img


def ink_box(pixels: torch.Tensor, level: float) -> tuple[int, int, int, int]:
    rows = torch.nonzero(pixels.amax(dim=1) > level).flatten()
    cols = torch.nonzero(pixels.amax(dim=0) > level).flatten()
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def centre_of_mass(pixels: torch.Tensor) -> tuple[float, float]:
    values = pixels.double().numpy()
    rows, cols = np.indices(values.shape)
    return float((rows * values).sum() / values.sum()), float((cols * values).sum() / values.sum())


# ------------------------------------------------------------------ the conventions


def test_a_picture_at_the_model_size_is_taken_as_it_is(tmp_path):
    pixels = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    pixels[0, :], pixels[-1, :], pixels[:, 0], pixels[:, -1] = 0, 0, 0, 0  # dark border: no inversion
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
    assert png_bytes(values, 16.0) == path.read_bytes()


def test_mnist_convention_fits_the_ink_in_20x20_centred_by_mass():
    prepared = prepare(load_grey(encode(stroke_picture())), MNIST)
    pixels = prepared.pixels
    assert pixels.shape == (28, 28) and not prepared.empty
    top, left, bottom, right = ink_box(pixels, 0.5 * 255)
    assert bottom - top == 20  # the bar's longer side fills the 20-pixel box
    assert abs((right - left) - 20 * 20 / 80) <= 1  # aspect kept: 20 wide for 80 tall
    cy, cx = centre_of_mass(pixels)
    assert abs(cy - 13.5) < 0.3 and abs(cx - 13.5) < 0.3
    assert float(pixels.max()) == pytest.approx(255.0, abs=1)


def test_mass_centring_differs_from_box_centring():
    """An L shape: its centre of mass is not its box centre, so the two conventions differ."""
    img = np.full((120, 120), 255, dtype=np.uint8)
    img[10:110, 10:30] = 0
    img[90:110, 10:110] = 0
    grey = load_grey(encode(img))
    by_mass = prepare(grey, MNIST).pixels
    by_box = prepare(grey, Convention((28, 28), 255.0, box=20 / 28, centre="box")).pixels
    assert all(abs(c - 13.5) < 0.3 for c in centre_of_mass(by_mass))
    top, left, bottom, right = ink_box(by_box, 0.5 * 255)
    assert (top + bottom) / 2 == pytest.approx(14, abs=1) and (left + right) / 2 == pytest.approx(14, abs=1)
    assert not torch.allclose(by_mass, by_box, atol=10)


def test_where_and_how_big_the_drawing_is_does_not_matter():
    """The same bar drawn small in a corner, or large in the middle, gives the same input."""
    small = prepare(load_grey(encode(stroke_picture(300, 400, box=(10, 10, 50, 20)))), MNIST).pixels
    large = prepare(load_grey(encode(stroke_picture(200, 200, box=(20, 60, 180, 100)))), MNIST).pixels
    assert (small - large).abs().mean() < 3  # of 255


def test_fashion_convention_uses_the_whole_canvas():
    conv = convention_for("fashion-mnist", (28, 28), 255.0)
    pixels = prepare(load_grey(encode(stroke_picture(box=(50, 20, 150, 180)))), conv).pixels
    top, left, bottom, right = ink_box(pixels, 0.5 * 255)
    assert right - left == 28 and bottom - top == round(28 * 100 / 160)


def test_digits_convention_spans_all_rows_with_values_up_to_16():
    conv = convention_for("digits", (8, 8), 16.0)
    pixels = prepare(load_grey(encode(stroke_picture(box=(30, 80, 170, 120)))), conv).pixels
    assert pixels.shape == (8, 8)
    assert bool((pixels.amax(dim=1) > 4).all())  # every row has ink, as every sklearn digit has
    assert float(pixels.max()) == pytest.approx(16.0, abs=0.01)
    assert float(pixels[:, 0].max()) == 0 and float(pixels[:, -1].max()) == 0  # narrow: centred


def test_resize_squeezes_the_whole_picture():
    prepared = prepare(load_grey(encode(stroke_picture(56, 56, box=(14, 26, 42, 30)))), MNIST, fit="resize")
    expected = torch.from_numpy(stroke_picture(28, 28, box=(7, 13, 21, 15), dark_on_light=False)).float()
    assert (prepared.pixels - expected).abs().mean() < 10


# ------------------------------------------------------------------ colours and transparency


def test_dark_on_light_equals_light_on_dark():
    paper = prepare(load_grey(encode(stroke_picture(dark_on_light=True))), MNIST).pixels
    screen = prepare(load_grey(encode(stroke_picture(dark_on_light=False))), MNIST).pixels
    assert torch.allclose(paper, screen, atol=1e-3)
    assert float(paper[0, 0]) == 0.0


@pytest.mark.parametrize("invert, corner", [("no", 255.0), ("yes", 0.0)])
def test_invert_can_be_forced_at_the_model_size(invert, corner):
    grey = load_grey(encode(stroke_picture(28, 28, box=(5, 12, 23, 16))))
    assert float(prepare(grey, MNIST, invert=invert).pixels[0, 0]) == corner


@pytest.mark.parametrize("ink", [0, 255])
def test_transparent_background_is_the_background(ink):
    """A drawing in black (or white) on a transparent canvas reads like the same drawing on paper."""
    rgba = np.zeros((120, 120, 4), dtype=np.uint8)
    rgba[20:100, 50:65] = (ink, ink, ink, 255)
    reference = prepare(load_grey(encode(stroke_picture(120, 120, box=(20, 50, 100, 65)))), MNIST).pixels
    got = prepare(load_grey(encode(rgba)), MNIST)
    assert not got.empty
    assert torch.allclose(got.pixels, reference, atol=1e-3)


def test_colour_pictures_become_grey():
    rgb = np.full((30, 90, 3), 255, dtype=np.uint8)
    rgb[5:25, 40:50] = (200, 0, 0)  # red ink on white
    grey = load_grey(encode(rgb))
    assert grey.shape == (30, 90)
    assert float(grey[10, 45]) == pytest.approx(0.299 * 200, abs=1.5)  # ITU-R 601 luma
    assert not prepare(grey, MNIST).empty


# ------------------------------------------------------------------ empty pictures


@pytest.mark.parametrize("picture", ["white", "black", "transparent", "faint-noise"])
def test_empty_pictures_are_reported(picture):
    if picture == "transparent":
        data = encode(np.zeros((50, 50, 4), dtype=np.uint8))
    elif picture == "faint-noise":
        noise = np.random.default_rng(0).integers(240, 256, (60, 60)).astype(np.uint8)
        data = encode(noise)
    else:
        data = encode(np.full((60, 60), 255 if picture == "white" else 0, dtype=np.uint8))
    prepared = prepare(load_grey(data), MNIST)
    assert prepared.empty and "empty" in prepared.warnings[0]
    assert float(prepared.pixels.abs().max()) == 0.0


def test_a_blank_picture_at_the_model_size_is_empty_too():
    prepared = prepare(load_grey(encode(np.zeros((28, 28), dtype=np.uint8))), MNIST)
    assert prepared.empty


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt, kwargs", [("JPEG", {"quality": 95}), ("GIF", {}), ("BMP", {}),
                                         ("WEBP", {"lossless": True}), ("PNG", {})])
def test_allowed_formats_decode_alike(fmt, kwargs):
    picture = stroke_picture(64, 64, box=(10, 28, 54, 36))
    got = load_grey(encode(picture, fmt, **kwargs))
    assert got.shape == (64, 64)
    assert np.abs(got - picture).mean() < 4


def test_sixteen_bit_png():
    deep = (stroke_picture(40, 40, box=(5, 15, 35, 25)).astype(np.uint16) * 257)
    out = io.BytesIO()
    Image.fromarray(deep).save(out, format="PNG")
    assert np.abs(load_grey(out.getvalue()) - deep / 257).max() <= 1


def test_palette_png_with_transparency_decodes_without_warnings():
    img = Image.new("P", (40, 40), 0)
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    img.paste(1, (15, 5, 25, 35))
    out = io.BytesIO()
    img.save(out, format="PNG", transparency=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grey = load_grey(out.getvalue())
    assert float(grey[20, 20]) == 0 and float(grey[0, 0]) == 255  # ink black, transparent -> white


def test_exif_rotation_is_applied():
    picture = stroke_picture(40, 80, box=(5, 5, 15, 75))  # a wide bar
    img = Image.fromarray(picture)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif, quality=95)
    assert load_grey(out.getvalue()).shape == (80, 40)


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM", "EPS"])
def test_formats_off_the_allow_list_are_refused(tmp_path, fmt):
    if fmt == "EPS":  # never handed to Ghostscript, whatever the name
        data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    else:
        data = encode(stroke_picture(32, 32, box=(4, 4, 28, 28)), fmt)
    path = tmp_path / "looks-like.png"
    path.write_bytes(data)
    with pytest.raises(UserInputError, match=r"looks-like\.png: not a readable image .*PNG, JPEG, GIF, BMP, WEBP"):
        load_grey(path)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(8000, 7500), (12000, 10000), (100000, 100000)])
def test_huge_pictures_are_refused_before_decoding_and_quietly(width, height, capfd):
    """Over softreg's limit, over Pillow's warning limit, over Pillow's error limit: one message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UserInputError, match="over the limit of 50 Mpixel; give a smaller image"):
            load_grey(png_header_only(width, height))
    assert caught == []
    assert capfd.readouterr().err == ""


def test_pixel_limit_is_configurable():
    data = encode(stroke_picture(100, 100))
    assert load_grey(data, max_pixels=10_000).shape == (100, 100)
    with pytest.raises(UserInputError, match=r"100x100 pixels is over the limit of 0 Mpixel"):
        load_grey(data, max_pixels=9_999)


def test_large_pictures_are_reduced_before_processing():
    grey = load_grey(encode(stroke_picture(3000, 1500, box=(500, 600, 2500, 900)), "JPEG"))
    assert max(grey.shape) <= 1024 and min(grey.shape) >= 375


def test_decoding_leaves_warning_filters_alone():
    before = list(warnings.filters)
    load_grey(encode(stroke_picture()))
    with pytest.raises(UserInputError):
        load_grey(png_header_only(12000, 10000))
    assert warnings.filters == before


def test_decoding_from_many_threads_gives_the_same_pictures():
    pictures = [encode(stroke_picture(box=(20 + i, 30, 150, 60 + i))) for i in range(16)]
    expected = [load_grey(p) for p in pictures]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = load_grey(pictures[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(np.array_equal(results[i], expected[i]) for i in range(16))


# ------------------------------------------------------------------ mistakes


def test_bad_invert_value():
    with pytest.raises(UserInputError, match="^invert must be auto, yes or no; got 'sometimes'"):
        prepare(load_grey(encode(stroke_picture())), MNIST, invert="sometimes")


def test_bad_fit_value():
    with pytest.raises(UserInputError, match="^fit must be auto, dataset or resize; got 'zoom'"):
        prepare(load_grey(encode(stroke_picture())), MNIST, fit="zoom")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("shopping list")
    with pytest.raises(UserInputError, match=r"notes\.png: not a readable image .*give a PNG or JPEG file"):
        load_grey(tmp_path / "notes.png")


def test_truncated_image(tmp_path):
    data = encode(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    with pytest.raises(UserInputError, match="image: not a readable image"):
        load_grey(data[: len(data) // 2])


@pytest.mark.parametrize("name", ["missing.png", "."])
def test_missing_image(tmp_path, name):
    with pytest.raises(UserInputError, match="no such image file"):
        load_grey(tmp_path / name)


def test_damaged_files_fail_only_with_the_one_error(capfd):
    """Seeded mutations of valid files of every allowed format: a picture or UserInputError, quietly."""
    rng = np.random.default_rng(0)
    picture = stroke_picture(48, 40, box=(5, 8, 40, 30))
    seeds = [encode(picture, fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]
    seeds.append(encode(np.dstack([picture] * 3 + [picture]), "PNG"))  # RGBA
    outcomes = {"decoded": 0, "refused": 0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(600):
            data = bytearray(seeds[rng.integers(len(seeds))])
            for _ in range(int(rng.integers(1, 6))):
                kind = rng.integers(3)
                at = int(rng.integers(len(data)))
                if kind == 0:
                    data[at] = int(rng.integers(256))
                elif kind == 1:
                    del data[at:]
                    data += b"\0" if not data else b""
                else:
                    data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
            try:
                grey = load_grey(bytes(data), max_pixels=1_000_000)
                assert grey.ndim == 2 and np.isfinite(grey).all()
                outcomes["decoded"] += 1
            except UserInputError as exc:
                assert "\n" not in str(exc)
                outcomes["refused"] += 1
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0
    assert caught == [] and capfd.readouterr().err == ""
