"""svmlight / LIBSVM files streamed from disk (``softreg train --data file.svm --stream``).

Why svmlight text, read in byte ranges: it is the format large sparse classification sets come
in (LIBSVM's collection, the output of hashing pipelines), a plain file can be cut at any line
break, and scikit-learn parses a range of lines fast; so the pieces of an epoch are ~4 MB byte
ranges read in a shuffled order, through the same bounded shuffle buffer as tables
(softreg.data.shuffle), and no step ever holds more than a buffer of rows. A compressed file
(.gz, .bz2) cannot be cut: it is one piece read in order, and the buffer alone shuffles.

Opening a file reads it once for the labels, the feature numbering and each piece's rows
(classes, the stratified test split and the index base are fixed from them, as in memory),
then once more over the training rows for the scaling statistics when the preprocessing asks
for them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from softreg.models.sparse import from_scipy, sparse_preprocess
from softreg.data.svmlight.files import class_name, line_problem, rebase
from softreg.errors import UserInputError
from softreg.settings import spell

PIECE_BYTES = 4 << 20  # a piece of a plain file: about this many bytes, cut after a line break


def _open(path: Path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def _compressed(path: Path) -> bool:
    return path.name.lower().endswith((".gz", ".bz2"))


def _pieces(path: Path) -> list[tuple[int, int]]:
    """Byte ranges [start, stop) of a plain file, each ending after a line break (or at the end)."""
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as f:
        while bounds[-1] + PIECE_BYTES < size:
            f.seek(bounds[-1] + PIECE_BYTES)
            f.readline()
            if f.tell() >= size:
                break
            bounds.append(f.tell())
    return list(zip(bounds, bounds[1:] + [size]))


def _blocks(path: Path, piece: tuple[int, int] | None):
    """The text of a piece, or (compressed files) of the whole file in blocks cut after line breaks."""
    if piece is not None:
        with open(path, "rb") as f:
            f.seek(piece[0])
            yield f.read(piece[1] - piece[0])
        return
    rest = b""
    with _open(path) as f:
        while True:
            chunk = f.read(PIECE_BYTES)
            if not chunk:
                break
            text = rest + chunk
            cut = text.rfind(b"\n") + 1
            if cut:
                yield text[:cut]
                rest = text[cut:]
            else:
                rest = text
    if rest:
        yield rest


def _parse(text: bytes, path: Path, first_line: int, width: int | None = None):
    """(SciPy CSR with the file's raw indices, labels) of a block of lines."""
    from sklearn.datasets import load_svmlight_file

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_svmlight_file(io.BytesIO(text), n_features=width, zero_based=True, dtype=np.float32)
    except (ValueError, RuntimeError) as exc:
        for k, line in enumerate(text.decode("utf-8", "replace").splitlines()):
            why = line_problem(line)
            if why:
                raise UserInputError(f"{path}: not a valid svmlight / LIBSVM file (line {first_line + k}: {why}); "
                                     "each line must read '<label> <index>:<value> ...' with increasing integer "
                                     "indices, e.g. '1 3:0.5 17:2'.") from None
        raise UserInputError(f"{path}: not a valid svmlight / LIBSVM file ({' '.join(str(exc).split())[:160]}); "
                             "each line must read '<label> <index>:<value> ...'.") from None


class SvmlightFile:
    """One svmlight file cut into pieces, with what a first pass learnt: each piece's first line
    and rows, every row's label, and the smallest and largest feature index."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserInputError(f"{self.path}: no such svmlight file; give the path of a .svm file.")
        self.ordered = _compressed(self.path)
        ranges = [None] if self.ordered else _pieces(self.path)
        self.pieces: list[tuple] = []  # (byte range or None, first line, first row, rows)
        labels, lo, hi, line, row, nnz = [], None, -1, 1, 0, 0
        for piece in ranges:
            start_line, start_row = line, row
            for text in _blocks(self.path, piece):
                X, y = _parse(text, self.path, line)
                labels.append(y)
                if X.nnz:
                    lo = int(X.indices.min()) if lo is None else min(lo, int(X.indices.min()))
                    hi = max(hi, int(X.indices.max()))
                line += text.count(b"\n")
                row += X.shape[0]
                nnz += X.nnz
            self.pieces.append((piece, start_line, start_row, row - start_row))
        self.labels = np.concatenate(labels) if labels else np.zeros(0)
        self.lowest, self.highest = lo, hi
        self.n_rows, self.nnz = row, nnz

    def blocks(self, piece: tuple, index_base: int, width: int):
        """(CSR tensor (n, width) of features counted from 0, first row) of each block of a piece."""
        byte_range, line, row, _ = piece
        for text in _blocks(self.path, byte_range):
            X, _ = _parse(text, self.path, line, width + index_base)
            yield from_scipy(rebase(X, index_base, width, self.path)), row
            line += text.count(b"\n")
            row += X.shape[0]


def open_svmlight_stream(path: str | Path, *, preprocess: str, test: str | Path | None = None,
                         test_fraction: float = 0.2, seed: int = 0):
    """A StreamData over an svmlight file (and its test file): see the module docstring."""
    from softreg.data.base import StreamData
    from softreg.data.split import stratified_split
    from softreg.models.preprocess import Moments, Preprocess

    train_file = SvmlightFile(path)
    if train_file.n_rows == 0:
        raise UserInputError(f"{path}: the file has no samples; give at least one line '<label> <index>:<value> ...'.")
    test_file = SvmlightFile(test) if test is not None else None
    files = [f for f in (train_file, test_file) if f is not None]
    base = 0 if any(f.lowest == 0 for f in files) else 1
    width = max(max(f.highest for f in files) + 1 - base, 0)
    values = np.unique(train_file.labels)
    classes = [class_name(v) for v in values]
    codes = torch.from_numpy(np.searchsorted(values, train_file.labels).astype(np.int64))
    held = np.zeros(train_file.n_rows, dtype=bool)
    if test is None:
        held[stratified_split(codes.numpy(), test_fraction, seed)[1]] = True
    kind = sparse_preprocess(preprocess)
    if kind not in ("none", "scale"):
        raise UserInputError(f"{spell('preprocess', preprocess)} needs image data; use standardize (which scales sparse "
                             "features without centring them) or none for svmlight files.")
    source = _source(train_file, codes, ~held, base, width)
    if kind == "scale":
        moments = Moments(width)
        for batch in source.chunks(1 << 16):
            moments.update(batch.X)
        pre = Preprocess.from_moments(moments, centre=False)
    else:
        pre = Preprocess(width, "none")
    if test_file is not None:
        unknown = np.setdiff1d(test_file.labels, values)
        if unknown.size:
            raise UserInputError(f"{test}: label(s) {', '.join(class_name(v) for v in unknown[:5])} do not occur in "
                                 f"{Path(path).name}; use a test file labelled like the training file.")
        test_codes = torch.from_numpy(np.searchsorted(values, test_file.labels).astype(np.int64))
        test_source = _source(test_file, test_codes, np.ones(test_file.n_rows, dtype=bool), base, width)
    else:
        test_source = _source(train_file, codes, held, base, width) if held.any() else None
    notes = [f"test split: {test}"] if test is not None else []
    return StreamData(name=Path(path).name, origin=str(Path(path).resolve()), classes=classes, train=source,
                      test=test_source, preprocess=pre, notes=notes, index_base=base).validate()


def _source(file: SvmlightFile, codes: torch.Tensor, mask: np.ndarray, base: int, width: int):
    """A StreamSource over the rows of ``file`` that ``mask`` keeps."""
    from softreg.data.shuffle import StreamSource
    from softreg.models.sparse import take_rows

    def read(piece):
        for X, row in file.blocks(piece, base, width):
            n = X.shape[0]
            mine = mask[row : row + n]
            if mine.all():
                yield X, codes[row : row + n]
            elif mine.any():
                rows = torch.from_numpy(np.nonzero(mine)[0])
                yield take_rows(X, rows), codes[row : row + n][rows]

    pieces = [p for p in file.pieces if mask[p[2] : p[2] + p[3]].any()]
    row_bytes = 12 * max(1, file.nnz // max(1, file.n_rows))  # float32 value + int64 index per entry
    return StreamSource(pieces, read, int(mask.sum()), width, row_bytes, ordered=file.ordered, sparse=True)
