"""Tests for softreg.data.idx.files: IDX round trips and every user-facing error."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softreg.data.idx import files as idx_mod
from softreg.data.idx.files import read_idx, write_idx
from softreg.errors import UserInputError

DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]
CODES = {torch.uint8: 0x08, torch.int8: 0x09, torch.int16: 0x0B, torch.int32: 0x0C,
         torch.float32: 0x0D, torch.float64: 0x0E}


def _sample(dtype: torch.dtype, shape=(3, 4, 5)) -> torch.Tensor:
    n = int(np.prod(shape))
    if dtype.is_floating_point:
        t = torch.linspace(-1e3, 1e3, n, dtype=torch.float64).to(dtype)
    else:
        info = torch.iinfo(dtype)
        t = torch.linspace(info.min, info.max, n, dtype=torch.float64).round().to(dtype)
    return t.reshape(shape)


def _raw_idx(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def _no_temp_files(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.startswith(".")]


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("name", ["data.idx", "data.idx.gz"])
def test_round_trip_each_dtype(tmp_path, dtype, name):
    x = _sample(dtype)
    path = write_idx(tmp_path / name, x)
    assert path == tmp_path / name
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    y = read_idx(path)
    assert y.dtype == dtype
    assert y.shape == x.shape
    assert torch.equal(y, x)
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def test_on_disk_layout_is_big_endian_idx(tmp_path, dtype):
    x = _sample(dtype, (2, 3))
    data = write_idx(tmp_path / "x.idx", x).read_bytes()
    assert data[:4] == bytes([0, 0, CODES[dtype], 2])
    assert struct.unpack(">2I", data[4:12]) == (2, 3)
    big = x.numpy().astype(x.numpy().dtype.newbyteorder(">"))
    assert data[12:] == big.tobytes()


def test_reads_mnist_style_file_written_by_hand(tmp_path):
    pixels = bytes(range(2 * 3 * 4))
    (tmp_path / "images").write_bytes(_raw_idx(0x08, (2, 3, 4), pixels))
    x = read_idx(tmp_path / "images")
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 4)
    assert x.flatten().tolist() == list(range(24))
    x[0, 0, 0] = 7  # the tensor is writable and owns its memory


def test_numpy_input_and_scalar_and_empty(tmp_path):
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    assert torch.equal(read_idx(write_idx(tmp_path / "a.idx", arr)), torch.from_numpy(arr))
    assert read_idx(write_idx(tmp_path / "s.idx", np.float32(2.5))).tolist() == [2.5]
    empty = read_idx(write_idx(tmp_path / "e.idx", np.zeros((0, 28, 28), np.uint8)))
    assert empty.shape == (0, 28, 28)


def test_int64_and_bool_are_narrowed(tmp_path):
    y = torch.tensor([0, 9, -3, 2**31 - 1])
    back = read_idx(write_idx(tmp_path / "y.idx", y))
    assert back.dtype == torch.int32 and back.tolist() == y.tolist()
    b = read_idx(write_idx(tmp_path / "b.idx", torch.tensor([True, False])))
    assert b.dtype == torch.uint8 and b.tolist() == [1, 0]


def test_compress_flag_overrides_name(tmp_path):
    x = _sample(torch.uint8)
    gz_named_raw = write_idx(tmp_path / "x.gz", x, compress=False)
    raw_named_gz = write_idx(tmp_path / "x.idx", x, compress=True)
    assert gz_named_raw.read_bytes()[:2] == b"\x00\x00"
    assert raw_named_gz.read_bytes()[:2] == b"\x1f\x8b"
    # content sniffing wins over the file name, both ways
    assert torch.equal(read_idx(gz_named_raw), x)
    assert torch.equal(read_idx(raw_named_gz), x)


def test_write_is_deterministic_and_replaces(tmp_path):
    p = tmp_path / "x.idx.gz"
    write_idx(p, _sample(torch.float32))
    first = p.read_bytes()
    write_idx(p, _sample(torch.float32))
    assert p.read_bytes() == first  # no timestamp in the gzip header
    write_idx(p, torch.zeros(2, dtype=torch.uint8))
    assert read_idx(p).tolist() == [0, 0]
    assert _no_temp_files(tmp_path)


def test_multi_member_gzip(tmp_path):
    blob = _raw_idx(0x08, (4,), bytes([1, 2, 3, 4]))
    (tmp_path / "m.gz").write_bytes(gzip.compress(blob[:6]) + gzip.compress(blob[6:]))
    assert read_idx(tmp_path / "m.gz").tolist() == [1, 2, 3, 4]


@settings(max_examples=40, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_round_trip_property(tmp_path_factory, arr, compress):
    folder = tmp_path_factory.mktemp("prop")
    back = read_idx(write_idx(folder / "p.idx", arr, compress=compress)).numpy()
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)  # NaNs compare equal here


# ------------------------------------------------------------------- read errors


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError, match=r"IDX file not found: .*nope\.idx; check the path"):
        read_idx(tmp_path / "nope.idx")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(UserInputError, match=r"is a folder, not an IDX file"):
        read_idx(tmp_path)


def test_permission_denied(tmp_path, monkeypatch):
    p = tmp_path / "locked.idx"
    write_idx(p, torch.zeros(3, dtype=torch.uint8))

    def deny(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(idx_mod, "open", deny, raising=False)
    with pytest.raises(UserInputError, match=r"cannot read .*locked\.idx: permission denied"):
        read_idx(p)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_permission_denied_real_chmod(tmp_path):
    p = tmp_path / "locked.idx"
    write_idx(p, torch.zeros(3, dtype=torch.uint8))
    p.chmod(0)
    try:
        with pytest.raises(UserInputError, match=r"permission denied"):
            read_idx(p)
    finally:
        p.chmod(0o644)


def test_empty_file(tmp_path):
    (tmp_path / "empty.idx").write_bytes(b"")
    with pytest.raises(UserInputError, match=r"empty\.idx is empty \(0 bytes\); re-download"):
        read_idx(tmp_path / "empty.idx")


def test_empty_gzip_stream(tmp_path):
    (tmp_path / "e.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(UserInputError, match=r"empty gzip stream"):
        read_idx(tmp_path / "e.gz")


def test_truncated_payload_raw(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(_raw_idx(0x08, (10, 28, 28), bytes(1000)))
    with pytest.raises(
        UserInputError,
        match=r"is truncated: the header \(shape 10x28x28, unsigned byte\) says 7840 data "
        r"bytes are expected, the file has 1000; re-download or check the file\.",
    ):
        read_idx(p)


def test_truncated_payload_inside_gzip(tmp_path):
    p = tmp_path / "t.idx.gz"
    p.write_bytes(gzip.compress(_raw_idx(0x0C, (5,), bytes(12))))
    with pytest.raises(
        UserInputError,
        match=r"says 20 data bytes are expected, the file has 12 after decompression",
    ):
        read_idx(p)


def test_truncated_header(tmp_path):
    (tmp_path / "h").write_bytes(b"\x00\x00")
    with pytest.raises(UserInputError, match=r"too short for an IDX header \(2 bytes\)"):
        read_idx(tmp_path / "h")
    (tmp_path / "d").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 5))
    with pytest.raises(UserInputError, match=r"needs 16 bytes for 3 dimensions, the file has 8"):
        read_idx(tmp_path / "d")


def test_truncated_gzip_stream(tmp_path):
    p = tmp_path / "cut.gz"
    full = gzip.compress(_raw_idx(0x08, (1000,), os.urandom(1000)))
    p.write_bytes(full[: len(full) // 2])
    with pytest.raises(UserInputError, match=r"cut\.gz: the gzip data is truncated.*re-download"):
        read_idx(p)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "bad.gz"
    full = bytearray(gzip.compress(_raw_idx(0x08, (1000,), os.urandom(1000))))
    full[-8] ^= 0xFF  # break the CRC32 in the trailer
    p.write_bytes(bytes(full))
    with pytest.raises(UserInputError, match=r"bad\.gz: corrupt gzip data \(.*\); re-download"):
        read_idx(p)
    p.write_bytes(b"\x1f\x8b" + b"garbage, not deflate" * 3)
    with pytest.raises(UserInputError, match=r"corrupt gzip data"):
        read_idx(p)


def test_gz_name_but_not_gzip_and_not_idx(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(
        UserInputError,
        match=r"is not an IDX file \(it starts with bytes 3c 68 74 6d.*train-images-idx3-ubyte\.",
    ):
        read_idx(p)


def test_wrong_magic_inside_gzip(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(b"PK\x03\x04 a zip file"))
    with pytest.raises(UserInputError, match=r"not an IDX file"):
        read_idx(p)


def test_unknown_dtype_code(tmp_path):
    (tmp_path / "u").write_bytes(_raw_idx(0x0A, (2,), bytes(2)))
    with pytest.raises(
        UserInputError, match=r"unknown IDX data type code 0x0A \(known codes: 0x08, 0x09"
    ):
        read_idx(tmp_path / "u")


def test_zero_dimensions(tmp_path):
    (tmp_path / "z").write_bytes(bytes([0, 0, 8, 0]))
    with pytest.raises(UserInputError, match=r"declares 0 dimensions"):
        read_idx(tmp_path / "z")


def test_trailing_bytes(tmp_path):
    (tmp_path / "long").write_bytes(_raw_idx(0x08, (3,), bytes(5)))
    with pytest.raises(UserInputError, match=r"has 2 bytes more than its header .*corrupt"):
        read_idx(tmp_path / "long")


def test_messages_are_one_line(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    with pytest.raises(UserInputError) as info:
        read_idx(p)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ write errors


def test_write_int64_out_of_range(tmp_path):
    with pytest.raises(UserInputError, match=r"values outside the int32 range"):
        write_idx(tmp_path / "y.idx", torch.tensor([2**40]))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("value", [torch.zeros(2, dtype=torch.float16),
                                   np.zeros(2, dtype=np.complex64),
                                   torch.zeros(2, dtype=torch.bfloat16)])
def test_write_unsupported_dtype(tmp_path, value):
    with pytest.raises(UserInputError, match=r"IDX files cannot hold .*; convert"):
        write_idx(tmp_path / "x.idx", value)
    assert not os.listdir(tmp_path)


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(UserInputError, match=r"folder .*nowhere does not exist; create it first"):
        write_idx(tmp_path / "nowhere" / "x.idx", torch.zeros(1, dtype=torch.uint8))


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "keep.idx"
    write_idx(p, torch.ones(4, dtype=torch.uint8))

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(idx_mod.os, "fsync", boom)
    with pytest.raises(UserInputError, match=r"cannot write .*keep\.idx: No space left on device"):
        write_idx(p, torch.zeros(4, dtype=torch.uint8))
    monkeypatch.undo()
    assert read_idx(p).tolist() == [1, 1, 1, 1]
    assert _no_temp_files(tmp_path)
