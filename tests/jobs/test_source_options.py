"""A table run records how its data was read, whole: evaluate, report, predict --random and serve read
it again with no option repeated, for every table option (each table below needs its option)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_user_error


def _rows(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = "yes" if i % 2 else "no"
        yield i, label, rng.normal(2.0 * (i % 2), 0.5), rng.normal(0, 1)


def _impute_table(folder: Path) -> Path:
    """Missing values in column b: training needs --impute."""
    lines = ["a,b,label"] + [f"{a:.4f},{'' if i % 7 == 0 else f'{b:.4f}'},{label}" for i, label, a, b in _rows()]
    (folder / "missing.csv").write_text("\n".join(lines) + "\n")
    return folder / "missing.csv"


def _drop_table(folder: Path) -> Path:
    """A text column with a different value in every row: training needs --drop note."""
    lines = ["a,b,note,label"] + [f"{a:.4f},{b:.4f},row {i},{label}" for i, label, a, b in _rows()]
    (folder / "notes.csv").write_text("\n".join(lines) + "\n")
    return folder / "notes.csv"


def _sep_table(folder: Path) -> Path:
    """Fields split by ':', which is not detected: training needs --sep ':'."""
    lines = ["a:b:label"] + [f"{a:.4f}:{b:.4f}:{label}" for i, label, a, b in _rows()]
    (folder / "colons.csv").write_text("\n".join(lines) + "\n")
    return folder / "colons.csv"


def _header_table(folder: Path) -> Path:
    """Text alone, no header: detection would take the first row for one; training needs --no-header."""
    colours, shapes = ["red", "blue", "green"], ["round", "square"]
    lines = [f"{colours[i % 3]},{shapes[(i // 3) % 2]},{'yes' if (i % 3 == 0) != ((i // 3) % 2 == 0) else 'no'}"
             for i in range(120)]
    (folder / "plain.csv").write_text("\n".join(lines) + "\n")
    return folder / "plain.csv"


CASES = {  # option: (table maker, the option's arguments, what training says without it)
    "impute": (_impute_table, ["--impute", "mean"], "add --impute mean"),
    "drop": (_drop_table, ["--drop", "note"], "--drop note"),
    "sep": (_sep_table, ["--sep", ":"], "feature"),
    "no-header": (_header_table, ["--no-header"], None),
}


@pytest.mark.parametrize("option", list(CASES))
def test_a_run_reads_its_table_again_without_the_option_repeated(option, run_cli, tmp_path):
    make, args, without = CASES[option]
    table = make(tmp_path)
    if without is not None:  # the option is needed: without it training stops
        code, _, err = run_cli("train", "--data", table, "--out", tmp_path / "plain")
        assert code == 2 and without in err, err
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", table, *args, "--out", out)
    assert code == 0, err
    recorded = json.loads((out / "config.json").read_text())["data"]["source"]
    assert recorded["spec"] == str(table.resolve())
    trained = json.loads((out / "metrics.json").read_text())

    code, stdout, err = run_cli("evaluate", out)
    assert code == 0, err
    evaluation = json.loads((out / "evaluation.json").read_text())["splits"]
    assert evaluation["test"]["accuracy"] == pytest.approx(trained["test_accuracy"])
    assert evaluation["train"]["n"] + evaluation["test"]["n"] == 120

    code, stdout, err = run_cli("report", out)
    assert code == 0, err
    assert (out / "report" / "index.html").is_file()

    code, stdout, err = run_cli("predict", out, "--random", "--seed", "3")
    assert code == 0, err
    assert "predicted" in stdout and ", true " in stdout

    import httpx

    from softreg.inference.predictor import Predictor
    from softreg.serve.app import create_app
    from softreg.serve.server import BackgroundServer

    with BackgroundServer(create_app([Predictor.from_run(out)])) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        sample = client.get("/v1/models/run/samples/random", params={"seed": 1})
        assert sample.status_code == 200, sample.text
        answer = client.post("/v1/models/run:predict", json={"instances": [sample.json()["instance"]]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] in ("yes", "no")


def test_a_recorded_source_is_refused_unread_when_tampered(run_cli, tmp_path):
    table = _impute_table(tmp_path)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", table, "--impute", "mean", "--out", out)
    assert code == 0, err
    doc = json.loads((out / "config.json").read_text())
    doc["data"]["source"]["test"] = "relative/elsewhere.csv"
    (out / "config.json").write_text(json.dumps(doc))
    code, _, err = run_cli("evaluate", out)
    assert_user_error(code, err, "config.json is damaged", "data.source.test", "absolute path")
