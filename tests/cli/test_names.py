"""Names on the command line: any case, other spellings, the closest name suggested, choices in --help."""

from __future__ import annotations

import importlib

import pytest

from softreg.data.names import BUILTIN, DATASET_ALIASES, NAMED_IDX
from softreg.data.idx import catalog
from softreg.errors import UserInputError
from helpers import assert_user_error, call_main

cli_app = importlib.import_module("softreg.cli.app")  # softreg.cli.app the attribute is the Typer object


def test_the_cli_knows_the_declared_dataset_names_and_spellings():
    assert set(cli_app.choices("data")) == set(BUILTIN + NAMED_IDX)
    for alias, name in DATASET_ALIASES.items():
        assert cli_app.data_spec(alias.upper()) == name
        assert catalog._lookup(alias).name == name


@pytest.mark.parametrize("given, option, want", [
    ("Adam", "optimizer", "adam"), ("SGD", "optimizer", "sgd"), (" lbfgs ", "optimizer", "lbfgs"),
    ("MLP", "model", "mlp"), ("ReLU", "activation", "relu"), ("Lesson-Table", "recipe", "lesson-table"),
    (None, "optimizer", None),
])
def test_pick_ignores_case(given, option, want):
    assert cli_app.pick(given, option) == want


@pytest.mark.parametrize("given, option, suggestion", [
    ("adma", "optimizer", "'adam'"), ("sdg", "optimizer", "'sgd'"), ("softmx", "model", "'softmax'"),
    ("cosin", "schedule", "'cosine'"), ("lesson-tabel", "recipe", "'lesson-table'"),
])
def test_pick_suggests_the_closest_name(given, option, suggestion):
    with pytest.raises(UserInputError) as info:
        cli_app.pick(given, option)
    message = str(info.value)
    assert f"--{option}" in message and repr(given) in message and f"Did you mean {suggestion}" in message


def test_pick_without_a_close_name_lists_them_all():
    with pytest.raises(UserInputError, match=r"one of sgd, adam, lbfgs; got 'zzzz'\. Example") as info:
        cli_app.pick("zzzz", "optimizer")
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize("given, want", [
    ("Fashion-MNIST", "fashion-mnist"), ("MNIST", "mnist"), ("Digits", "digits"), ("FMNIST", "fashion-mnist"),
    ("fashion_mnist", "fashion-mnist"), ("Kuzushiji-MNIST", "kmnist"), ("XOR", "xor"),
    ("table.csv", "table.csv"), ("data/Fashion", "data/Fashion"),
])
def test_data_names_in_any_case_and_paths_as_given(given, want):
    assert cli_app.data_spec(given) == want


def test_an_existing_folder_is_a_path(tmp_path, monkeypatch):
    (tmp_path / "Shirts").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli_app.data_spec("Shirts") == "Shirts"


def test_an_unknown_dataset_name_gets_a_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserInputError, match="Did you mean 'fashion-mnist'"):
        cli_app.data_spec("fashon-mnist")


def test_evaluate_takes_a_dataset_name_in_any_case(run_cli, tmp_path):
    run = tmp_path / "run"
    assert call_main(["train", "--epochs", "2", "--device", "cpu", "--out", run]) == 0  # digits
    code, out, err = run_cli("evaluate", run, "--data", "DIGITS", "--no-save")
    assert code == 0, err
    assert "data: digits" in out


def test_evaluate_with_a_misspelt_dataset_is_one_line(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("evaluate", tmp_path / "run", "--data", "kmnits")
    assert_user_error(code, err, "--data", "'kmnits'", "did you mean 'kmnist'")


def test_help_shows_the_choices(run_cli):
    code, out, _ = run_cli("evaluate", "--help")
    assert code == 0
    assert "--data [NAME|PATH]" in out and "[auto|cpu|cuda|cuda:N]" in out
    assert "<str>" not in out.split("--data-dir")[0]
    assert cli_app.metavar("optimizer") == "[sgd|adam|lbfgs]"


def test_root_help_offers_version_and_completion(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    for option in ("--version", "--install-completion", "--show-completion"):
        assert option in out
