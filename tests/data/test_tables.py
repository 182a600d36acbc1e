"""Users' own tables (softreg.data.tables.reader / tabular): CSV, TSV, compressed, Parquet, shard folders;
labels, header and separator detection, text columns, missing values, errors, and the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softreg.data import load_dataset
from softreg.data.tables.memory import load_table
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


def test_text_features_are_one_hot_encoded(tmp_path):
    path = write(tmp_path, "id,colour,size\n1,red,0\n2,blue,1\n3,red,1\n4,green,0\n")
    ds = load_table(path, label="size", test_fraction=0)
    assert ds.feature_names == ["id", "colour=blue", "colour=green", "colour=red"]
    X, y = all_rows(ds)
    assert X.tolist() == [[1, 0, 0, 1], [2, 1, 0, 0], [3, 0, 0, 1], [4, 0, 1, 0]]
    assert ds.schema.unscaled() == [1, 2, 3]  # one-hot columns are not standardised


def test_a_typo_in_a_column_of_numbers_is_reported_at_its_cell(tmp_path):
    rows = "".join(f"{i},{i * 0.5},{'ab'[i % 2]}\n" for i in range(30))
    path = write(tmp_path, "a,b,label\n" + rows.replace("7,3.5,", "7,three,"))
    with pytest.raises(UserInputError, match=r"column 'b', data row 8 holds 'three', not a number"):
        load_table(path)


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
    "missing-value": ("a,b,label\n1,2,x\n,4,y\n", r"column 'a' has missing values \(first in data row 2\).*impute='mean'"),
    "nan": ("a,b,label\n1,NaN,x\n3,4,y\n", r"column 'b' has missing values \(first in data row 1\)"),
    "inf": ("a,b,label\n1,2,x\n3,inf,y\n", r"column 'b', data row 2 holds inf, infinite"),
    "huge": ("a,b,label\n1,2,x\n3,1e39,y\n", r"column 'b', data row 2 holds 1e\+39, beyond float32's range"),
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

    path = write(tmp_path, "a,label\n1,x\n2,y\n")

    def denied(*args, **kwargs):  # what opening does without read permission (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("pyarrow.input_stream", denied)
    with pytest.raises(UserInputError, match=r"cannot read .*t\.csv \(Permission denied\); fix its permissions"):
        load_table(path)


def test_malformed_quoting(tmp_path):
    unbalanced = write(tmp_path, 'a,b\n1,2\n"3,4\n', "u.csv")
    with pytest.raises(UserInputError, match="row 3 has 1 fields but the header has 2"):
        load_table(unbalanced)


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        load_table(tmp_path / "nope.csv")


def test_header_detection_and_override(tmp_path):
    named = load_table(write(tmp_path, "w,h,label\n1,2,a\n3,4,b\n", "named.csv"), test_fraction=0)
    assert named.feature_names == ["w", "h"] and len(named.train) == 2
    bare = load_table(write(tmp_path, "1.5,2,a\n3,4,b\n5,6,a\n", "bare.csv"), test_fraction=0)
    assert bare.feature_names == ["c1", "c2"] and len(bare.train) == 3  # no row lost to a header
    text = write(tmp_path, "p,q,a\nr,s,b\np,s,a\n", "text.csv")
    assert len(load_table(text, test_fraction=0, header=False).train) == 3
    assert len(load_table(text, test_fraction=0).train) == 2  # text over text: a header


@pytest.mark.parametrize("name, sep, text", [
    ("t.tsv", None, "a\tb\tlabel\n1\t2\tx\n3\t4\ty\n"),
    ("t.csv", ";", "a;b;label\n1;2;x\n3;4;y\n"),
    ("t.csv", None, "a;b;label\n1;2;x\n3;4;y\n"),  # sniffed
    ("t.csv", "|", "a|b|label\n1|2|x\n3|4|y\n"),
])
def test_separators(tmp_path, name, sep, text):
    ds = load_table(write(tmp_path, text, name), test_fraction=0, sep=sep)
    assert ds.feature_names == ["a", "b"] and ds.classes == ["x", "y"]
    assert all_rows(ds)[0].tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.zst", ".csv.bz2"])
def test_compressed_csv(tmp_path, suffix):
    import pyarrow as pa

    text = b"a,b,label\n" + b"".join(b"%d,%d,%s\n" % (i, 2 * i, b"xy"[i % 2 : i % 2 + 1]) for i in range(40))
    path = tmp_path / f"t{suffix}"
    with pa.output_stream(str(path), compression="detect") as out:
        out.write(text)
    plain = load_table(write(tmp_path, text.decode()), seed=3)
    packed = load_table(path, seed=3)
    assert torch.equal(plain.train.X, packed.train.X) and torch.equal(plain.test.y, packed.test.y)


def test_a_folder_of_shards_is_one_table(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, y = _blobs()
    table = pa.table({"x1": X[:, 0], "x2": X[:, 1], "label": y})
    whole = tmp_path / "whole.parquet"
    pq.write_table(table, whole)
    shards = tmp_path / "shards"
    shards.mkdir()
    for k, start in enumerate(range(0, len(y), 7)):
        pq.write_table(table.slice(start, 7), shards / f"part-{k:03d}.parquet")
    (shards / "_SUCCESS").write_text("")
    a, b = load_table(whole), load_table(shards)
    assert torch.equal(a.train.X, b.train.X) and torch.equal(a.test.y, b.test.y)
    csv_shards = tmp_path / "csv"
    csv_shards.mkdir()
    for k, start in enumerate(range(0, len(y), 11)):
        import pyarrow.csv as pcsv

        pcsv.write_csv(table.slice(start, 11), csv_shards / f"part-{k}.csv")
    c = load_table(csv_shards)
    assert torch.allclose(a.train.X, c.train.X) and torch.equal(a.test.y, c.test.y)


def test_drop_columns_and_identifier_notice(tmp_path):
    rows = "".join(f"{1000 + i},{i % 3},{i % 5},{'ab'[i % 2]}\n" for i in range(40))
    path = write(tmp_path, "id,x,z,label\n" + rows)
    ds = load_table(path)
    assert ds.feature_names == ["id", "x", "z"]
    assert any("'id' has a different value in every row" in n and "drop=['id']" in n for n in ds.notes)
    assert load_table(path, drop=["id"]).feature_names == ["x", "z"]
    assert load_table(path, columns=["z"]).feature_names == ["z"]
    with pytest.raises(UserInputError, match=r": drop names column\(s\) 'ID'"):
        load_table(path, drop=["ID"])
    named = write(tmp_path, "name,x,label\n" + "".join(f"n{i},{i % 3},{'ab'[i % 2]}\n" for i in range(40)), "n.csv")
    with pytest.raises(UserInputError, match=r"text column 'name' has a different value in every row.*drop=\['name'\]"):
        load_table(named)


@pytest.mark.parametrize("how, expected", [("mean", 2.0), ("median", 1.5), ("zero", 0.0)])
def test_impute_fills_from_the_training_rows(tmp_path, how, expected):
    path = write(tmp_path, "a,b,label\n1,5,x\n,6,y\n2,7,x\n1.5,8,y\n3.5,9,x\n")
    ds = load_table(path, test_fraction=0, impute=how)
    X, _ = all_rows(ds)
    filled = X[X[:, 1] == 6][0, 0].item()
    assert filled == pytest.approx({"mean": 2.0, "median": 1.75, "zero": 0.0}[how])
    assert ds.schema.columns[0].fill == pytest.approx(filled)


def test_dates_and_booleans_become_numbers(tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    far = pa.array([0, 1, 5_000_000, 3], type=pa.date32())  # day 5,000,000 is beyond Python's dates
    table = pa.table({"d": far, "flag": [True, False, True, False], "label": ["a", "b", "a", "b"]})
    pq.write_table(table, tmp_path / "d.parquet")
    ds = load_table(tmp_path / "d.parquet", test_fraction=0)
    assert all_rows(ds)[0].tolist() == [[0, 1], [1, 0], [3, 0], [5_000_000, 1]]
    assert datetime.date(1970, 1, 2).toordinal() - datetime.date(1970, 1, 1).toordinal() == 1


def test_a_separate_test_table_is_matched_by_column_name(tmp_path):
    train_path = write(tmp_path, "a,b,colour,label\n1,2,red,x\n3,4,blue,y\n5,6,red,x\n", "train.csv")
    test_path = write(tmp_path, "label,colour,extra,b,a\nx,red,9,2,1\ny,green,9,4,3\n", "test.csv")
    ds = load_table(train_path, test=test_path)
    assert len(ds.train) == 3 and len(ds.test) == 2
    assert ds.test.X.tolist() == [[1, 2, 0, 1], [3, 4, 0, 0]]  # green was never seen: all zeros
    assert [ds.classes[i] for i in ds.test.y.tolist()] == ["x", "y"]
    missing = write(tmp_path, "label,a\nx,1\n", "missing.csv")
    with pytest.raises(UserInputError, match=r"column\(s\) 'b', 'colour' that the model was trained on are missing"):
        load_table(train_path, test=missing)
    unknown = write(tmp_path, "a,b,colour,label\n1,2,red,z\n", "unknown.csv")
    with pytest.raises(UserInputError, match=r"label\(s\) 'z' are not among the model's 2 classes"):
        load_table(train_path, test=unknown)


def test_load_dataset_dispatches_tables(tmp_path):
    path = write(tmp_path, "a,label\n1,x\n2,y\n3,x\n4,y\n5,x\n")
    ds = load_dataset(str(path))
    assert ds.name == "t.csv" and ds.origin == str(path.resolve())


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
    with pytest.raises(UserInputError, match=r"column 'a' has missing values \(first in data row 2\)"):
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


def test_a_large_parquet_row_group_is_read_a_few_columns_at_a_time(tmp_path, monkeypatch):
    """pyarrow decodes a row group whole; a group over the limit is read in parts of a few columns:
    the same matrix, the same errors, read part by part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from softreg.data.tables import reader as tables
    from softreg.data.tables.memory import load_table

    rng = np.random.default_rng(0)
    n = 600
    cols = {f"x{j}": rng.normal(size=n) for j in range(12)}
    cols["colour"] = rng.choice(["red", "green", "blue"], n)
    cols["label"] = rng.choice(["a", "b", "c"], n)
    path = tmp_path / "one-group.parquet"
    pq.write_table(pa.table(cols), path, row_group_size=n)
    whole = load_table(path)
    parts = []
    original = tables.TableReader.blocks

    def spy(self, columns):
        for offset, part in original(self, columns):
            parts.append(part.num_columns)
            yield offset, part

    monkeypatch.setattr(tables, "BATCH_BYTES", 8 * n * 3)  # a group of 14 columns is over 4x: parts of 3
    monkeypatch.setattr(tables.TableReader, "blocks", spy)
    split = load_table(path)
    assert parts and max(parts) == 3 and len(parts) == 5
    assert torch.equal(split.train.X, whole.train.X) and torch.equal(split.test.X, whole.test.X)
    assert torch.equal(split.train.y, whole.train.y)
    cols["x7"][123] = np.nan
    pq.write_table(pa.table(cols), path, row_group_size=n)
    with pytest.raises(UserInputError, match=r"column 'x7' has missing values \(first in data row 124\)"):
        load_table(path)
