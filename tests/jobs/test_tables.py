"""Tables end to end: train, save, evaluate and predict by column name; the silently wrong answers
of a table path that matched columns by position are now right or a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_user_error
from softreg.runs.folder import load_run
from softreg.inference.batch import predict_table


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> Path:
    from sklearn.datasets import load_iris

    folder = tmp_path_factory.mktemp("iris")
    bunch = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    lines = [",".join(names + ["species"])]
    for row, k in zip(bunch.data, bunch.target):
        lines.append(",".join(f"{v:g}" for v in row) + f",{bunch.target_names[k]}")
    (folder / "iris.csv").write_text("\n".join(lines) + "\n")
    reordered = ["species,petal_width,extra,sepal_length,petal_length,sepal_width"]
    for row, k in zip(bunch.data, bunch.target):
        a, b, c, d = (f"{v:g}" for v in row)
        reordered.append(f"{bunch.target_names[k]},{d},7,{a},{c},{b}")
    (folder / "other.csv").write_text("\n".join(reordered) + "\n")
    return folder


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_evaluate_matches_columns_by_name_and_scores_a_given_table_whole(run_cli, iris, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", iris / "iris.csv", "--label", "species", "--out", out)
    assert code == 0, err
    own = json.loads((out / "config.json").read_text())["data"]
    assert own["source"]["label"] == "species" and own["source"]["drop"] == []
    code, stdout, err = run_cli("evaluate", out, "--data", iris / "other.csv")
    assert code == 0, err
    assert "not used by the model: ignored" in err and "extra" in err
    doc = json.loads((out / "evaluation.json").read_text())
    assert list(doc["splits"]) == ["test"] and doc["splits"]["test"]["n"] == 150  # the whole table
    run = load_run(out)
    from softreg.data.tables.memory import load_table

    same = load_table(iris / "iris.csv", label="species", test_fraction=0)
    expected = (run.model.predict(same.train.X).numpy() == same.train.y.numpy()).mean()
    assert doc["splits"]["test"]["accuracy"] == pytest.approx(expected)
    assert expected > 0.9


def test_auto_picked_label_is_saved_so_evaluate_finds_it(run_cli, tmp_path):
    rows = ["kind,a,b"] + [f"{'xy'[i % 2]},{i % 2 * 3 + (i % 5) * 0.1},{i % 7}" for i in range(60)]
    path = tmp_path / "first.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", path, "--out", out)  # label: the last column b
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["data"]["source"]["label"] == "b"
    code, _, err = run_cli("evaluate", out)
    assert code == 0, err
    out2 = tmp_path / "run2"
    code, _, err = run_cli("train", "--data", path, "--label", "kind", "--out", out2)
    assert code == 0, err
    assert _metrics(out2)["test_accuracy"] == 1.0
    code, _, err = run_cli("evaluate", out2)
    assert code == 0, err


def _mixed(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = ["id,size,colour,shape,weight,label"]
    for i in range(n):
        colour = ["red", "green", "blue"][i % 3]
        shape = ["round", "square"][(i // 3) % 2]
        size = rng.normal(10 if colour == "red" else 0, 1)
        weight = "" if i % 17 == 0 else f"{rng.normal(5, 2):.3f}"  # some missing
        label = "yes" if colour == "red" or shape == "square" else "no"
        lines.append(f"{1000 + i},{size:.3f},{colour},{shape},{weight},{label}")
    return "\n".join(lines) + "\n"


def test_mixed_table_trains_saves_reloads_and_predicts_unseen_categories(run_cli, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(_mixed(300, 0))
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", path, "--out", out)
    assert_user_error(code, err, "column 'weight' has missing values", "--impute")
    code, _, err = run_cli("train", "--data", path, "--impute", "median", "--drop", "id", "--out", out)
    assert code == 0, err
    assert _metrics(out)["test_accuracy"] >= 0.95
    run = load_run(out)
    schema = run.model.schema
    assert [c.name for c in schema.columns] == ["size", "colour", "shape", "weight"]
    assert schema.columns[1].categories == ["blue", "green", "red"]
    assert schema.columns[3].fill is not None and schema.impute == "median"
    new = tmp_path / "new.csv"  # other column order, an unseen colour, a missing weight
    new.write_text("label,weight,shape,colour,size,id\nyes,,square,purple,0.1,1\nno,4.0,round,purple,0.2,2\n"
                   "yes,5.0,round,red,10.5,3\n")
    written, rows = predict_table(run, new, tmp_path / "pred.csv", keep=["id"])
    assert rows == 3
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(written).to_pydict()
    assert table["id"] == [1, 2, 3]
    assert table["predicted"] == ["yes", "no", "yes"]
    probs = np.array([table["p_no"], table["p_yes"]]).T
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-9)
    # the same rows through the in-memory path give the same probabilities
    from softreg.data.tables.memory import load_scoring_table

    scored = load_scoring_table(new, schema, run.data["classes"])
    np.testing.assert_allclose(run.model.predict_proba(scored.test.X).double().numpy(), probs, rtol=1e-6)
    parquet, _ = predict_table(run, new, tmp_path / "pred.parquet")
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).column("predicted").to_pylist() == ["yes", "no", "yes"]


def test_separate_test_table_and_table_options_need_a_table(run_cli, iris, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", iris / "iris.csv", "--test", iris / "other.csv", "--out", out)
    assert code == 0, err
    metrics = _metrics(out)
    assert metrics["test_accuracy"] > 0.9
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["n_test"] == 150 and config["data"]["n_train"] == 150
    code, _, err = run_cli("train", "--data", "toy", "--drop", "x", "--out", tmp_path / "r2")
    assert_user_error(code, err, "--drop applies to tables")
    code, _, err = run_cli("train", "--data", iris / "iris.csv", "--drop", "petal", "--out", tmp_path / "r3")
    assert_user_error(code, err, "--drop names column(s) 'petal'")


def test_predict_command_scores_a_table_and_rows_with_text_columns(run_cli, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(_mixed(200, 1))
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", path, "--impute", "mean", "--drop", "id", "--out", out)
    assert code == 0, err
    code, stdout, err = run_cli("predict", out, path, "--out", tmp_path / "p.parquet", "--keep", "id,label")
    assert code == 0, err
    assert "wrote 200 predictions" in stdout
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "p.parquet").to_pydict()
    agree = np.mean([a == b for a, b in zip(table["predicted"], table["label"])])
    assert agree > 0.95 and table["id"][:2] == [1000, 1001]
    code, _, err = run_cli("predict", out, path)
    assert_user_error(code, err, "add --out predictions.csv")
    code, stdout, err = run_cli("predict", out, "--features", "11.0,red,round,4.5")
    assert code == 0, err
    assert "predicted yes" in stdout
    code, stdout, err = run_cli("predict", out, "--features", "0.1,purple,round,")  # unseen colour, missing weight
    assert code == 0, err
    code, _, err = run_cli("predict", out, "--features", "big,red,round,1")
    assert_user_error(code, err, "column 'size' needs a number", "'big'")
    code, _, err = run_cli("predict", out, "--features", "1,red")
    assert_user_error(code, err, "must hold 4 values", "size, colour, shape, weight")


def test_a_streamed_run_is_evaluated_from_disk_with_the_same_scores(run_cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    for name, n in (("train", 3000), ("test", 500)):
        x = rng.normal(size=(n, 5))
        y = np.where(x[:, 0] + x[:, 1] > 0, "up", "down")
        pq.write_table(pa.table({**{f"x{j}": x[:, j] for j in range(5)}, "label": y}), tmp_path / f"{name}.parquet",
                       row_group_size=400)
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", "--data", tmp_path / "train.parquet", "--test", tmp_path / "test.parquet",
                                "--stream", "--out", out)
    assert code == 0, err
    metrics = _metrics(out)
    assert metrics["test_accuracy"] > 0.95
    code, stdout, err = run_cli("evaluate", out)
    assert code == 0, err
    splits = json.loads((out / "evaluation.json").read_text())["splits"]
    assert splits["test"]["n"] == 500 and splits["train"]["n"] == 3000
    assert splits["test"]["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert splits["train"]["log_loss"] == pytest.approx(metrics["train_loss"], rel=1e-5)
    code, _, err = run_cli("train", "--data", "digits", "--stream", "--out", tmp_path / "r2")
    assert_user_error(code, err, "--stream reads tables, IDX and svmlight files from disk", "Leave out --stream")
