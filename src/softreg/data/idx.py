"""Read and write IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is a 4-byte magic number ``00 00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the data in C order, big-endian.
Files may be gzip-compressed; compression is detected from the content (the
gzip magic bytes ``1f 8b``), never from the file name.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softreg.errors import UserInputError

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


def _read_bytes(path: Path) -> bytearray:
    """The whole file, with user-facing errors for the usual ways opening fails."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = bytearray(size)
            n = f.readinto(buf)
            if n != size:  # file shrank while reading
                del buf[n:]
            rest = f.read()  # file grew while reading (or a pipe-like file)
            if rest:
                buf += rest
            return buf
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


def _gunzip(path: Path, raw: bytearray) -> bytes:
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise UserInputError(
            f"{path}: the gzip data is truncated (it ends before the end of the compressed "
            f"stream; {len(raw)} bytes on disk); {_FIX}."
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise UserInputError(f"{path}: corrupt gzip data ({msg}); {_FIX}.") from None


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file (raw or gzip-compressed) into one tensor.

    The tensor has the shape stored in the header and the matching dtype:
    uint8, int8, int16, int32, float32 or float64 (native byte order). Any
    problem with the file raises :class:`UserInputError` naming the file.
    """
    path = Path(path)
    buf: bytes | bytearray = _read_bytes(path)
    if len(buf) == 0:
        raise UserInputError(f"{path} is empty (0 bytes); {_FIX}.")
    compressed = buf[:2] == _GZIP_MAGIC
    where = " after decompression" if compressed else ""
    if compressed:
        buf = _gunzip(path, buf)  # type: ignore[arg-type]
        if len(buf) == 0:
            raise UserInputError(f"{path} holds an empty gzip stream; {_FIX}.")

    if len(buf) < 4:
        raise UserInputError(
            f"{path} is too short for an IDX header ({len(buf)} bytes{where}); {_FIX}."
        )
    if buf[0] != 0 or buf[1] != 0:
        first = " ".join(f"{b:02x}" for b in buf[:4])
        raise UserInputError(
            f"{path} is not an IDX file (it starts with bytes {first}, an IDX file starts with "
            "00 00 <type> <ndim>); give an IDX file such as train-images-idx3-ubyte."
        )
    code, ndim = buf[2], buf[3]
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
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise UserInputError(
            f"{path} is truncated: its IDX header needs {header_len} bytes for {ndim} "
            f"dimensions, the file has {len(buf)}{where}; {_FIX}."
        )
    dims = struct.unpack(f">{ndim}I", bytes(buf[4:header_len]))
    disk_dtype, native_dtype, type_name = IDX_TYPES[code]
    count = 1
    for d in dims:
        count *= d
    expected = count * disk_dtype.itemsize
    actual = len(buf) - header_len
    shape = "x".join(str(d) for d in dims)
    if actual < expected:
        raise UserInputError(
            f"{path} is truncated: the header (shape {shape}, {type_name}) says {expected} data "
            f"bytes are expected, the file has {actual}{where}; {_FIX}."
        )
    if actual > expected:
        raise UserInputError(
            f"{path} has {actual - expected} bytes more than its header (shape {shape}, "
            f"{type_name}) says ({expected} data bytes expected, {actual} found{where}); "
            f"the file is corrupt or not an IDX file; {_FIX}."
        )

    arr = np.frombuffer(buf, dtype=disk_dtype, count=count, offset=header_len)
    if disk_dtype.itemsize > 1 or not arr.flags.writeable:
        arr = arr.astype(native_dtype)  # byte swap (or copy out of read-only bytes)
    return torch.from_numpy(arr.reshape(dims))


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
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    gz.write(header)
                    gz.write(memoryview(payload.reshape(-1).view(np.uint8)))
            else:
                raw.write(header)
                raw.write(memoryview(payload.reshape(-1).view(np.uint8)))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except PermissionError:
        raise UserInputError(
            f"cannot write {path}: permission denied; choose a writable folder."
        ) from None
    except OSError as exc:
        raise UserInputError(
            f"cannot write {path}: {exc.strerror or exc}; check the path and free disk space."
        ) from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return path


class IdxRows:
    """Rows of an IDX file read a few at a time: random access (memory-mapped) for raw files,
    in order (decompressed in chunks) for gzip files. The header is checked against the file size
    (raw files) before any row is read."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                self.compressed = f.read(2) == _GZIP_MAGIC
        except OSError as exc:
            raise UserInputError(f"cannot read {self.path}: {exc.strerror or exc}; {_FIX}.") from None
        with self._open() as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or head[3] == 0:
                raise UserInputError(f"{self.path} is not an IDX file (bad header); give an IDX file such as "
                                     "train-images-idx3-ubyte.")
            ndim = head[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise UserInputError(f"{self.path} is truncated inside its header; {_FIX}.")
        self.dims = struct.unpack(f">{ndim}I", dims_raw)
        self.disk_dtype, self.dtype = IDX_TYPES[head[2]][0], IDX_TYPES[head[2]][1]
        self.offset = 4 + 4 * ndim
        self.n = self.dims[0]
        self.row_shape = tuple(self.dims[1:])
        self.row_items = int(np.prod(self.row_shape)) if self.row_shape else 1
        self.row_bytes = self.row_items * self.disk_dtype.itemsize
        if not self.compressed:
            size = os.path.getsize(self.path)
            if size != self.offset + self.n * self.row_bytes:
                raise UserInputError(f"{self.path}: the header (shape {'x'.join(map(str, self.dims))}) does not "
                                     f"match the file size ({size} bytes); {_FIX}.")

    def _open(self):
        return gzip.open(self.path, "rb") if self.compressed else open(self.path, "rb")

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a raw file, as native-dtype array (stop - start, *row_shape)."""
        data = np.memmap(self.path, dtype=self.disk_dtype, mode="r", offset=self.offset + start * self.row_bytes,
                         shape=(stop - start, *self.row_shape))
        return np.array(data, dtype=self.dtype)

    def chunks(self, size: int):
        """Every row, in order, in arrays of up to ``size`` rows."""
        if not self.compressed:
            for start in range(0, self.n, size):
                yield self.rows(start, min(start + size, self.n))
            return
        with self._open() as f:
            f.seek(self.offset)
            for start in range(0, self.n, size):
                count = min(size, self.n - start)
                raw = f.read(count * self.row_bytes)
                if len(raw) < count * self.row_bytes:
                    raise UserInputError(f"{self.path} is truncated: it ends inside row {start + len(raw) // self.row_bytes}; "
                                         f"{_FIX}.")
                yield np.frombuffer(raw, dtype=self.disk_dtype).reshape(count, *self.row_shape).astype(self.dtype)
