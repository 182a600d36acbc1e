"""Run folders checked against their versioned schema before anything is built (softreg.runs.schema)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers import assert_user_error, call_main
from softreg.runs import files as runfiles
from softreg.runs import schema
from softreg.errors import UserInputError
from softreg.runs.folder import load_run
from softreg.runs.schema import Int, List, Nullable, Obj, Real, SchemaError, Str, check


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, trained_idx_run) -> Path:
    folder, _ = trained_idx_run
    out = tmp_path_factory.mktemp("mlp") / "run"
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = call_main(["train", "--data", folder, "--model", "mlp", "--hidden", "7", "--epochs", "2",
                          "--device", "cpu", "--out", out])
    assert code == 0, err.getvalue()
    return out


def _config(change):
    def edit(run: Path) -> None:
        doc = json.loads((run / "config.json").read_text())
        change(doc)
        (run / "config.json").write_text(json.dumps(doc))

    return edit


def _write(name: str, text: str):
    return lambda run: (run / name).write_text(text)


# (damage, words the one-line error must contain); each is tried with evaluate and predict
CASES = {
    "spec-not-a-string": (_config(lambda d: d["data"]["source"].update(spec=["digits"])),
                          ["data.source.spec must be a name"]),
    "n-features-true": (_config(lambda d: d["model"].update(n_features=True)), ["model.n_features", "got true"]),
    "n-features-zero": (_config(lambda d: d["model"].update(n_features=0)), ["model.n_features", "got 0"]),
    "classes-not-strings": (_config(lambda d: d["data"].update(classes=[0, 1, 2])), ["data.classes[0]"]),
    "classes-twice": (_config(lambda d: d["data"].update(classes=["a", "a", "b"])), ["data.classes", "twice"]),
    "pixel-max-missing": (_config(lambda d: d["data"].pop("pixel_max")), ["data.pixel_max is missing"]),
    "pixel-max-null-for-images": (_config(lambda d: d["data"].update(pixel_max=None)), ["data.pixel_max", "null"]),
    "image-shape-off": (_config(lambda d: d["data"].update(image_shape=[27, 28])),
                        ["data.image_shape", "model.n_features = 784"]),
    "image-shape-huge": (_config(lambda d: d["data"].update(image_shape=[100000, 100000])),
                         ["data.image_shape[0]", "100000"]),
    "huge-but-consistent": (_config(lambda d: (d["data"].update(image_shape=[50000, 20000]),
                                               d["model"].update(n_features=10**9))),
                            ["weights do not match config.json", "model.n_features = 1000000000"]),
    "metrics-a-list": (_write("metrics.json", "[1, 2]"), ["metrics.json is damaged", "must be an object"]),
    "metrics-100000-deep": (_write("metrics.json", "[" * 100_000 + "]" * 100_000), ["metrics.json", "nested"]),
    "metrics-not-json": (_write("metrics.json", "{"), ["metrics.json is damaged", "not valid JSON"]),
    "history-text": (_write("history.csv", "epoch,avg_cost\n1,0.5\n2,lots\n"),
                     ["history.csv is damaged", "line 3, column avg_cost", "lots"]),
    "history-no-cost": (_write("history.csv", "epoch\n1\n"), ["history.csv", "avg_cost is missing"]),
    "config-100000-deep": (_write("config.json", "[" * 100_000 + "]" * 100_000), ["config.json", "nested"]),
    "config-huge-number": (_write("config.json", "1" * 5000), ["config.json is damaged"]),
    "seed-too-large": (_config(lambda d: d["train"].update(seed=2**64)), ["train.seed", str(2**64)]),
    "lr-nan": (_config(lambda d: d["train"]["optim"].update(lr=float("nan"))), ["train.optim.lr must be a number in (0, 1e6]", "nan"]),
    "lr-infinite": (_config(lambda d: d["train"]["optim"].update(lr=float("inf"))), ["train.optim.lr", "inf"]),
    "dtype-unknown": (_config(lambda d: d.update(dtype="float16")), ["dtype must be one of float32, float64"]),
    "schema-width-off": (_config(lambda d: d["data"].update(schema={"label": "y", "impute": "none", "columns": [
        {"name": "a", "kind": "numeric", "type": "double"}]})), ["data.schema.columns", "784"]),
    "kind-disagrees": (_config(lambda d: d["train"]["model"].update(kind="mlp")), ["train.model.kind", "softmax"]),
    "label-not-text": (_config(lambda d: d["data"]["source"].update(label=7)), ["data.source.label"]),
    "drop-not-names": (_config(lambda d: d["data"]["source"].update(drop="id")), ["data.source.drop", "column names"]),
    "impute-unknown": (_config(lambda d: d["data"]["source"].update(impute="mode")), ["data.source.impute"]),
    "unknown-data-field": (_config(lambda d: d["data"].update(secret=1)), ["data.secret", "unknown data field"]),
    "format-from-the-future": (_config(lambda d: d.update(format=99, softreg_version="9.9.0")),
                               ["written by softreg 9.9.0 (run format 99)", "upgrade softreg"]),
    "format-not-a-number": (_config(lambda d: d.update(format="2")), ["format must be an integer"]),
    "spec-relative": (_config(lambda d: d["data"]["source"].update(spec="../../../etc/passwd")),
                      ["data.source.spec", "absolute path"]),
    "spec-half-url": (_config(lambda d: d["data"]["source"].update(spec="s3:/bucket/x.csv")),
                      ["data.source.spec", "absolute path or a URL"]),
    "test-relative": (_config(lambda d: d["data"]["source"].update(test="elsewhere/t10k")),
                      ["data.source.test", "absolute path"]),
}


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_damaged_run_gives_one_line_naming_the_field(run_cli, trained_idx_run, tmp_path, case, command):
    damage, words = CASES[case]
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    damage(run)
    extra = ["--index", "0"] if command == "predict" else []
    code, _, err = run_cli(command, run, *extra)
    assert_user_error(code, err, str(run), *words)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_hidden_grown_to_700000_is_refused_before_allocating(run_cli, mlp_run, tmp_path, command):
    import tracemalloc

    run = Path(shutil.copytree(mlp_run, tmp_path / "run"))
    _config(lambda d: d["model"].update(hidden=[700000]))(run)
    tracemalloc.start()
    try:
        code, _, err = run_cli(command, run, *(["--index", "0"] if command == "predict" else []))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_user_error(code, err, "weights do not match config.json", "model.hidden[0] = 700000",
                      "[700000, 784]", "[7, 784]")
    assert peak < 100e6  # the 2.2 GB layer was never allocated


def test_a_runs_weights_are_compared_with_the_header_only(mlp_run, tmp_path, monkeypatch):
    """The tensors themselves are not read before the header agrees with config.json."""
    import safetensors.torch

    run = Path(shutil.copytree(mlp_run, tmp_path / "run"))
    _config(lambda d: d["model"].update(hidden=[8]))(run)

    def loaded(*args, **kwargs):
        raise AssertionError("tensors loaded before the header was checked")

    monkeypatch.setattr(safetensors.torch, "load_file", loaded)
    with pytest.raises(UserInputError, match=r"model.hidden\[0\] = 8 implies net.layers.0.weight"):
        load_run(run)


def test_spec_pointing_at_an_arbitrary_file_is_never_opened(run_cli, trained_idx_run, tmp_path):
    """A tampered data.spec naming a FIFO: opening it would hang; it is refused unread."""
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    _config(lambda d: d["data"]["source"].update(spec=str(fifo)))(run)
    code, _, err = run_cli("evaluate", run)
    assert_user_error(code, err, str(fifo), "unsupported file type")


def test_spec_naming_a_dataset_downloads_only_from_the_catalogue_into_the_users_cache(
        run_cli, trained_idx_run, tmp_path, monkeypatch):
    from softreg.data.idx import catalog

    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    _config(lambda d: d["data"]["source"].update(spec="kmnist"))(run)
    monkeypatch.setattr(catalog.DATASETS["kmnist"], "mirrors", ["http://127.0.0.1:9/"])  # refused at once
    code, _, err = run_cli("evaluate", run, "--data-dir", tmp_path / "cache")
    assert_user_error(code, err, "could not download kmnist", "http://127.0.0.1:9/",
                      str(tmp_path / "cache" / "kmnist"))


def _as_softreg_0_1(doc: dict) -> dict:
    """A format-3 config.json of an IDX run written as softreg 0.1 wrote it: flat settings, no format number."""
    from softreg.training.config import TrainConfig, flat_settings

    flat = flat_settings(TrainConfig.from_dict(doc["train"]))
    flat.pop("dtype"), flat.pop("stall_stop")
    flat.update(recipe=doc["train"]["recipe"], device="cpu", threads=0, log_every=0)
    data = {k: v for k, v in doc["data"].items() if k not in ("source", "origin", "schema")}
    data.update(spec=doc["data"]["source"]["spec"], source=doc["data"]["origin"], label=None)
    return {"softreg_version": "0.1.0", "model": doc["model"], "preprocess": doc["preprocess"], "train": flat,
            "data": data}


def _as_softreg_0_2(doc: dict) -> dict:
    """A format-3 config.json as softreg 0.2 wrote it (format 2): table options under data.options, the
    imputation with the training settings, the origin under data.source."""
    source = doc["data"]["source"]
    data = {k: v for k, v in doc["data"].items() if k not in ("source", "origin")}
    data.update(spec=source["spec"], source=doc["data"]["origin"], label=source["label"],
                options={k: source[k] for k in ("test", "drop", "columns", "header", "sep", "stream")})
    train = {**doc["train"], "data": {**doc["train"]["data"], "impute": source["impute"]}}
    return {**doc, "format": 2, "softreg_version": "0.2.0", "train": train, "data": data}


def test_runs_saved_by_softreg_0_1_are_read(trained_idx_run, tmp_path):
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    original = load_run(run)
    doc = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(_as_softreg_0_1(doc)))
    old = load_run(run)
    assert old.model_config == original.model_config and old.config == original.config
    X = (torch.rand(5, 784) * 255).round()
    assert torch.equal(old.model.predict_proba(X), original.model.predict_proba(X))


def test_runs_saved_by_softreg_0_2_are_read_with_their_table_options(run_cli, tmp_path):
    rows = ["a;b;note;label"] + [f"{i % 2 * 3 + (i % 5) * 0.1};{'' if i % 9 == 0 else i % 7};n{i};{'xy'[i % 2]}"
                                 for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--data", tmp_path / "t.csv", "--sep", ";", "--drop", "note", "--impute", "zero",
                           "--out", run)
    assert code == 0, err
    original = load_run(run)
    doc = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(_as_softreg_0_2(doc)))
    old = load_run(run)
    assert old.source() == original.source() and old.source().impute == "zero" and old.source().drop == ("note",)
    assert old.config == original.config and old.data["origin"] == original.data["origin"]
    code, _, err = run_cli("evaluate", run)  # read again with the 0.2 run's options
    assert code == 0, err


def test_saved_config_declares_its_format(trained_idx_run):
    doc = json.loads((trained_idx_run[1] / "config.json").read_text())
    assert doc["format"] == schema.FORMAT == 3


def test_older_formats_are_upgraded_or_refused_naming_their_softreg(trained_idx_run, tmp_path, monkeypatch):
    """A format is a declaration; an older one is read through its upgrade, or refused."""
    doc = _as_softreg_0_1(json.loads((trained_idx_run[1] / "config.json").read_text()))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    upgraded = runfiles.load_config(path, "9.9")
    assert upgraded["format"] == 3 and upgraded["train"]["optim"]["lr"] == doc["train"]["lr"]
    assert upgraded["data"]["source"]["spec"] == doc["data"]["spec"]
    v1 = schema.FORMATS[1]
    monkeypatch.setitem(schema.FORMATS, 1, schema.RunFormat(1, v1.config, v1.metrics, v1.history_columns,
                                                             v1.agree))  # no upgrade: refused
    with pytest.raises(UserInputError, match=r"written by softreg 0.1.0 \(run format 1\), which softreg 9.9 no "
                                             r"longer reads; train the run again"):
        runfiles.load_config(path, "9.9")


# ------------------------------------------------------------------ the validator itself


@pytest.mark.parametrize("value, spec, message", [
    (True, Int(0, 5), "x must be an integer in [0, 5]; got true"),
    (6, Int(0, 5), "x must be an integer in [0, 5]; got 6"),
    (float("inf"), Real(), "x must be a finite number; got inf"),
    (0.0, Real(0, 1, open_lo=True), "x must be a number in (0, 1]; got 0.0"),
    ("c", Str(("a", "b")), "x must be one of a, b; got \"c\""),
    ("a\x00b", Str(), "x must be a string of at most 4096 characters without NUL; got \"a\\u0000b\""),
    ([1, "2"], List(Int(0, 9)), "x[1] must be an integer in [0, 9]; got \"2\""),
    (list(range(5)), List(Int(0, 9), 0, 3), "x must be a list of 0 to 3 items; got 5 items"),
    ({"a": 1}, Obj({"a": Int(0, 1), "b": Int(0, 1)}, required=("b",)), "x.b is missing"),
    ({"a": 1, "c": 2}, Obj({"a": Int(0, 1)}, noun="setting"), "x.c is an unknown setting (known: a)"),
    ({"a": [[[[1]]]]}, Obj({}, extra=schema.AnyJSON(3)), "x.a is nested more than 3 levels deep"),
])
def test_validator_names_the_field_and_the_rule(value, spec, message):
    with pytest.raises(SchemaError) as info:
        check(value, spec, "x")
    assert str(info.value) == message


def test_validator_accepts_what_it_declares():
    spec = Obj({"n": Int(1, 3), "r": Nullable(Real(0, 1)), "s": List(Str(), 1, 2, unique=True)}, required=("n",))
    doc = {"n": 2, "r": None, "s": ["a", "b"]}
    assert check(doc, spec, "") is doc
