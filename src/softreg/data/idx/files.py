"""Read and write IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is a 4-byte magic number ``00 00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the data in C order, big-endian.
Files may be gzip-compressed; compression is detected from the content (the
gzip magic bytes ``1f 8b``), never from the file name.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.system.io import atomic_write
from softreg.system.limits import check_allocation

__all__ = ["IDX_TYPES", "read_idx", "write_idx"]

# type code -> (big-endian dtype on disk, native numpy dtype, name)
IDX_TYPES: dict[int, tuple[np.dtype, np.dtype, str]] = {
    0x08: (np.dtype(">u1"), np.dtype(np.uint8), "unsigned byte"),
    0x09: (np.dtype(">i1"), np.dtype(np.int8), "signed byte"),
    0x0B: (np.dtype(">i2"), np.dtype(np.int16), "short"),
    0x0C: (np.dtype(">i4"), np.dtype(np.int32), "int"),
    0x0D: (np.dtype(">f4"), np.dtype(np.float32), "float"),
    0x0E: (np.dtype(">f8"), np.dtype(np.float64), "double"),
}
_CODE_BY_KIND = {(nat.kind, nat.itemsize): code for code, (_, nat, _) in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_FIX = "re-download or check the file"


MAX_NDIM = 16  # IDX data in practice has 1 to 4 dimensions; NumPy stops at 64
_CHUNK = 1 << 20  # bytes inflated or read at a time


def _open(path: Path):
    """Open for reading, with user-facing errors for the usual ways opening fails."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserInputError(
            f"IDX file not found: {path}; check the path (or let softreg download the dataset)."
        ) from None
    except IsADirectoryError:
        raise UserInputError(
            f"{path} is a folder, not an IDX file; give the path of a file inside it."
        ) from None
    except PermissionError:
        raise UserInputError(
            f"cannot read {path}: permission denied; fix its permissions (chmod +r) "
            "or copy it somewhere readable."
        ) from None
    except OSError as exc:
        raise UserInputError(
            f"cannot read {path}: {exc.strerror or exc}; {_FIX}."
        ) from None


def _read_upto(stream, n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end of the stream)."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, _CHUNK))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _header(path: Path, stream, where: str) -> tuple[int, tuple[int, ...], int]:
    """Read and check the magic number and dimensions: (type code, dims, header length)."""
    head = _read_upto(stream, 4)
    if len(head) < 4:
        raise UserInputError(
            f"{path} is too short for an IDX header ({len(head)} bytes{where}); {_FIX}."
        )
    if head[0] != 0 or head[1] != 0:
        first = " ".join(f"{b:02x}" for b in head)
        raise UserInputError(
            f"{path} is not an IDX file (it starts with bytes {first}, an IDX file starts with "
            "00 00 <type> <ndim>); give an IDX file such as train-images-idx3-ubyte."
        )
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise UserInputError(
            f"{path}: unknown IDX data type code 0x{code:02X} (known codes: {known}); "
            "the file is corrupt or not an IDX file."
        )
    if ndim == 0:
        raise UserInputError(
            f"{path}: the IDX header declares 0 dimensions; the file is corrupt, {_FIX}."
        )
    if ndim > MAX_NDIM:
        raise UserInputError(
            f"{path}: the IDX header declares {ndim} dimensions, more than the {MAX_NDIM} softreg "
            f"reads; the file is corrupt or not an IDX file, {_FIX}."
        )
    header_len = 4 + 4 * ndim
    raw_dims = _read_upto(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise UserInputError(
            f"{path} is truncated: its IDX header needs {header_len} bytes for {ndim} "
            f"dimensions, the file has {4 + len(raw_dims)}{where}; {_FIX}."
        )
    return code, struct.unpack(f">{ndim}I", raw_dims), header_len


@contextlib.contextmanager
def _gzip_errors(path: Path, size: int) -> Iterator[None]:
    """Turn gzip / zlib failures while inflating into the one-line errors users see."""
    try:
        yield
    except EOFError:
        raise UserInputError(
            f"{path}: the gzip data is truncated (it ends before the end of the compressed "
            f"stream; {size} bytes on disk); {_FIX}."
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise UserInputError(f"{path}: corrupt gzip data ({msg}); {_FIX}.") from None


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file (raw or gzip-compressed) into one tensor.

    The tensor has the shape stored in the header and the matching dtype:
    uint8, int8, int16, int32, float32 or float64 (native byte order). Any
    problem with the file raises :class:`UserInputError` naming the file.

    Nothing is trusted before it is checked: the first four bytes decide whether
    the file is IDX at all; the header's size is checked against the file's size
    (raw) and against the memory available before anything is allocated; gzip data
    is inflated in bounded chunks that stop one byte past the header's size, so a
    small file that inflates to gigabytes is refused after reading little.
    """
    path = Path(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        compressed = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        if not compressed and size == 0:
            raise UserInputError(f"{path} is empty (0 bytes); {_FIX}.")
        where = " after decompression" if compressed else ""
        with _gzip_errors(path, size):
            stream = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f
            if compressed and not stream.peek(1):
                raise UserInputError(f"{path} holds an empty gzip stream; {_FIX}.")
            code, dims, header_len = _header(path, stream, where)
            disk_dtype, native_dtype, type_name = IDX_TYPES[code]
            count = math.prod(dims)
            expected = count * disk_dtype.itemsize
            shape = "x".join(str(d) for d in dims)
            if not compressed and size - header_len != expected:
                _size_error(path, shape, type_name, expected, size - header_len, where)
            check_allocation(expected, f"{path} (shape {shape}, {type_name})",
                             "the file is corrupt, or use a machine with more memory")
            if compressed:
                # grow as data arrives: memory follows what the file really holds, not its header
                buf = bytearray()
                while len(buf) < expected:
                    part = stream.read(min(expected - len(buf), _CHUNK))
                    if not part:
                        break
                    buf += part
                if len(buf) < expected:
                    _size_error(path, shape, type_name, expected, len(buf), where)
                if stream.read(1):
                    extra = len(_read_upto(stream, _CHUNK)) + 1
                    more = f"at least {extra}" if extra >= _CHUNK else str(extra)
                    _size_error(path, shape, type_name, expected, f"{more} more than that", where)
                arr = np.frombuffer(buf, dtype=disk_dtype, count=count)
            else:
                arr = np.empty(count, dtype=disk_dtype)
                got = f.readinto(memoryview(arr).cast("B"))
                if got != expected:  # the file changed while reading
                    _size_error(path, shape, type_name, expected, got, where)
    if disk_dtype.itemsize > 1:
        arr = arr.byteswap(inplace=True).view(native_dtype)  # in place: no second copy
    return torch.from_numpy(arr.view(native_dtype).reshape(dims))


def _size_error(path: Path, shape: str, type_name: str, expected: int, actual, where: str):
    if isinstance(actual, int) and actual < expected:
        raise UserInputError(
            f"{path} is truncated: the header (shape {shape}, {type_name}) says {expected} data "
            f"bytes are expected, the file has {actual}{where}; {_FIX}."
        )
    extra = actual - expected if isinstance(actual, int) else actual
    raise UserInputError(
        f"{path} has {extra} bytes more than its header (shape {shape}, "
        f"{type_name}) says ({expected} data bytes expected{where}); "
        f"the file is corrupt or not an IDX file; {_FIX}."
    )


def _as_numpy(data: Any) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu()
        if data.dtype == torch.bfloat16:
            raise UserInputError(
                "IDX files cannot hold bfloat16 values; convert the tensor with .float() first."
            )
        return data.numpy()
    return np.asarray(data)


def write_idx(
    path: str | os.PathLike[str],
    data: Any,
    compress: bool | None = None,
) -> Path:
    """Write a tensor or array to an IDX file, atomically; return the path.

    Supported dtypes: uint8, int8, int16, int32, float32, float64; bool is
    stored as uint8 and int64 as int32 when every value fits. The file is
    gzip-compressed when ``compress`` is true, or, with ``compress=None``, when
    the name ends in ``.gz``. The data goes to a temporary file in the same
    folder which then replaces ``path``, so readers never see a partial file.
    """
    path = Path(path)
    arr = _as_numpy(data)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.int64 or arr.dtype == np.uint16 or arr.dtype == np.uint32:
        info = np.iinfo(np.int32)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise UserInputError(
                f"cannot write {path}: {arr.dtype} values outside the int32 range "
                "do not fit an IDX file; scale them or store them as float64."
            )
        arr = arr.astype(np.int32)
    code = _CODE_BY_KIND.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise UserInputError(
            f"cannot write {path}: IDX files cannot hold {arr.dtype} values; convert to "
            "uint8, int8, int16, int32, float32 or float64 first."
        )
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim > 255:
        raise UserInputError(f"cannot write {path}: IDX files hold at most 255 dimensions.")
    if any(d > 0xFFFFFFFF for d in arr.shape):
        raise UserInputError(
            f"cannot write {path}: dimension sizes {arr.shape} exceed the IDX limit of 2**32-1; "
            "split the data into several files."
        )
    disk_dtype = IDX_TYPES[code][0]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=disk_dtype)
    if compress is None:
        compress = path.name.lower().endswith(".gz")

    folder = path.parent
    if not folder.is_dir():
        raise UserInputError(
            f"cannot write {path}: folder {folder} does not exist; create it first."
        )
    data = memoryview(payload.reshape(-1).view(np.uint8))

    def write(raw) -> None:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(header)
                gz.write(data)
        else:
            raw.write(header)
            raw.write(data)

    return atomic_write(path, write, fix="check the path and free disk space")


class IdxRows:
    """Rows of an IDX file read a few at a time (streaming): random access (memory-mapped) for
    raw files, in order (inflated in chunks) for gzip files. The header is checked as
    ``read_idx`` checks it, and against the file size for raw files, before any row is read."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        with _open(self.path) as f:
            self.compressed = f.read(2) == _GZIP_MAGIC
        with self._stream() as stream, _gzip_errors(self.path, os.path.getsize(self.path)):
            code, self.dims, self.offset = _header(self.path, stream, " after decompression" if self.compressed else "")
        self.disk_dtype, self.dtype = IDX_TYPES[code][0], IDX_TYPES[code][1]
        self.n = self.dims[0]
        self.row_shape = tuple(self.dims[1:])
        self.row_items = int(np.prod(self.row_shape)) if self.row_shape else 1
        self.row_bytes = self.row_items * self.disk_dtype.itemsize
        if self.row_items == 0:
            raise UserInputError(f"{self.path}: its rows hold 0 values (shape {'x'.join(map(str, self.dims))}); {_FIX}.")
        if not self.compressed:
            size = os.path.getsize(self.path)
            if size != self.offset + self.n * self.row_bytes:
                raise UserInputError(f"{self.path}: the header (shape {'x'.join(map(str, self.dims))}) does not "
                                     f"match the file size ({size} bytes); {_FIX}.")

    def _stream(self):
        return gzip.open(self.path, "rb") if self.compressed else _open(self.path)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a raw file, as a native-dtype array (stop - start, *row_shape)."""
        data = np.memmap(self.path, dtype=self.disk_dtype, mode="r", offset=self.offset + start * self.row_bytes,
                         shape=(stop - start, *self.row_shape))
        return np.array(data, dtype=self.dtype)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """Every row, in order, in arrays of up to ``size`` rows."""
        if not self.compressed:
            for start in range(0, self.n, size):
                yield self.rows(start, min(start + size, self.n))
            return
        with self._stream() as f, _gzip_errors(self.path, os.path.getsize(self.path)):
            _read_upto(f, self.offset)
            for start in range(0, self.n, size):
                count = min(size, self.n - start)
                raw = _read_upto(f, count * self.row_bytes)
                if len(raw) < count * self.row_bytes:
                    raise UserInputError(f"{self.path} is truncated: it ends inside row "
                                         f"{start + len(raw) // self.row_bytes}; {_FIX}.")
                yield np.frombuffer(raw, dtype=self.disk_dtype).reshape(count, *self.row_shape).astype(self.dtype)
