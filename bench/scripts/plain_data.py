"""What a user's own script does to read the data: the four IDX files with gzip and NumPy
(or scikit-learn's bundled digits, split as softreg splits them). No softreg import."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as an array: magic, one 4-byte size per dimension, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    sys.exit(f"{folder}: no {stem}[.gz]")


def load(spec: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(X_train (n, F) uint8, y_train, X_test, y_test, pixel max) of an IDX folder or ``digits``."""
    if spec == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        X, y = d.images.reshape(len(d.target), -1).astype(np.uint8), d.target
        tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
        return X[tr], y[tr], X[te], y[te], 16.0
    folder = Path(spec)
    out = []
    for split in ("train", "test"):
        images, labels = (read_idx(find(folder, stem)) for stem in NAMES[split])
        out += [images.reshape(len(images), -1), labels.astype(np.int64)]
    return (*out, 255.0)
