"""Datasets streamed from disk (``--stream``): tables (CSV / Parquet / shard folders) and IDX files
(svmlight files: softreg.data.svmlight.stream).

``open_stream`` never holds the training split. It reads the labels once (cheap: one column, or
the small IDX label file): the classes and, without a separate test set, the stratified hold-out.
Then one pass over the training rows fits everything the model stores (categories, imputation
values, standardisation statistics). Training and scoring then read batches from disk through
``StreamSource`` (a shuffled piece order and a bounded shuffle buffer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from softreg.data.tables.columns import MAX_CATEGORIES, TableSchema, arrow_numpy, as_text, numeric_values
from softreg.data.shuffle import StreamSource
from softreg.data.tables.columns import ID_ROWS, check_text_columns, infer_schema
from softreg.data.tables.labels import classes_and_codes, label_arrow, stratified_split
from softreg.data.tables.reader import TableReader
from softreg.errors import UserInputError
from softreg.models.preprocess import Moments, Preprocess

IDX_PIECE_ROWS = 8192  # rows per piece of a raw IDX file (pieces are shuffled each epoch)
RESERVOIR_ROWS = 10_000  # rows kept to estimate medians for --impute median


@dataclass
class StreamData:
    """A streamed dataset: sources for the splits, and what the model stores about the data."""

    name: str
    source: str
    classes: list[str]
    train: StreamSource
    test: StreamSource | None
    preprocess: Preprocess
    schema: TableSchema | None = None
    image_shape: tuple[int, ...] | None = None
    pixel_max: float | None = None
    feature_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    index_base: int | None = None  # sparse (svmlight) rows: the file index of feature 0; None: dense

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_features(self) -> int:
        return self.train.n_features

    def validate(self) -> "StreamData":
        if self.n_classes < 2:
            raise UserInputError(f"{self.name}: found {self.n_classes} class; a classifier needs at least two.")
        return self


def open_stream(args, config, progress=False, comm=None) -> StreamData:
    """The streamed dataset that the command line's data arguments (a DataArgs) name; with several
    processes (``comm``), each fits the preprocessing on its share of the pieces and the
    statistics are merged."""
    from softreg.data import BUILTIN
    from softreg.data.svmlight.files import is_svmlight
    from softreg.data.tables.reader import is_table

    kind = config.data.preprocess
    if is_svmlight(args.spec):
        from softreg.data.svmlight.stream import open_svmlight_stream

        for option, value in (("--drop", args.drop), ("--columns", args.columns), ("--header", args.header),
                              ("--sep", args.sep), ("--label", args.label)):
            if value:
                raise UserInputError(f"{option} applies to tables (CSV / Parquet); {args.spec} is an svmlight file. "
                                     "Leave the option out.")
        return open_svmlight_stream(args.spec, preprocess=kind, test=args.test)
    if is_table(Path(args.spec)):
        return open_table_stream(args.spec, preprocess=kind, label=args.label, test=args.test, drop=args.drop,
                                 columns=args.columns, header=args.header, sep=args.sep, impute=config.data.impute,
                                 comm=comm)
    if args.spec in BUILTIN:
        raise UserInputError(f"--stream reads tables and IDX files from disk; {args.spec} is built in. "
                             "Leave out --stream.")
    if args.test or args.drop or args.columns or args.header is not None or args.sep:
        raise UserInputError(f"--test, --drop, --columns, --header and --sep with --stream apply to tables; "
                             f"{args.spec} is not one.")
    return open_idx_stream(args.spec, preprocess=kind, data_dir=args.data_dir, progress=progress, comm=comm)


def open_table_stream(path: str | Path, *, preprocess: str, label: str | None = None, test: str | None = None,
                      drop: list[str] | None = None, columns: list[str] | None = None, header: bool | None = None,
                      sep: str | None = None, impute: str = "none", test_fraction: float = 0.2,
                      seed: int = 0, comm=None) -> StreamData:
    """Stream a table; ``preprocess`` is none or standardize (auto means standardize)."""
    path = Path(path)
    where = str(path)
    reader = TableReader(path, header=header, sep=sep)
    schema = infer_schema(reader, label, drop, columns, impute)
    pieces, labels = _label_pass(reader, schema.label, where)
    classes, codes = classes_and_codes(labels, where)
    del labels
    held = np.zeros(len(codes), dtype=bool)
    if test is None:
        _, test_rows = stratified_split(codes, test_fraction, seed)
        held[test_rows] = True
    kind = "standardize" if preprocess in ("auto", "standardize") else preprocess
    if kind not in ("none", "standardize"):
        raise UserInputError(f"--preprocess {preprocess} needs image data; use standardize or none for tables.")
    moments = _fit_pass(reader, schema, pieces, ~held, where, comm)
    pre = _table_preprocess(schema, moments, kind, int((~held).sum()))
    codes_t = torch.from_numpy(codes)
    train = _table_source(reader, schema, pieces, codes_t, ~held, where)
    if test is not None:
        test_reader = TableReader(test, header=header, sep=sep)
        schema.check_columns(test_reader.names, str(test))
        test_pieces, test_labels = _label_pass(test_reader, schema.label, str(test))
        test_codes = torch.from_numpy(classes_and_codes(test_labels, str(test), classes)[1])
        test_source = _table_source(test_reader, schema, test_pieces, test_codes,
                                    np.ones(len(test_codes), dtype=bool), str(test))
    else:
        test_source = _table_source(reader, schema, pieces, codes_t, held, where) if held.any() else None
    return StreamData(name=path.name, source=str(path.resolve()), classes=classes, train=train, test=test_source,
                      preprocess=pre, schema=schema, feature_names=schema.feature_names()).validate()


def _label_pass(reader: TableReader, label: str, where: str) -> tuple[list[tuple], object]:
    """(pieces as (fragment, first row, rows), every row's label as Arrow text), reading the label
    column only; no Python object per row."""
    import pyarrow as pa

    pieces, parts, offset = [], [], 0
    for frag in reader.fragments():
        start = offset
        for batch in reader.read_fragment(frag, [label]):
            parts.append(label_arrow(batch.column(label), where, offset))
            offset += batch.num_rows
        if offset > start:
            pieces.append((frag, start, offset - start))
    if offset == 0:
        raise UserInputError(f"{where}: the table has no rows; give at least one.")
    return pieces, pa.chunked_array(parts, type=pa.string())


def _numeric_block(batch, numeric, where: str, first_row: int) -> np.ndarray:
    """The numeric feature columns of a batch as one (n, k) array (uint8 when they all are)."""
    if all(c.type == "uint8" for c in numeric):
        return np.column_stack([arrow_numpy(batch.column(c.name)) for c in numeric])
    return np.column_stack([numeric_values(batch.column(c.name), c, where, first_row).astype(np.float64)
                            for c in numeric])


def _fit_pass(reader: TableReader, schema: TableSchema, pieces, train_mask: np.ndarray, where: str,
              comm=None) -> Moments:
    """One pass over the training rows: categories, imputation values and the numeric columns'
    moments (missing values left out). Sets them on ``schema``; returns the moments. With several
    processes each reads every world-th piece and the results are merged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    numeric = [c for c in schema.columns if c.kind == "numeric"]
    text = [c for c in schema.columns if c.kind == "categorical"]
    moments = Moments(len(numeric))
    seen: dict[str, set] = {c.name: set() for c in text}
    reservoir: list[np.ndarray] = []
    kept = 0
    first_missing: dict[str, int] = {}
    rng = np.random.default_rng(0)
    names = [c.name for c in schema.columns]
    checked = False
    world = 1 if comm is None else comm.world
    mine_pieces = pieces if world == 1 else pieces[comm.rank :: world]
    for frag, start, _ in mine_pieces:
        row = start
        for batch in reader.read_fragment(frag, names):
            n = batch.num_rows
            mine = train_mask[row : row + n]
            if not checked and text:
                check_text_columns(schema, batch, where)
                checked = True
            if numeric:
                block = _numeric_block(batch, numeric, where, row)[mine]
                moments.update(torch.from_numpy(block))
                if block.dtype.kind == "f":
                    for j in np.nonzero(np.isnan(block).any(axis=0))[0]:
                        first = int(np.nonzero(np.isnan(block[:, j]))[0][0])
                        first_missing.setdefault(numeric[j].name, row + int(np.nonzero(mine)[0][first]))
                if schema.impute == "median" and block.shape[0]:
                    reservoir, kept = _reservoir(reservoir, kept, block, rng)
            for c in text:
                values = pc.unique(as_text(batch.column(c.name)).filter(pa.array(mine))).drop_null().to_pylist()
                seen[c.name].update(values)
                if len(seen[c.name]) > MAX_CATEGORIES:
                    raise UserInputError(f"{where}: text column {c.name!r} has over {MAX_CATEGORIES} distinct "
                                         f"values, too many to one-hot encode; leave it out with --drop {c.name}.")
            row += n
    if world > 1:
        moments = comm.merge_moments(moments)
        shared = comm.gather(({k: sorted(v) for k, v in seen.items()}, first_missing,
                              np.concatenate(reservoir) if reservoir else None))
        seen = {c.name: set().union(*(part[0][c.name] for part in shared)) for c in text}
        first_missing = {}
        for _, missing, _ in shared:
            for name, row in missing.items():
                first_missing[name] = min(row, first_missing.get(name, row))
        samples = [part[2] for part in shared if part[2] is not None]
        reservoir = [np.concatenate(samples)] if samples else []
    n_train = int(train_mask.sum())
    for c in text:
        if n_train >= ID_ROWS and len(seen[c.name]) == n_train:
            raise UserInputError(f"{where}: text column {c.name!r} has a different value in every row (an "
                                 f"identifier?); leave it out with --drop {c.name}.")
        c.categories = sorted(seen[c.name])
    if first_missing and schema.impute == "none":
        name, row = min(first_missing.items(), key=lambda item: item[1])
        raise UserInputError(f"{where}: column {name!r} has missing values (first in data row {row + 1}); "
                             "fill them, drop the rows, or add --impute mean (or median, zero).")
    sample = np.concatenate(reservoir) if reservoir else None
    for j, c in enumerate(numeric):
        if c.name in first_missing:
            if schema.impute == "zero":
                c.fill = 0.0
            elif schema.impute == "mean":
                c.fill = float(moments.mean[j])
            else:
                known = sample[:, j][~np.isnan(sample[:, j])]
                c.fill = float(np.median(known)) if known.size else 0.0
    return moments


def _reservoir(parts: list[np.ndarray], kept: int, block: np.ndarray, rng) -> tuple[list[np.ndarray], int]:
    """Keep a uniform sample of at most RESERVOIR_ROWS rows (for medians of long streams)."""
    current = np.concatenate(parts + [block]) if parts else block
    kept += block.shape[0]
    if current.shape[0] > RESERVOIR_ROWS:
        current = current[rng.choice(current.shape[0], RESERVOIR_ROWS, replace=False)]
    return [current], kept


def _table_preprocess(schema: TableSchema, moments: Moments, kind: str, n_train: int) -> Preprocess:
    pre = Preprocess(schema.n_features, kind)
    if kind != "standardize":
        return pre
    full = Moments(schema.n_features)
    at, j = 0, 0
    index = []
    for c in schema.columns:
        if c.kind == "numeric":
            index.append((at, j))
            j += 1
        at += c.width
    for at, j in index:
        full.count[at], full.mean[at], full.m2[at] = moments.count[j], moments.mean[j], moments.m2[j]
    if schema.impute != "none":  # missing entries get the fill value: they count, at no spread
        for (at, j), c in zip(index, [c for c in schema.columns if c.kind == "numeric"]):
            if c.fill is not None:
                missing = n_train - moments.count[j]
                delta = c.fill - full.mean[at]
                total = full.count[at] + missing
                full.m2[at] = full.m2[at] + delta * delta * full.count[at] * missing / total.clamp(min=1)
                full.mean[at] = full.mean[at] + delta * missing / total.clamp(min=1)
                full.count[at] = total
    return Preprocess.from_moments(full, schema.unscaled())


def _table_source(reader: TableReader, schema: TableSchema, pieces, codes: torch.Tensor, mask: np.ndarray,
                  where: str) -> StreamSource:
    names = [c.name for c in schema.columns]
    check = schema.impute == "none"

    def read(piece):
        frag, row, _ = piece
        for batch in reader.read_fragment(frag, names):
            n = batch.num_rows
            mine = mask[row : row + n]
            if mine.any():
                X = schema.encode(batch, where=where, first_row=row)
                if check and X.dtype.kind == "f" and np.isnan(X).any():
                    raise UserInputError(f"{where}: missing values appeared in data rows {row + 1}-{row + n}; "
                                         "add --impute mean (or median, zero).")
                rows = torch.from_numpy(np.nonzero(mine)[0]) if not mine.all() else None
                X_t, y_t = torch.from_numpy(X), codes[row : row + n]
                yield (X_t, y_t) if rows is None else (X_t[rows], y_t[rows])
            row += n

    pieces = [p for p in pieces if mask[p[1] : p[1] + p[2]].any()]
    itemsize = schema.input_dtype().itemsize
    return StreamSource(pieces, read, int(mask.sum()), schema.n_features, schema.n_features * itemsize)


# -- IDX -----------------------------------------------------------------------------------------


def open_idx_stream(spec: str, *, preprocess: str, data_dir: str | None = None, download: bool = True,
                    progress=False, comm=None) -> StreamData:
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
        world = 1 if comm is None else comm.world
        for k, chunk in enumerate(images.chunks(IDX_PIECE_ROWS)):
            if k % world == (0 if comm is None else comm.rank):  # this process's share of the rows
                moments.update(torch.from_numpy(chunk))
        pre = Preprocess.from_moments(moments, merge=comm.merge_moments if world > 1 else None)
    else:
        pre = Preprocess.fit_chunks(kind, [], images.row_items, pixel_max)
    train = _idx_source(images, labels)
    test = None
    if found["test_images"] is not None and found["test_labels"] is not None:
        test_images, test_labels = split(found["test_images"], found["test_labels"])
        test = _idx_source(test_images, test_labels)
    return StreamData(name=name, source=str(folder), classes=classes, train=train, test=test, preprocess=pre,
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
