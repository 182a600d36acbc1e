"""Users' tables through Apache Arrow: CSV / TSV (plain, .gz, .zst, .bz2), Parquet, and folders of
such shards, read column-wise in record batches without a Python object per cell.

``TableReader`` opens a file or folder (separator and header detected unless given) and yields
record batches of chosen columns, file by file or by fragments (a file, or a Parquet row group)
for streaming. ``infer_schema`` picks the label and feature columns and their kinds.
``load_table`` builds an in-memory Dataset in two passes: labels (and text columns) first, to fix
the classes, the stratified split and the categories; then the features, each record batch
written straight into its rows of one preallocated matrix (uint8 for pixel tables), so the peak
memory stays near the matrix itself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from softreg.data.columns import MAX_CATEGORIES, Column, TableSchema
from softreg.errors import UserInputError

LABEL_NAMES = ("label", "target", "class", "y")  # picked, case-insensitively, when --label is not given
CSV_SUFFIXES = (".csv", ".tsv", ".tab")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2")
BATCH_ROWS = 65_536  # rows per record batch, at most ...
BATCH_BYTES = 32 << 20  # ... and about this many bytes of values (as float64): wide tables get fewer rows
SAMPLE_BYTES = 1 << 20  # read to detect the separator and the header


def table_format(path: str | Path) -> str | None:
    """'csv' or 'parquet' from a file name (compression suffixes allowed), else None."""
    name = Path(path).name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES) and not Path(path).name.lower().endswith(COMPRESSION_SUFFIXES):
        return "parquet"
    return None


def shard_files(folder: Path) -> list[Path]:
    """The table files of a folder (hidden and underscore files such as _SUCCESS skipped)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise UserInputError(f"cannot list {folder} ({exc.strerror or exc}); check the path.") from None
    return [p for p in entries if p.is_file() and not p.name.startswith((".", "_")) and table_format(p)]


def is_table(path: Path) -> bool:
    return (path.is_file() and table_format(path) is not None) or (path.is_dir() and bool(shard_files(path)))


@dataclass
class Fragment:
    """A piece of a table read as a unit: a whole file, or one row group of a Parquet file."""

    file: Path
    row_group: int | None = None
    rows: int | None = None


class TableReader:
    """A table file or a folder of shards, ready to be read in record batches."""

    def __init__(self, path: str | Path, *, header: bool | None = None, sep: str | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            self.files = shard_files(self.path)
            if not self.files:
                raise UserInputError(f"{self.path}: no .csv / .tsv / .parquet files in this folder; "
                                     "give a table file or a folder of table shards.")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise UserInputError(f"{self.path}: no such file or folder; check the path given to --data.")
        formats = {table_format(f) for f in self.files}
        if None in formats or len(formats) != 1:
            raise UserInputError(f"{self.path}: a table must be all CSV or all Parquet files; found "
                                 f"{', '.join(sorted(str(f) for f in formats))}.")
        self.format = formats.pop()
        self.sep, self.header = sep, header
        if self.format == "csv":
            self._open_csv()
        else:
            self._open_parquet()

    # -- opening ---------------------------------------------------------------------------

    def _open_parquet(self) -> None:
        names = None
        self._row_groups: dict[Path, list[int]] = {}
        for f in self.files:
            pf = self._parquet_file(f)
            these = pf.schema_arrow.names
            if names is None:
                names, self.arrow_schema = these, pf.schema_arrow
            elif these != names:
                raise UserInputError(f"{f}: its columns differ from {self.files[0].name}'s; every shard of a "
                                     "table needs the same columns.")
            md = pf.metadata
            self._row_groups[f] = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
            del pf, md  # a wide table's metadata is large: reopen files as they are read
        self.names = list(names)
        self.types = {n: self.arrow_schema.field(n).type for n in self.names}
        self.declared = self.types

    def _parquet_file(self, f: Path):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(f, pre_buffer=False)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise UserInputError(f"{f}: not a readable Parquet file ({_detail(exc)}); write it again "
                                 "or export the table as CSV.") from None

    def _open_csv(self) -> None:
        first = self.files[0]
        sample = _read_sample(first)
        if not sample.strip():
            raise UserInputError(f"{first}: the file is empty; give a header and at least one row.")
        try:
            text = sample.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
                raise UserInputError(f"{first}: not a text CSV file; save the table as UTF-8 CSV.") from None
            text = sample[: exc.start].decode("utf-8-sig")
        lines = [line for line in text.splitlines() if line.strip()][:50]
        if self.sep is None:
            self.sep = "\t" if first.name.lower().replace(".gz", "").endswith((".tsv", ".tab")) else _sniff(lines)
        if len(self.sep) != 1:
            raise UserInputError(f"--sep must be one character; got {self.sep!r}. Example: --sep ';'.")
        try:
            rows = [row for row in csv.reader(lines, delimiter=self.sep) if row]
        except csv.Error as exc:
            raise UserInputError(f"{first}: malformed CSV ({exc}); check quoting and delimiters (--sep).") from None
        if not rows:
            raise UserInputError(f"{first}: no rows found in the file's first {SAMPLE_BYTES} bytes; give a CSV "
                                 "table with a header and rows.")
        if self.header is None:
            self.header = _looks_like_header(rows)
        if self.header:
            self.names = [c.strip() for c in rows[0]]
            if len(set(self.names)) != len(self.names) or not all(self.names):
                raise UserInputError(f"{first}: the header has empty or repeated column names; name every "
                                     "column once, or pass --no-header.")
        else:
            self.names = [f"c{i + 1}" for i in range(len(rows[0]))]
        import pyarrow.csv as pcsv

        # types from the first block; every numeric column is then read as float64 so that later
        # blocks and files cannot disagree (ints first, 2.5 later)
        probe = self._csv_stream(first, pcsv.ConvertOptions(strings_can_be_null=True), probe=True)
        try:
            batch = probe.read_next_batch()
        except StopIteration:
            batch = None
        schema = probe.schema
        del probe
        import pyarrow as pa

        self.types, self.declared = {}, {}
        for name in self.names:
            t = self.declared[name] = schema.field(name).type
            if pa.types.is_binary(t) or pa.types.is_large_binary(t):
                raise UserInputError(f"{first}: not a text CSV file; save the table as UTF-8 CSV (column "
                                     f"{name!r} is not UTF-8).")
            numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)
            self.types[name] = pa.float64() if numeric else (pa.bool_() if pa.types.is_boolean(t) else pa.string())
        if batch is None or batch.num_rows == 0:
            raise UserInputError(f"{first}: the file has a header but no data rows; add rows.")

    def _csv_stream(self, path: Path, convert, columns: list[str] | None = None, probe: bool = False):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        bad: list = []

        def invalid(row):
            bad.append(row)
            return "error"

        # the probe reads one small block (types); reading proper takes 4 MB blocks on every core
        read = pcsv.ReadOptions(column_names=self.names, skip_rows=1 if self.header else 0,
                                block_size=1 << 20 if probe else 1 << 22, use_threads=not probe)
        parse = pcsv.ParseOptions(delimiter=self.sep, invalid_row_handler=invalid, newlines_in_values=False)
        if columns is not None:
            convert.include_columns = columns
        try:
            stream = pa.input_stream(str(path), compression="detect")
            return _CsvBatches(pcsv.open_csv(stream, read_options=read, parse_options=parse,
                                             convert_options=convert), path, bad, len(self.names), self.header,
                               self.sep)
        except Exception as exc:
            raise _csv_error(exc, path, bad, len(self.names), self.header, self.sep) from None

    # -- reading ---------------------------------------------------------------------------

    def fragments(self, split_row_groups: bool = True) -> list[Fragment]:
        if self.format == "parquet" and split_row_groups:
            out = []
            for f in self.files:
                out += [Fragment(f, g, rows) for g, rows in enumerate(self._row_groups[f])]
            return out
        return [Fragment(f) for f in self.files]

    def batches(self, columns: list[str], fragments: list[Fragment] | None = None,
                batch_rows: int | None = None) -> Iterator:
        """Record batches of ``columns``, fragment after fragment."""
        for frag in fragments if fragments is not None else self.fragments(split_row_groups=False):
            yield from self.read_fragment(frag, columns, batch_rows)

    def read_fragment(self, frag: Fragment, columns: list[str], batch_rows: int | None = None) -> Iterator:
        """Record batches of ``columns`` from one fragment; wide tables come in shorter batches."""
        batch_rows = batch_rows or max(256, min(BATCH_ROWS, BATCH_BYTES // (8 * max(1, len(columns)))))
        if self.format == "parquet":
            pf = self._parquet_file(frag.file)
            groups = None if frag.row_group is None else [frag.row_group]
            try:
                yield from pf.iter_batches(batch_size=batch_rows, columns=columns, row_groups=groups)
            except Exception as exc:
                raise UserInputError(f"{frag.file}: not a readable Parquet file ({_detail(exc)}); write it "
                                     "again or export the table as CSV.") from None
        else:
            import pyarrow.csv as pcsv

            convert = pcsv.ConvertOptions(column_types={c: self.types[c] for c in columns},
                                          strings_can_be_null=True)
            yield from self._csv_stream(frag.file, convert, columns)

    def count_rows(self) -> int:
        if self.format == "parquet":
            return sum(sum(groups) for groups in self._row_groups.values())
        first = self.names[0]
        return sum(b.num_rows for b in self.batches([first]))


class _CsvBatches:
    """Iterate a pyarrow CSV stream, turning its errors into one-line messages."""

    def __init__(self, reader, path, bad, n_columns, header, sep):
        self.reader, self.path, self.bad, self.n_columns, self.header = reader, path, bad, n_columns, header
        self.sep = sep
        self.schema = reader.schema

    def read_next_batch(self):
        try:
            return self.reader.read_next_batch()
        except StopIteration:
            raise
        except Exception as exc:
            raise _csv_error(exc, self.path, self.bad, self.n_columns, self.header, self.sep) from None

    def __iter__(self):
        while True:
            try:
                yield self.read_next_batch()
            except StopIteration:
                return


def _csv_error(exc: Exception, path: Path, bad: list, n_columns: int, header: bool, sep: str = ",") -> UserInputError:
    if bad:
        row = bad[0]
        number = row.number if row.number is not None else _ragged_row(path, sep, n_columns)
        where = f"row {number}" if number is not None else "a row"
        return UserInputError(f"{path}: {where} has {row.actual_columns} fields but the header has "
                              f"{n_columns}; every row needs one value per column.")
    detail = _detail(exc)
    if "UTF8" in detail or "UTF-8" in detail:
        return UserInputError(f"{path}: not a text CSV file; save the table as UTF-8 CSV.")
    if "conversion error" in detail and "invalid value" in detail:
        value = detail.split("invalid value", 1)[1].strip()
        column = _column_of(detail)
        return UserInputError(f"{path}: column {column} holds {value}, not a number, in a column of numbers; "
                              "fix the value, or --drop the column.")
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("pyarrow"):
        return UserInputError(f"cannot read {path} ({exc.strerror or detail}); fix its permissions or copy it "
                              "somewhere readable.")
    return UserInputError(f"{path}: malformed CSV ({detail}); check quoting and delimiters (--sep).")


def _ragged_row(path: Path, sep: str, n_columns: int) -> int | None:
    """The line number of the first row without ``n_columns`` fields (only called on an error)."""
    import pyarrow as pa

    try:
        with pa.input_stream(str(path), compression="detect") as raw:
            lines = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            for number, row in enumerate(csv.reader(lines, delimiter=sep), start=1):
                if row and len(row) != n_columns:
                    return number
    except (OSError, csv.Error):
        return None
    return None


def _column_of(detail: str) -> str:
    if "column #" in detail:
        return "#" + detail.split("column #", 1)[1].split(":", 1)[0]
    return "?"


def _detail(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _read_sample(path: Path) -> bytes:
    import pyarrow as pa

    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            return stream.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file; check the path given to --data.") from None
    except PermissionError:
        raise UserInputError(f"cannot read {path} (Permission denied); fix its permissions or copy it "
                             "somewhere readable.") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {path} ({_detail(exc)}); check that the file is complete.") from None


def _sniff(lines: list[str]) -> str:
    """The separator among , ; tab | that splits the sample lines into the most equal fields."""
    best, best_score = ",", 0
    for sep in (",", "\t", ";", "|"):
        counts = [len(row) for row in csv.reader(lines[:20], delimiter=sep)]
        if counts and min(counts) > 1 and len(set(counts)) == 1 and counts[0] > best_score:
            best, best_score = sep, counts[0]
    return best


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(rows: list[list[str]]) -> bool:
    """A first row is a header when some column holds numbers below it but not in it. Otherwise a
    first row with any number in it is data (names are not numbers), and text over text is taken
    as a header (names are more common than tables of text alone)."""
    first, rest = rows[0], rows[1:]
    for j, cell in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and r[j].strip()]
        if below and not _is_number(cell) and sum(map(_is_number, below)) >= 0.9 * len(below):
            return True
    return not any(_is_number(c) for c in first)


def _is_numeric_type(t) -> bool:
    import pyarrow as pa

    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)
            or pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_duration(t)
            or pa.types.is_null(t))


def _is_text_type(t) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def pick_label(names: list[str], label: str | None, where: str) -> str:
    if label is not None:
        if label in names:
            return label
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise UserInputError(f"{where}: no column named {label!r}; columns are {shown}. Pass one of them with --label.")
    lowered = [n.lower() for n in names]
    for name in LABEL_NAMES:
        if name in lowered:
            return names[lowered.index(name)]
    return names[-1]


def infer_schema(reader: TableReader, label: str | None = None, drop: list[str] | None = None,
                 columns: list[str] | None = None, impute: str = "none") -> TableSchema:
    """The label column and feature columns with their kinds (categories are fitted later)."""
    where = str(reader.path)
    names = reader.names
    if len(names) < 2:
        raise UserInputError(f"{where}: found one column; a table needs features and a label column.")
    label = pick_label(names, label, where)
    for option, given in (("--drop", drop or []), ("--columns", columns or [])):
        unknown = [c for c in given if c not in names]
        if unknown:
            raise UserInputError(f"{where}: {option} names column(s) {', '.join(map(repr, unknown))} that the table "
                                 f"does not have; columns are {', '.join(names[:20])}.")
    features = [n for n in (columns if columns is not None else names) if n != label and n not in (drop or [])]
    if not features:
        raise UserInputError(f"{where}: no feature columns left besides the label {label!r}; keep at least one.")
    cols = []
    for name in features:
        t = reader.declared[name]  # as stored (CSV: as inferred from the first rows)
        if _is_numeric_type(t):
            cols.append(Column(name, "numeric", str(t)))
        elif _is_text_type(t):
            cols.append(Column(name, "categorical", "string"))
        else:
            raise UserInputError(f"{where}: column {name!r} has type {t}, which softreg cannot use as a feature; "
                                 f"leave it out with --drop {name}.")
    return TableSchema(label=label, columns=cols, impute=impute)


def class_names(values: np.ndarray) -> list[str]:
    """Sorted distinct labels; numerically when every label is a number."""
    texts = sorted(set(values.tolist()))
    if all(_is_number(t) for t in texts):
        texts.sort(key=float)
    return texts


def label_arrow(column, where: str, first_row: int = 0):
    """An Arrow label column as stripped Arrow text; a missing label is an error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    empty = pc.or_kleene(pc.is_null(text), pc.equal(text, "")).fill_null(True)
    if pc.any(empty).as_py():
        row = int(np.nonzero(empty.to_numpy(zero_copy_only=False))[0][0])
        raise UserInputError(f"{where}: data row {first_row + row + 1} has no label; fill it in or drop the row.")
    return text


def classes_and_codes(labels, where: str, classes: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Sorted classes (or the given ones) and each row's class index, computed in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if classes is None:
        classes = class_names(np.asarray(pc.unique(labels).to_pylist(), dtype=object))
    index = pc.index_in(labels, value_set=pa.array(classes, type=pa.string()))
    if index.null_count:
        unknown = sorted(set(pc.filter(labels, pc.is_null(index)).to_pylist()))
        shown = ", ".join(repr(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise UserInputError(f"{where}: label(s) {shown} are not among the model's {len(classes)} classes; "
                             "use data labelled like the training data.")
    return classes, index.to_numpy().astype(np.int64)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows), sorted: about ``fraction`` of each class held out (of the whole
    when a class is too rare to split); fixed by ``seed``."""
    n = len(y)
    n_out = int(round(n * fraction))
    if n_out == 0 or n - n_out < 1:
        return np.arange(n), np.arange(0)
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() < 2 or n_out < len(present):
        perm = rng.permutation(n)
        return np.sort(perm[n_out:]), np.sort(perm[:n_out])
    # classes get floor(share), then the rows left over go to the classes with the largest remainders
    share = counts * (n_out / n)
    take = np.floor(share).astype(np.int64)
    extra = n_out - take.sum()
    if extra > 0:
        order = np.argsort(-(share - take), kind="stable")
        take[order[:extra]] += 1
    held = []
    for k in np.nonzero(counts)[0]:
        rows = np.nonzero(y == k)[0]
        held.append(rng.permutation(rows)[: take[k]])
    out = np.sort(np.concatenate(held))
    mask = np.ones(n, bool)
    mask[out] = False
    return np.nonzero(mask)[0], out


def mostly_numbers_check(values, name: str, where: str) -> None:
    """A text column whose values are mostly numbers holds typos, not categories: say where."""
    sample = [v for v in values[:2000] if v is not None and str(v).strip()]
    if not sample:
        return
    bad = [v for v in sample if not _is_number(str(v))]
    if bad and len(bad) <= 0.5 * len(sample):
        row = next(i for i, v in enumerate(values) if v is not None and str(v).strip() and not _is_number(str(v)))
        raise UserInputError(f"{where}: column {name!r}, data row {row + 1} holds {bad[0]!r}, not a number, in a "
                             "column of numbers; fix the value, or --drop the column.")


def check_text_columns(schema: TableSchema, table, where: str) -> None:
    """Before fitting: a text column that is nearly all numbers holds a typo (say which cell)."""
    from softreg.data.columns import _as_text

    for c in schema.columns:
        if c.kind == "categorical":
            mostly_numbers_check(_as_text(table.column(c.name)).to_pylist()[:2000], c.name, where)


def fit_categories(schema: TableSchema, table, where: str) -> None:
    """Set each categorical column's categories from the training rows in ``table``."""
    import pyarrow.compute as pc

    from softreg.data.columns import _as_text

    for c in schema.columns:
        if c.kind != "categorical":
            continue
        values = pc.unique(_as_text(table.column(c.name))).drop_null().to_pylist()
        if len(values) > MAX_CATEGORIES:
            raise UserInputError(f"{where}: text column {c.name!r} has {len(values)} distinct values, too many to "
                                 f"one-hot encode (limit {MAX_CATEGORIES}); leave it out with --drop {c.name}.")
        if table.num_rows >= ID_ROWS and len(values) == table.num_rows:
            raise UserInputError(f"{where}: text column {c.name!r} has a different value in every row (an "
                                 f"identifier?); leave it out with --drop {c.name}.")
        c.categories = sorted(values)


ID_ROWS = 20  # tables at least this long are checked for identifier columns
