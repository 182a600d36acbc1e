"""Data sources, all returning one ``Dataset`` of tensors: bundled, lessons, IDX, tables."""

from __future__ import annotations

from softreg.data.base import Dataset, Split
from softreg.errors import UserInputError

BUILTIN = ("digits", "toy", "toy-binary", "xor")
NAMED_IDX = ("mnist", "fashion-mnist", "kmnist")


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    label: str | None = None,
    download: bool = True,
    progress: bool = False,
    **table_options,
) -> Dataset:
    """Load a dataset by name (``digits``, ``mnist``, ...), an IDX folder, a table (CSV, TSV,
    Parquet, or a folder of their shards) or an svmlight / LIBSVM file (rows kept sparse).

    table_options : for tables, ``test``, ``drop``, ``columns``, ``header``, ``sep``, ``impute``
        (see softreg.data.tables.memory.load_table); for svmlight files, ``test``.
    """
    from softreg.data import digits, lessons
    from softreg.data.idx import catalog
    from softreg.data.svmlight import files as svmlight
    from softreg.data.tables import reader as tables
    from softreg.data.tables import memory as tabular
    from softreg.system.limits import check_path

    if data_dir is not None:
        check_path(data_dir, "--data-dir")
    if name == "digits":
        return digits.digits().validate()
    if name in lessons.LESSON_TABLES:
        return lessons.LESSON_TABLES[name]().validate()
    if name in NAMED_IDX:
        return catalog.load_idx_dataset(name, data_dir=data_dir, download=download, progress=progress)
    path = check_path(name, "--data")
    if svmlight.is_svmlight(path):
        given = [k for k, v in table_options.items() if k != "test" and v not in (None, [], False, "none")]
        if given or label:
            option = (given or ["label"])[0]
            raise UserInputError(f"--{option} applies to tables (CSV / Parquet); {name} is an svmlight file, "
                                 "whose label is each line's first value. Leave the option out.")
        return svmlight.load_svmlight(path, test=table_options.get("test"))
    if tables.table_format(path) is not None or (path.is_dir() and not any(catalog.find_idx_files(path).values())
                                                 and tables.shard_files(path)):
        return tabular.load_table(path, label=label, **table_options)
    if path.is_dir():
        return catalog.load_idx_dataset(str(path), data_dir=data_dir, download=False)
    if path.exists():
        raise UserInputError(
            f"{name}: unsupported file type {path.suffix or '(none)'}; give a .csv / .tsv / .parquet "
            "table (or a folder of them), an svmlight file (.svm) or a folder of IDX files."
        )
    known = ", ".join(BUILTIN + NAMED_IDX)
    raise UserInputError(
        f"unknown dataset {name!r}: not a known name ({known}) nor an existing file or folder; "
        "give one of those names or the path of a .csv / .parquet table or an IDX folder."
    )


__all__ = ["Dataset", "Split", "load_dataset", "BUILTIN", "NAMED_IDX"]
