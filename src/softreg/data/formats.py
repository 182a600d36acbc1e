"""The kinds of data softreg reads, each behind one interface, and the one function that tells
them apart (``detect``).

A format loads a source into memory (``load``), streams it from disk (``stream``), and reads a
file the way a trained model expects (``score``: a table's columns matched by the stored
schema, an svmlight file numbered as in training). ``reads`` lists the DataSource options it
takes; any other option given is refused in one place, with one wording (``check_options``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from softreg.data.base import Dataset
from softreg.data.names import BUILTIN, DATASET_NAMES, canonical
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.system.processes import SINGLE

if TYPE_CHECKING:
    from softreg.data.source import DataSource, Expected

TABLE_OPTIONS = frozenset({"label", "drop", "columns", "header", "sep", "impute"})  # read by tables alone
TABLES = "tables (CSV / Parquet)"


class Format:
    """How one kind of data is read (see the module docstring)."""

    name = ""  # what the data is, in messages: "an svmlight file"
    reads: frozenset[str] = frozenset({"test"})  # DataSource options this format takes (in memory)
    stream_reads: frozenset[str] | None = None  # ... when streamed; None: it does not stream

    def check_options(self, source: DataSource) -> None:
        reads = self.reads if not source.stream else self.stream_reads
        if source.stream and reads is None:
            raise UserInputError(f"{spell('stream', True)} reads tables, IDX and svmlight files from disk; "
                                 f"{source.spec} is {self.name}. Leave out {spell('stream', True)}.")
        for name in source.given():
            if name not in reads:
                where = TABLES if name in TABLE_OPTIONS else "in-memory data"
                raise UserInputError(f"{spell(name)} applies to {where}; {source.spec} is {self.name}"
                                     f"{' read with ' + spell('stream', True) if source.stream else ''}. "
                                     "Leave the option out.")

    def load(self, source: DataSource, *, progress: bool = False, download: bool = True,
             expected: Expected | None = None) -> Dataset:
        raise NotImplementedError

    def stream(self, source: DataSource, *, preprocess: str, progress: bool = False, comm=SINGLE,
               expected: Expected | None = None):
        raise NotImplementedError

    def score(self, source: DataSource, expected: Expected) -> Dataset:
        """Data given to score a model with (``evaluate --data``): by default read as its own dataset."""
        if expected.index_base is not None:
            raise UserInputError(f"{source.spec}: this model was trained on svmlight data; score an svmlight file "
                                 "(.svm, .svmlight, .libsvm, optionally .gz).")
        return self.load(source, download=True)


def _with_test_set(dataset: Dataset, source: DataSource) -> Dataset:
    """``dataset`` scored on another dataset's test split (or its only split), classes matched by name."""
    if source.test is None:
        return dataset
    test_source = source.with_(spec=source.test, test=None)
    fmt = detect(test_source.spec, "test")
    fmt.check_options(test_source)
    other = fmt.load(test_source)
    split = other.test if other.test is not None else other.train
    if tuple(split.X.shape[1:]) != tuple(dataset.train.X.shape[1:]):
        raise UserInputError(f"{spell('test', source.test)}: samples of shape {tuple(split.X.shape[1:])}, but the "
                             f"training samples are {tuple(dataset.train.X.shape[1:])}; give a test set like the "
                             "training data.")
    relabelled = other.relabel(dataset.classes) if other.classes != dataset.classes else other
    dataset = dataset.with_train(dataset.train)
    dataset.test = relabelled.test if relabelled.test is not None else relabelled.train
    return dataset


class Builtin(Format):
    """The bundled digits and the lessons' tables: no file to read."""

    name = "built in"

    def load(self, source, *, progress=False, download=True, expected=None):
        from softreg.data import digits, lessons

        name = canonical(source.spec)
        dataset = digits.digits() if name == "digits" else lessons.LESSON_TABLES[name]()
        return _with_test_set(dataset.validate(), source)


class Idx(Format):
    """A named IDX dataset (found on disk or downloaded) or a folder of IDX files."""

    name = "IDX image data"
    stream_reads = frozenset()  # a streamed IDX folder's test split is its own t10k files

    def load(self, source, *, progress=False, download=True, expected=None):
        from softreg.data.idx.catalog import load_idx_dataset

        dataset = load_idx_dataset(source.spec, data_dir=source.data_dir, download=download, progress=progress)
        return _with_test_set(dataset, source)

    def stream(self, source, *, preprocess, progress=False, comm=SINGLE, expected=None):
        from softreg.data.idx.stream import open_idx_stream

        return open_idx_stream(source.spec, preprocess=preprocess, data_dir=source.data_dir, progress=progress,
                               comm=comm)


class Table(Format):
    """A CSV / TSV / Parquet file or a folder of such shards, read through Apache Arrow."""

    name = "a table"
    reads = TABLE_OPTIONS | {"test"}
    stream_reads = reads

    def check_options(self, source):
        super().check_options(source)
        if source.test is not None and detect(source.test, "test") is not TABLE:
            raise UserInputError(f"{spell('test', source.test)}: the data is a table, so the test set must be a "
                                 "table too (.csv / .tsv / .parquet, or a folder of them).")

    def load(self, source, *, progress=False, download=True, expected=None):
        from softreg.data.tables.memory import load_table

        return load_table(source.spec, label=source.label, test=source.test, drop=list(source.drop),
                          columns=None if source.columns is None else list(source.columns), header=source.header,
                          sep=source.sep, impute=source.impute)

    def stream(self, source, *, preprocess, progress=False, comm=SINGLE, expected=None):
        from softreg.data.tables.stream import open_table_stream

        return open_table_stream(source.spec, preprocess=preprocess, label=source.label, test=source.test,
                                 drop=list(source.drop), columns=None if source.columns is None else list(source.columns),
                                 header=source.header, sep=source.sep, impute=source.impute, comm=comm)

    def score(self, source, expected):
        if expected.schema is None:  # a model of images or raw columns: the table read as its own dataset
            return super().score(source, expected)
        from softreg.data.tables.memory import load_scoring_table

        return load_scoring_table(source.spec, expected.schema, list(expected.classes), header=source.header,
                                  sep=source.sep)


class Svmlight(Format):
    """An svmlight / LIBSVM file of sparse rows (and its test file)."""

    name = "an svmlight file, whose label is each line's first value"
    stream_reads = Format.reads

    def load(self, source, *, progress=False, download=True, expected=None):
        from softreg.data.svmlight.files import load_svmlight

        numbering = {} if expected is None else dict(index_base=expected.index_base, n_features=expected.n_features)
        return load_svmlight(source.spec, test=source.test, **numbering)

    def stream(self, source, *, preprocess, progress=False, comm=SINGLE, expected=None):
        from softreg.data.svmlight.stream import open_svmlight_stream

        return open_svmlight_stream(source.spec, preprocess=preprocess, test=source.test)

    def score(self, source, expected):
        if expected.index_base is None:
            raise UserInputError(f"{source.spec} is an svmlight file but this model was trained on dense data; "
                                 "give a table, an image folder or a dataset name.")
        from softreg.data.svmlight.files import load_scoring_svmlight

        return load_scoring_svmlight(source.spec, expected)


BUILTIN_FORMAT, IDX, TABLE, SVMLIGHT = Builtin(), Idx(), Table(), Svmlight()


def detect(spec: str, option: str = "data") -> Format:
    """The format of ``spec``: a known dataset name, else what the path or URL holds (by its name,
    or for a folder, by its files). Raises UserInputError naming what was looked for and the option
    (``option``, a setting name) that gave it."""
    from softreg.data.idx.catalog import find_idx_files
    from softreg.data.svmlight.files import is_svmlight
    from softreg.data.tables.reader import shard_files, table_format
    from softreg.system.limits import check_path
    from softreg.system.storage import is_url, locate

    name = canonical(spec)
    if name in BUILTIN:
        return BUILTIN_FORMAT
    if name is not None:
        return IDX
    if is_url(spec):
        return _detect_remote(locate(spec), option)
    path = check_path(spec, spell(option))
    if is_svmlight(path):
        return SVMLIGHT
    if table_format(path) is not None:
        return TABLE
    if path.is_dir():
        return TABLE if not any(find_idx_files(path).values()) and shard_files(locate(spec)) else IDX
    if path.exists():
        raise UserInputError(f"{spec}: unsupported file type {Path(spec).suffix or '(none)'}; give a .csv / .tsv / "
                             ".parquet table (or a folder of them), an svmlight file (.svm) or a folder of IDX files.")
    raise UserInputError(f"{spell(option, spec)}: unknown dataset: not a known name ({', '.join(DATASET_NAMES)}) nor an existing "
                         "file, folder or URL; give one of those names or the path of a .csv / .parquet table or an "
                         "IDX folder.")


def _detect_remote(loc, option: str) -> Format:
    """A URL's format: tables (a file, or a folder of shards) are read remotely; svmlight files and
    IDX folders are read from local disk only."""
    from softreg.data.svmlight.files import is_svmlight
    from softreg.data.tables.reader import shard_files, table_format
    from softreg.system.storage import not_found

    if is_svmlight(loc.name):
        raise UserInputError(f"{spell(option, loc.shown)}: svmlight files are read from local disk; copy it down "
                             "first (or convert it to Parquet to read it from there).")
    if table_format(loc) is not None:
        return TABLE
    if loc.shown.lower().startswith(("http://", "https://")):
        raise UserInputError(f"{spell(option, loc.shown)}: give the URL of one .csv / .tsv / .parquet file (a web "
                             "server serves single files, not folders of shards).")
    if loc.is_dir():
        if shard_files(loc):
            return TABLE
        raise UserInputError(f"{spell(option, loc.shown)}: no .csv / .tsv / .parquet files in this folder; softreg "
                             "reads tables from URLs (IDX image folders from local disk).")
    if loc.exists():
        raise UserInputError(f"{spell(option, loc.shown)}: unsupported file type {loc.suffix or '(none)'}; give a "
                             ".csv / .tsv / .parquet table or a folder of them.")
    raise not_found(loc.shown, spell(option, loc.shown))
