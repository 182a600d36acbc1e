"""Write Fashion-MNIST as tables for the table and streaming benchmarks (never committed).

    python bench/make_tables.py --out /tmp/fm-tables [--copies 40] [--rows-per-file 100000]

writes, from the IDX files (Debian's dataset-fashion-mnist, or --data):
  train.parquet, train.csv, test.parquet, test.csv       the 60k / 10k images as label + 784 columns
  big/part-00000.parquet ...                             (with --copies K) K randomly shifted copies
                                                          of the training images, shuffled, in shards

A shifted copy moves half of the images by one pixel up, down, left or right (zeros fill in), a
standard way to make more training images that stay Fashion-MNIST-like (a linear model trained on
copies all shifted by up to two pixels loses several points of accuracy on the unshifted test images). 40 copies are
2.4 million rows: 1.9 GB of pixels, about 7.5 GB as float32.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from softreg.data import load_dataset


def to_table(pixels: np.ndarray, labels: np.ndarray) -> pa.Table:
    """(n, 28, 28) uint8 and (n,) labels -> a table: label, p0 ... p783 (uint8 columns)."""
    flat = pixels.reshape(len(pixels), -1)
    columns = [pa.array(labels.astype(np.int64))] + [pa.array(flat[:, j]) for j in range(flat.shape[1])]
    return pa.table(columns, names=["label"] + [f"p{j}" for j in range(flat.shape[1])])


def shifted(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half the images as they are, the other half moved by one pixel up, down, left or right
    (zeros fill in)."""
    out = pixels.copy()
    n = len(pixels)
    move = rng.integers(0, 8, n)  # 0..3: one of the four moves; 4..7: unchanged
    out[move == 0, :-1, :], out[move == 0, -1, :] = pixels[move == 0, 1:, :], 0  # up
    out[move == 1, 1:, :], out[move == 1, 0, :] = pixels[move == 1, :-1, :], 0  # down
    out[move == 2, :, :-1], out[move == 2, :, -1] = pixels[move == 2, :, 1:], 0  # left
    out[move == 3, :, 1:], out[move == 3, :, 0] = pixels[move == 3, :, :-1], 0  # right
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--copies", type=int, default=0, help="shifted copies of the training set for big/")
    parser.add_argument("--rows-per-file", type=int, default=100_000)
    parser.add_argument("--csv", action="store_true", help="also write the big table as CSV shards")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.data)
    train_x, train_y = data.train.X.numpy(), data.train.y.numpy()
    tic = time.perf_counter()
    for name, x, y in (("train", train_x, train_y), ("test", data.test.X.numpy(), data.test.y.numpy())):
        table = to_table(x, y)
        pq.write_table(table, args.out / f"{name}.parquet", row_group_size=20_000)
        pcsv.write_csv(table, args.out / f"{name}.csv")
    print(f"wrote train/test .parquet and .csv in {time.perf_counter() - tic:.1f} s")
    if args.copies:
        big = args.out / "big"
        big.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        pending_x, pending_y, part = [], [], 0
        for copy in range(args.copies):
            order = rng.permutation(len(train_y))
            pending_x.append(shifted(train_x[order], rng))
            pending_y.append(train_y[order])
            rows = sum(len(p) for p in pending_y)
            while rows >= args.rows_per_file or (copy == args.copies - 1 and rows):
                x, y = np.concatenate(pending_x), np.concatenate(pending_y)
                take = min(args.rows_per_file, len(y))
                table = to_table(x[:take], y[:take])
                pq.write_table(table, big / f"part-{part:05d}.parquet", row_group_size=20_000)
                if args.csv:
                    pcsv.write_csv(table, big / f"part-{part:05d}.csv")
                part += 1
                pending_x, pending_y = [x[take:]], [y[take:]]
                rows = len(y) - take
        print(f"wrote {part} shards of {args.copies * len(train_y)} rows to {big} "
              f"in {time.perf_counter() - tic:.1f} s")


if __name__ == "__main__":
    main()
