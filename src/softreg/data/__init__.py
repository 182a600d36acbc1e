"""Data: one entry (``DataSource``, opened by ``open_data`` to train on or ``open_scoring`` to score a
model), the formats behind it (softreg.data.formats), datasets in memory or streamed (softreg.data.base)
and the batch sources training reads (softreg.data.sources, softreg.data.shuffle).

This package imports nothing heavy: torch is loaded when data is opened.
"""

from __future__ import annotations

from softreg.data.names import BUILTIN, NAMED_IDX
from softreg.data.source import DataSource, Expected, open_data, open_scoring


def load_dataset(name: str, *, data_dir: str | None = None, download: bool = True, progress: bool = False,
                 **options):
    """Load a dataset by name (``digits``, ``mnist``, ...), an IDX folder, a table (CSV, TSV,
    Parquet, or a folder of their shards) or an svmlight / LIBSVM file (rows kept sparse), in memory.

    options : how to read it (softreg.data.DataSource's fields): ``test`` (a separate test set),
        for tables ``label``, ``drop``, ``columns``, ``header``, ``sep``, ``impute``.
    """
    return open_data(DataSource(spec=name, data_dir=data_dir, **options), progress=progress, download=download)


__all__ = ["DataSource", "Expected", "open_data", "open_scoring", "load_dataset", "BUILTIN", "NAMED_IDX"]
