"""IDX files streamed from disk (``--stream``): raw files in shuffled pieces of rows, gzip files in order."""

from __future__ import annotations

import numpy as np
import torch

from softreg.data.base import StreamData
from softreg.data.shuffle import StreamSource
from softreg.errors import UserInputError
from softreg.models.preprocess import Moments, Preprocess
from softreg.system.processes import SINGLE, Comm

IDX_PIECE_ROWS = 8192  # rows per piece of a raw IDX file (pieces are shuffled each epoch)


def open_idx_stream(spec: str, *, preprocess: str, data_dir: str | None = None, download: bool = True,
                    progress=False, comm: Comm = SINGLE) -> StreamData:
    """Stream a named IDX dataset or an IDX folder; raw files are read in shuffled pieces, gzip
    files in order (the shuffle buffer alone mixes them)."""
    from softreg.data.idx.catalog import find_idx_files, idx_location
    from softreg.data.idx.files import IdxRows, read_idx

    folder, name, classes = idx_location(spec, data_dir, download, progress)
    found = find_idx_files(folder)
    if found["train_images"] is None or found["train_labels"] is None:
        raise UserInputError(f"{folder}: no train-images / train-labels IDX files; give a folder with both.")

    def split(images_path, labels_path) -> tuple[IdxRows, torch.Tensor]:
        images, labels = IdxRows(images_path), read_idx(labels_path).to(torch.int64).reshape(-1)
        if images.n != labels.shape[0]:
            raise UserInputError(f"{images_path}: {images.n} images but {labels.shape[0]} labels in "
                                 f"{labels_path}; give images and labels from the same set.")
        return images, labels

    images, labels = split(found["train_images"], found["train_labels"])
    n_classes = int(labels.max()) + 1 if labels.numel() else 0
    classes = classes or [str(k) for k in range(n_classes)]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        raise UserInputError(f"{found['train_labels']}: labels outside [0, {len(classes) - 1}]; fix the labels "
                             "or the class list.")
    pixel_max = float(np.iinfo(images.dtype).max) if images.dtype.kind == "u" else None
    kind = ("pixels" if pixel_max else "standardize") if preprocess == "auto" else preprocess
    if kind == "standardize":
        moments = Moments(images.row_items)
        for k, chunk in enumerate(images.chunks(IDX_PIECE_ROWS)):
            if k % comm.world == comm.rank:  # this process's share of the rows
                moments.update(torch.from_numpy(chunk))
        pre = Preprocess.from_moments(moments, merge=comm.merge_moments)
    else:
        pre = Preprocess.fit_chunks(kind, [], images.row_items, pixel_max)
    train = _idx_source(images, labels)
    test = None
    if found["test_images"] is not None and found["test_labels"] is not None:
        test_images, test_labels = split(found["test_images"], found["test_labels"])
        test = _idx_source(test_images, test_labels)
    return StreamData(name=name, origin=str(folder), classes=classes, train=train, test=test, preprocess=pre,
                      image_shape=images.row_shape, pixel_max=pixel_max).validate()


def _idx_source(images, labels: torch.Tensor) -> StreamSource:
    if images.compressed:
        pieces = [(0, images.n)]

        def read(piece):
            start = 0
            for chunk in images.chunks(IDX_PIECE_ROWS):
                yield torch.from_numpy(chunk), labels[start : start + chunk.shape[0]]
                start += chunk.shape[0]
    else:
        pieces = [(a, min(a + IDX_PIECE_ROWS, images.n)) for a in range(0, images.n, IDX_PIECE_ROWS)]

        def read(piece):
            a, b = piece
            yield torch.from_numpy(images.rows(a, b)), labels[a:b]

    return StreamSource(pieces, read, images.n, images.row_items, images.row_bytes, ordered=images.compressed)
