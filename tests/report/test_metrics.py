"""Metrics against scikit-learn on random predictions, and `softreg evaluate` writing evaluation.json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_user_error
from sklearn import metrics as skm

from softreg.data import load_dataset
from softreg.report.metrics import (
    classification_metrics,
    confusion_matrix,
    evaluate_split,
    format_metrics,
    top_k_accuracy,
)
from softreg.models import MLP, Classifier, Preprocess
from softreg.runs.folder import load_run


def _sklearn_metrics(scores: torch.Tensor, y: torch.Tensor, n_classes: int, k: int) -> dict:
    """The same metrics computed by scikit-learn from the probabilities."""
    if scores.ndim == 1:
        p1 = torch.sigmoid(scores.double())
        probs = torch.stack([1 - p1, p1], dim=1).numpy()
        pred = (scores >= 0).long().numpy()
    else:
        probs = torch.softmax(scores.double(), dim=1).numpy()
        pred = probs.argmax(axis=1)
    y = y.numpy()
    labels = list(range(n_classes))
    if n_classes == 2:  # scikit-learn takes P(class 1) for binary targets
        top_k = 1.0 if k >= 2 else skm.top_k_accuracy_score(y, probs[:, 1], k=1, labels=labels)
    else:
        top_k = skm.top_k_accuracy_score(y, probs, k=k, labels=labels)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    macro = skm.precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=0)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "log_loss": skm.log_loss(y, probs, labels=labels),
        "top_k_accuracy": top_k,
        "precision": p, "recall": r, "f1": f, "support": s,
        "macro": dict(zip(("precision", "recall", "f1"), macro[:3])),
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels),
    }


def _check_against_sklearn(scores: torch.Tensor, y: torch.Tensor, n_classes: int, k: int) -> None:
    classes = [f"class {i}" for i in range(n_classes)]
    ours = classification_metrics(scores, y, classes, top_k=k)
    ref = _sklearn_metrics(scores, y, n_classes, min(k, n_classes))
    assert ours["n"] == len(y) and ours["top_k"] == min(k, n_classes)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-12)
    assert ours["log_loss"] == pytest.approx(ref["log_loss"], rel=1e-6)
    assert ours["top_k_accuracy"] == pytest.approx(ref["top_k_accuracy"], abs=1e-12)
    for key in ("precision", "recall", "f1"):
        np.testing.assert_allclose([row[key] for row in ours["per_class"]], ref[key], atol=1e-12)
        assert ours["macro"][key] == pytest.approx(ref["macro"][key], abs=1e-12)
    assert [row["support"] for row in ours["per_class"]] == ref["support"].tolist()
    assert [row["class"] for row in ours["per_class"]] == classes
    assert ours["confusion_matrix"] == ref["confusion_matrix"].tolist()


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")  # k=9 of 4 classes
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_classes, k", [(3, 2), (7, 5), (10, 1), (4, 9)])
def test_multiclass_metrics_match_sklearn(seed, n_classes, k):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(300, n_classes, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, n_classes, (300,), generator=g)
    _check_against_sklearn(scores, y, n_classes, k)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5])
def test_binary_head_metrics_match_sklearn(seed, k):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(250, generator=g, dtype=torch.float64) * 3  # (N,): one logit per sample
    y = torch.randint(0, 2, (250,), generator=g)
    _check_against_sklearn(logits, y, 2, k)


def test_zero_division_and_absent_classes_match_sklearn():
    # class 3 never occurs and is never predicted; class 2 occurs but is never predicted
    scores = torch.tensor([[5.0, 0, 0, 0], [0, 5, 0, 0], [5, 0, 0, 0], [0, 5, 0, 0], [0, 5, 0, 0]])
    y = torch.tensor([0, 1, 2, 2, 1])
    _check_against_sklearn(scores, y, 4, 2)
    result = classification_metrics(scores, y, list("abcd"))
    assert result["per_class"][3] == {"class": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_top_1_equals_argmax_accuracy_under_ties():
    scores = torch.zeros(6, 4)  # every class tied: argmax picks class 0
    y = torch.tensor([0, 1, 2, 3, 0, 0])
    assert top_k_accuracy(y, scores, 1) == pytest.approx(0.5)
    assert top_k_accuracy(y, scores, 2) == pytest.approx(4 / 6)  # ties rank by index: 0 and 1 are the top 2


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 2, 1, 1]), 3)
    assert cm.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 0]]


def test_evaluate_split_matches_the_training_score_and_runs_on_a_binary_mlp():
    torch.manual_seed(0)
    net = MLP(6, [5], 2)
    model = Classifier(net, Preprocess(6, "none"), 2)
    from softreg.data.base import Split
    from softreg.data.sources import InMemorySource
    from softreg.training.loop import evaluate_source

    split = Split(torch.randn(40, 6), torch.randint(0, 2, (40,)))
    full = evaluate_split(model, split, ["no", "yes"])
    assert evaluate_split(model, InMemorySource(split.X, split.y), ["no", "yes"]) == full  # chunked: same
    short = evaluate_source(model, InMemorySource(split.X, split.y))
    assert full["log_loss"] == pytest.approx(short["loss"], rel=1e-6)
    assert full["accuracy"] == short["accuracy"]
    assert full["top_k"] == 2 and full["top_k_accuracy"] == 1.0
    _check_against_sklearn(model(split.X).detach().double(), split.y, 2, 1)


def test_format_metrics_names_classes_not_indices():
    scores = torch.eye(3) * 4
    text = format_metrics(classification_metrics(scores, torch.tensor([0, 1, 2]), ["T-shirt/top", "Ankle boot", "Bag"]))
    for name in ("T-shirt/top", "Ankle boot", "Bag", "macro average", "top-3 accuracy", "confusion matrix"):
        assert name in text
    rows = [line for line in text.splitlines() if line.strip().startswith("Ankle boot")]
    assert len(rows) == 2  # its per-class row, then its confusion matrix row
    assert rows[0].split()[-4:] == ["1.0000", "1.0000", "1.0000", "1"]
    assert rows[1].split()[-3:] == ["0", "1", "0"]


# ------------------------------------------------------------- the command


@pytest.fixture
def run_copy(trained_idx_run, tmp_path) -> Path:
    """A private copy of the session run (`evaluate` writes into the run folder), never evaluated yet."""
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    (run / "evaluation.json").unlink(missing_ok=True)  # left by other tests' `evaluate` of the shared run
    return run


def _summary_number(stdout: str, label: str) -> float:
    return float(re.search(rf"^  {re.escape(label)}\s+(\S+)$", stdout, re.M).group(1))


def test_evaluate_writes_evaluation_json_equal_to_the_printed_numbers(run_cli, run_copy, trained_idx_run):
    code, stdout, err = run_cli("evaluate", run_copy, "--device", "cpu")
    assert code == 0, err
    doc = json.loads((run_copy / "evaluation.json").read_text())
    assert f"wrote {run_copy / 'evaluation.json'}" in stdout
    assert set(doc["splits"]) == {"train", "test"} and doc["classes"] == ["0", "1", "2"]
    test = doc["splits"]["test"]
    assert _summary_number(stdout, "accuracy") == pytest.approx(test["accuracy"], abs=5e-5)
    assert _summary_number(stdout, "log loss") == pytest.approx(test["log_loss"], abs=5e-5)
    assert _summary_number(stdout, "top-3 accuracy") == pytest.approx(test["top_k_accuracy"], abs=5e-5)
    assert _summary_number(stdout, "macro F1") == pytest.approx(test["macro"]["f1"], abs=5e-5)
    for split in ("train", "test"):
        line = re.search(rf"^{split}\s+loss (\S+)\s+accuracy (\S+)$", stdout, re.M)
        assert float(line.group(1)) == pytest.approx(doc["splits"][split]["log_loss"], abs=1e-6)
    # the file holds what the library computes from the run
    run = load_run(run_copy)
    dataset = load_dataset(str(trained_idx_run[0]))
    again = evaluate_split(run.model, dataset.test, run.data["classes"])
    assert again["confusion_matrix"] == test["confusion_matrix"] and again["per_class"] == test["per_class"]
    assert again["log_loss"] == pytest.approx(test["log_loss"], rel=1e-12)
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_evaluate_top_k_option_and_no_save(run_cli, run_copy):
    code, stdout, err = run_cli("evaluate", run_copy, "--top-k", "2", "--no-save")
    assert code == 0, err
    assert "top-2 accuracy" in stdout
    assert not (run_copy / "evaluation.json").exists()


def test_evaluate_bad_top_k_exits_2(run_cli, run_copy):
    code, _, err = run_cli("evaluate", run_copy, "--top-k", "0")
    assert_user_error(code, err, "--top-k must be an integer >= 1", "got 0")


def test_evaluate_unwritable_run_folder_exits_2(run_cli, run_copy, monkeypatch):
    import errno
    import os

    real_open = os.open

    def refuse(path, *args, **kwargs):  # what a read-only folder does to the temporary file (root ignores chmod)
        if str(path).endswith(".softreg-tmp"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    code, _, err = run_cli("evaluate", run_copy)
    assert_user_error(code, err, "evaluation.json", "permission denied", "--no-save")
