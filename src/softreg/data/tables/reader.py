"""Users' tables through Apache Arrow: CSV / TSV (plain, .gz, .zst, .bz2), Parquet, and folders of
such shards, read column-wise in record batches without a Python object per cell.

``TableReader`` opens a file or folder (separator and header detected unless given: see
softreg.data.tables.csvfile) and yields record batches of chosen columns, file by file or by fragments
(a file, or a Parquet row group) for streaming. softreg.data.tables.columns infers and fits the schema,
softreg.data.tables.labels codes the labels, softreg.data.tables.memory loads a table into memory.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from softreg.data.tables.csvfile import SAMPLE_BYTES, csv_error, detail, looks_like_header, read_sample, sniff
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.system.storage import Location, locate, not_found

CSV_SUFFIXES = (".csv", ".tsv", ".tab")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2")
BATCH_ROWS = 65_536  # rows per record batch, at most ...
BATCH_BYTES = 32 << 20  # ... and about this many bytes of values (as float64): wide tables get fewer rows


def table_format(path: str | Path | Location) -> str | None:
    """'csv' or 'parquet' from a file name (compression suffixes allowed), else None."""
    full = (Path(path).name if isinstance(path, str) else path.name).lower()
    name = full
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES) and not full.endswith(COMPRESSION_SUFFIXES):
        return "parquet"
    return None


def shard_files(folder: Location) -> list[Location]:
    """The table files of a folder (hidden and underscore files such as _SUCCESS skipped)."""
    return [p for p in folder.children() if not p.name.startswith((".", "_")) and table_format(p) and p.is_file()]


@dataclass
class Fragment:
    """A piece of a table read as a unit: a whole file, or one row group of a Parquet file."""

    file: Location
    row_group: int | None = None
    rows: int | None = None


class TableReader:
    """A table file or a folder of shards, ready to be read in record batches."""

    def __init__(self, path: str | Path | Location, *, header: bool | None = None, sep: str | None = None):
        self.path = locate(path)
        self._last = threading.local()  # per thread, the ParquetFile read last: each footer parsed once a pass
        if self.path.is_dir():
            self.files = shard_files(self.path)
            if not self.files:
                raise UserInputError(f"{self.path}: no .csv / .tsv / .parquet files in this folder; "
                                     "give a table file or a folder of table shards.")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise not_found(str(self.path))
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
        self._row_groups: dict[Location, list[int]] = {}
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
            del pf, md  # a wide table's metadata is large: only the file being read stays open
        self.names = list(names)
        self.types = {n: self.arrow_schema.field(n).type for n in self.names}
        self.declared = self.types

    def _parquet_file(self, f: Location):
        """``f`` opened, its footer parsed: once for all its row groups read in a row by one thread
        (parsing a large file's footer for every row group made a pass quadratic in its size)."""
        import pyarrow.parquet as pq

        last = getattr(self._last, "file", None)
        if last is not None and last[0] == f:
            return last[1]
        self._last.file = None
        try:
            pf = pq.ParquetFile(f.open_file(), pre_buffer=f.remote)  # remote: fewer, coalesced reads
        except UserInputError:
            raise
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise UserInputError(f"{f}: not a readable Parquet file ({detail(exc)}); write it again "
                                 "or export the table as CSV.") from None
        self._last.file = (f, pf)
        return pf

    def _open_csv(self) -> None:
        first = self.files[0]
        sample = read_sample(first)
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
            self.sep = "\t" if first.name.lower().replace(".gz", "").endswith((".tsv", ".tab")) else sniff(lines)
        if len(self.sep) != 1:
            raise UserInputError(f"{spell('sep')} must be one character; got {self.sep!r}. Example: {spell('sep', ';')}.")
        try:
            rows = [row for row in csv.reader(lines, delimiter=self.sep) if row]
        except csv.Error as exc:
            raise UserInputError(f"{first}: malformed CSV ({exc}); check quoting and delimiters ({spell('sep')}).") from None
        if not rows:
            raise UserInputError(f"{first}: no rows found in the file's first {SAMPLE_BYTES} bytes; give a CSV "
                                 "table with a header and rows.")
        if self.header is None:
            self.header = looks_like_header(rows)
        if self.header:
            self.names = [c.strip() for c in rows[0]]
            if len(set(self.names)) != len(self.names) or not all(self.names):
                raise UserInputError(f"{first}: the header has empty or repeated column names; name every "
                                     f"column once, or pass {spell('header', False)}.")
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

    def _csv_stream(self, path: Location, convert, columns: list[str] | None = None, probe: bool = False):
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
            stream = path.open_stream()
            return _CsvBatches(pcsv.open_csv(stream, read_options=read, parse_options=parse,
                                             convert_options=convert), path, bad, len(self.names), self.header,
                               self.sep)
        except Exception as exc:
            raise csv_error(exc, path, bad, len(self.names), self.header, self.sep) from None

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

    def blocks(self, columns: list[str]) -> Iterator[tuple[int, object]]:
        """(first row, part) pieces that together hold every row of ``columns`` once, in order of rows.

        A part is a record batch of all the columns, except for a Parquet row group too large to
        decode at once (pyarrow decodes a row group whole, whatever the batch size asked for: a
        1-million-row group of 100 float64 columns is 800 MB): such a group comes as parts of a
        few columns each, every part covering the whole group, so memory stays near one part.
        """
        offset = 0
        for frag in self.fragments(split_row_groups=True):
            rows = frag.rows if frag.row_group is not None else None
            if self.format == "parquet" and rows and rows * 8 * len(columns) > 4 * BATCH_BYTES:
                pf = self._parquet_file(frag.file)
                step = max(1, BATCH_BYTES // (8 * rows))
                for k in range(0, len(columns), step):
                    try:
                        part = pf.read_row_group(frag.row_group, columns=columns[k : k + step])
                    except Exception as exc:
                        raise UserInputError(f"{frag.file}: not a readable Parquet file ({detail(exc)}); write it "
                                             "again or export the table as CSV.") from None
                    yield offset, part
                offset += rows
                continue
            for batch in self.read_fragment(frag, columns):
                yield offset, batch
                offset += batch.num_rows

    def read_fragment(self, frag: Fragment, columns: list[str], batch_rows: int | None = None) -> Iterator:
        """Record batches of ``columns`` from one fragment; wide tables come in shorter batches."""
        batch_rows = batch_rows or max(256, min(BATCH_ROWS, BATCH_BYTES // (8 * max(1, len(columns)))))
        if self.format == "parquet":
            pf = self._parquet_file(frag.file)
            groups = None if frag.row_group is None else [frag.row_group]
            try:
                yield from pf.iter_batches(batch_size=batch_rows, columns=columns, row_groups=groups)
            except Exception as exc:
                raise UserInputError(f"{frag.file}: not a readable Parquet file ({detail(exc)}); write it "
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
            raise csv_error(exc, self.path, self.bad, self.n_columns, self.header, self.sep) from None

    def __iter__(self):
        while True:
            try:
                yield self.read_next_batch()
            except StopIteration:
                return
