"""The one way into data: a ``DataSource`` (what ``--data``, ``--test`` and the table options say,
written down once) opened for training or for scoring a trained model.

``open_data`` reads a source to train on: in memory, or streamed from disk with ``stream=True``.
``open_scoring`` reads what a trained model is scored on: its own source again, exactly as training
read it (the same split, the same table options), or another file scored whole with the model's
stored schema and feature numbering. The run folder records the source whole
(``DataSource.to_dict``), so ``evaluate``, ``report``, ``predict`` and ``serve`` never need an option
repeated. Formats (named datasets, IDX folders, tables, svmlight files) are told apart in one place,
softreg.data.formats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from softreg import settings as S
from softreg.errors import UserInputError
from softreg.system.processes import SINGLE, Comm
from softreg.settings import spell


@dataclass(frozen=True)
class DataSource:
    """Where the data comes from and how to read it (each field is declared in softreg.settings,
    section ``source``)."""

    spec: str = "digits"  # a dataset name, an IDX folder, a table file or folder (a path or URL), an svmlight file
    test: str | None = None  # a separate test set
    label: str | None = None  # tables: the label column
    drop: tuple[str, ...] = ()  # tables: columns left out
    columns: tuple[str, ...] | None = None  # tables: the only feature columns
    header: bool | None = None  # CSV: the first row is a header (None: detected)
    sep: str | None = None  # CSV: the field separator (None: detected)
    impute: str = "none"  # tables: how missing values are filled
    stream: bool = False  # read the training data from disk in bounded memory
    data_dir: str | None = None  # the dataset cache folder (where this machine keeps it; not recorded)

    def __post_init__(self):
        object.__setattr__(self, "drop", tuple(self.drop or ()))
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))
        for f in fields(self):
            name = "data" if f.name == "spec" else f.name
            S.check(name, getattr(self, f.name), spell(name))
        from softreg.system.limits import check_path
        from softreg.system.storage import is_url

        for name in ("data", "test", "data_dir"):  # a path over the system's limits is one line, not an OSError
            value = getattr(self, "spec" if name == "data" else name)
            if value is not None and not is_url(value):
                check_path(value, spell(name))

    def to_dict(self) -> dict:
        """What a run records: every field but the machine's cache folder; lists for tuples."""
        doc = asdict(self)
        del doc["data_dir"]
        doc["drop"] = list(self.drop)
        doc["columns"] = None if self.columns is None else list(self.columns)
        return doc

    @classmethod
    def from_dict(cls, doc: dict, data_dir: str | None = None) -> "DataSource":
        return cls(**{**doc, "data_dir": data_dir})

    def given(self) -> list[str]:
        """The reading options set to something other than their default, by parameter name."""
        defaults = DataSource()
        return [f.name for f in fields(self) if f.name not in ("spec", "data_dir", "stream")
                and getattr(self, f.name) != getattr(defaults, f.name)]

    def with_(self, **changes: Any) -> "DataSource":
        return replace(self, **changes)


@dataclass(frozen=True)
class Expected:
    """What a trained model expects of the data it scores: its classes, its number of features, and
    how it reads them (a table's schema, an svmlight file's index base)."""

    classes: tuple[str, ...]
    n_features: int
    schema: Any = None  # softreg.data.tables.columns.TableSchema, for table models
    index_base: int | None = None  # svmlight models: the file index of feature 0


def open_data(source: DataSource, *, preprocess: str = "auto", progress: bool = False, download: bool = True,
              comm: Comm = SINGLE):
    """The dataset ``source`` names, to train on: a Dataset in memory, or with ``stream=True`` a
    StreamData read from disk (its preprocessing ``preprocess`` fitted in a pass over the training
    rows; with several processes (``comm``) each reads its share and the statistics are merged)."""
    from softreg.data.formats import detect

    fmt = detect(source.spec)
    fmt.check_options(source)
    if source.stream:
        return fmt.stream(source, preprocess=preprocess, progress=progress, comm=comm)
    return fmt.load(source, progress=progress, download=download)


def open_scoring(source: DataSource, expected: Expected, *, data: str | None = None, download: bool = True):
    """What a trained model is scored on, with the model's class numbering.

    data : None: the model's own ``source`` again, read as in training (same split, same options;
        streamed when training streamed). A dataset name or path: that data instead, scored
        whole (every row in the test split) and read as the model reads (a table's columns
        matched by name, an svmlight file numbered as in training).
    """
    from softreg.data.formats import detect

    if data is None:
        fmt = detect(source.spec)
        if source.stream:
            dataset = fmt.stream(source, preprocess="none", expected=expected)
        else:
            dataset = fmt.load(source, download=download, expected=expected)
        what = source.spec
    else:
        fmt = detect(data)
        dataset = fmt.score(DataSource(spec=data, header=source.header, sep=source.sep, data_dir=source.data_dir),
                            expected)  # a CSV read as the training CSV was (its separator, its header)
        what = data
    if dataset.n_features != expected.n_features:
        raise UserInputError(f"{what} has {dataset.n_features} features per sample but the model expects "
                             f"{expected.n_features}; score data shaped like the training data.")
    if dataset.streamed:
        if list(dataset.classes) != list(expected.classes):
            raise UserInputError(f"{what} no longer matches the run (its classes changed since training); score "
                                 f"it with {spell('data')} FILE, or train again.")
        return dataset
    return dataset.relabel(list(expected.classes))
