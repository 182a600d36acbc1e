"""Users' own tables (softreg.data.tabular): parsing, labels, errors, Parquet and the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softreg.data import load_dataset
from softreg.data.tabular import load_table
from softreg.errors import UserInputError


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def all_rows(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test rows together, sorted by the first feature (an id column in these tests)."""
    X = torch.cat([ds.train.X, ds.test.X]) if ds.test is not None else ds.train.X
    y = torch.cat([ds.train.y, ds.test.y]) if ds.test is not None else ds.train.y
    order = X[:, 0].argsort()
    return X[order], y[order]


def test_header_and_string_labels(tmp_path):
    path = write(tmp_path, "id,width,species\n1,0.5,setosa\n2,1.5,virginica\n3,0.7,setosa\n"
                           "4,1.1,versicolor\n5,1.6,virginica\n")
    ds = load_table(path, test_fraction=0)
    assert ds.classes == ["setosa", "versicolor", "virginica"]  # sorted
    assert ds.feature_names == ["id", "width"]
    assert ds.test is None and ds.n_features == 2 and ds.image_shape is None
    X, y = all_rows(ds)
    assert X.dtype == torch.float32
    assert X[:, 1].tolist() == pytest.approx([0.5, 1.5, 0.7, 1.1, 1.6])
    # class indices map back to the original text
    assert [ds.classes[i] for i in y.tolist()] == ["setosa", "virginica", "setosa", "versicolor", "virginica"]


def test_numeric_labels_are_sorted_as_numbers(tmp_path):
    rows = "".join(f"{i},{i * 2},{label}\n" for i, label in enumerate([10, 2, 2, 10, 1, 1]))
    ds = load_table(write(tmp_path, "a,b,label\n" + rows), test_fraction=0)
    assert ds.classes == ["1", "2", "10"]  # not the text order 1, 10, 2
    _, y = all_rows(ds)
    assert [ds.classes[i] for i in y.tolist()] == ["10", "2", "2", "10", "1", "1"]


def test_no_header_uses_the_last_column(tmp_path):
    ds = load_table(write(tmp_path, "1,2,0\n3,4,1\n5,6,0\n7,8,1\n"), test_fraction=0)
    assert ds.feature_names == ["c1", "c2"]
    assert ds.classes == ["0", "1"]
    X, y = all_rows(ds)
    assert X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert y.tolist() == [0, 1, 0, 1]


def test_label_column_named_target_is_found_anywhere(tmp_path):
    ds = load_table(write(tmp_path, "id,Target,x\n1,a,5\n2,b,6\n3,a,7\n"), test_fraction=0)
    assert ds.feature_names == ["id", "x"]
    assert ds.classes == ["a", "b"]


def test_label_option_picks_the_column(tmp_path):
    path = write(tmp_path, "id,colour,size\n1,red,0\n2,blue,1\n3,red,1\n4,blue,0\n")
    ds = load_table(path, label="colour", test_fraction=0)
    assert ds.classes == ["blue", "red"] and ds.feature_names == ["id", "size"]
    X, y = all_rows(ds)
    assert X.tolist() == [[1, 0], [2, 1], [3, 1], [4, 0]]
    assert y.tolist() == [1, 0, 1, 0]


def test_label_option_on_text_features_reports_the_cell(tmp_path):
    path = write(tmp_path, "id,colour,size\n1,red,0\n2,blue,1\n")
    with pytest.raises(UserInputError, match=r"column 'colour', data row 1 holds 'red', not a number"):
        load_table(path, label="size")


def test_unknown_label_column(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,x\n3,4,y\n")
    with pytest.raises(UserInputError, match=r"no column named 'kind'; columns are a, b, label\. Pass one"):
        load_table(path, label="kind")


ERRORS = {
    "ragged-short": ("a,b,label\n1,2,x\n3,4\n", r"row 3 has 2 fields but the header has 3"),
    "ragged-long": ("a,b,label\n1,2,x,9\n", r"row 2 has 4 fields but the header has 3"),
    "ragged-no-header": ("1,2,0\n3,4,1\n5,6\n", r"row 3 has 2 fields but the header has 3"),
    "empty": ("", r"the file is empty"),
    "header-only": ("a,b,label\n", r"has a header but no data rows"),
    "non-numeric": ("a,b,label\n1,2,x\n3,four,y\n", r"column 'b', data row 2 holds 'four', not a number"),
    "missing-value": ("a,b,label\n1,2,x\n,4,y\n", r"column 'a', data row 2 is missing, NaN or infinite"),
    "nan": ("a,b,label\n1,NaN,x\n3,4,y\n", r"column 'b', data row 1 is missing, NaN or infinite"),
    "inf": ("a,b,label\n1,2,x\n3,inf,y\n", r"column 'b', data row 2 is missing, NaN or infinite"),
    "missing-label": ("a,b,label\n1,2,x\n3,4, \n", r"data row 2 has no label"),
    "single-class": ("a,b,label\n1,2,x\n3,4,x\n5,6,x\n", r"found 1 class; a classifier needs at least two"),
    "one-column": ("label\nx\ny\n", r"found one column"),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_bad_tables_name_the_problem(tmp_path, case):
    text, pattern = ERRORS[case]
    with pytest.raises(UserInputError, match=pattern) as info:
        load_table(write(tmp_path, text))
    assert "\n" not in str(info.value)
    assert "t.csv" in str(info.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,label\n1,2,\xff\xfe\x80\n")
    with pytest.raises(UserInputError, match="not a text CSV file; save the table as UTF-8"):
        load_table(path)


def test_unreadable_file(tmp_path, monkeypatch):
    import errno

    from softreg.data import tabular

    path = write(tmp_path, "a,label\n1,x\n2,y\n")

    def denied(*args, **kwargs):  # what open() does without read permission (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tabular, "open", denied, raising=False)
    with pytest.raises(UserInputError, match=r"cannot read .*t\.csv \(Permission denied\); fix its permissions"):
        load_table(path)


def test_malformed_quoting(tmp_path):
    import csv

    limit = csv.field_size_limit()
    path = write(tmp_path, 'a,label\n"' + "x" * (limit + 1) + '",y\n')
    with pytest.raises(UserInputError, match="malformed CSV .*check quoting"):
        load_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        load_table(tmp_path / "nope.csv")


def test_load_dataset_dispatches_tables(tmp_path):
    path = write(tmp_path, "a,label\n1,x\n2,y\n3,x\n4,y\n5,x\n")
    ds = load_dataset(str(path))
    assert ds.name == "t.csv" and ds.source == str(path.resolve())


def _blobs(n_per_class: int = 10, classes=("cat", "dog", "eel")) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    X, y = [], []
    for k, name in enumerate(classes):
        X.append(rng.normal(loc=3.0 * k, size=(n_per_class, 2)))
        y += [name] * n_per_class
    return np.concatenate(X), y


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = _blobs()
    ids = np.arange(len(y), dtype=np.float64)
    table = pa.table({"id": ids, "x1": X[:, 0], "x2": X[:, 1].astype(np.float32), "kind": y})
    pq.write_table(table, tmp_path / "t.parquet")
    csv_text = "id,x1,x2,kind\n" + "".join(
        f"{i},{float(a)!r},{float(np.float32(b))!r},{k}\n" for i, a, b, k in zip(ids, X[:, 0], X[:, 1], y))
    from_parquet = load_dataset(str(tmp_path / "t.parquet"), label="kind")
    from_csv = load_dataset(str(write(tmp_path, csv_text)), label="kind")
    assert from_parquet.classes == from_csv.classes == ["cat", "dog", "eel"]
    assert from_parquet.feature_names == ["id", "x1", "x2"]
    for split in ("train", "test"):
        a, b = getattr(from_parquet, split), getattr(from_csv, split)
        assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)


def test_parquet_with_null_feature_and_damaged_file(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "label": ["x", "y", "x"]}), tmp_path / "n.parquet")
    with pytest.raises(UserInputError, match=r"column 'a', data row 2 is missing"):
        load_table(tmp_path / "n.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(UserInputError, match="not a readable Parquet file") as info:
        load_table(tmp_path / "bad.parquet")
    assert "\n" not in str(info.value) and "export the table as CSV" in str(info.value)


def test_split_is_stratified_and_reproducible(tmp_path):
    X, y = _blobs(n_per_class=10)
    text = "a,b,label\n" + "".join(f"{a},{b},{k}\n" for (a, b), k in zip(X.tolist(), y))
    path = write(tmp_path, text)
    first = load_table(path, test_fraction=0.2, seed=0)
    again = load_table(path, test_fraction=0.2, seed=0)
    other = load_table(path, test_fraction=0.2, seed=1)
    assert len(first.test) == 6 and len(first.train) == 24
    assert torch.bincount(first.test.y).tolist() == [2, 2, 2]  # stratified: 20% of each class
    assert torch.bincount(first.train.y).tolist() == [8, 8, 8]
    assert torch.equal(first.test.X, again.test.X) and torch.equal(first.train.y, again.train.y)
    assert not torch.equal(first.test.X, other.test.X)
    # the two splits together are exactly the table
    every = torch.cat([first.train.X, first.test.X])
    assert sorted(map(tuple, every.tolist())) == sorted(map(tuple, torch.tensor(X, dtype=torch.float32).tolist()))


def test_tiny_table_keeps_everything_for_training(tmp_path):
    ds = load_table(write(tmp_path, "a,label\n1,x\n2,y\n"))
    assert len(ds.train) == 2 and ds.test is None
