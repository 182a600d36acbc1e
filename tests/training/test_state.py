"""Checkpoints: a run interrupted at any update and resumed ends with the same weights, bit for
bit, as the same run never interrupted."""

from __future__ import annotations

import pytest
import torch

from helpers import easy_images
from softreg.data.base import Dataset, Split
from softreg.errors import UserInputError
from softreg.training import Callback, make_config, read_checkpoint, train
from softreg.training.callbacks import Checkpointer


class Interrupt(Callback):
    """Raise KeyboardInterrupt once ``step`` updates are done, within the epoch or at its end
    (after the checkpointer ran)."""

    def __init__(self, step: int, mid_epoch: bool):
        self.step, self.mid_epoch = step, mid_epoch

    def on_step(self, state):
        if self.mid_epoch and state.step == self.step:
            raise KeyboardInterrupt

    def on_epoch(self, state, row):
        if not self.mid_epoch and state.step == self.step:
            raise KeyboardInterrupt


def _sparse_rows(n=240, f=300, seed=0) -> Dataset:
    """CSR rows (a feature-major sparse model, whose updates add into their buffers in place)."""
    import numpy as np
    import scipy.sparse as sp

    from softreg.models.sparse import from_scipy

    rng = np.random.default_rng(seed)
    X = sp.random(n + 60, f, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    y = torch.from_numpy(np.asarray(X[:, :3].sum(axis=1)).ravel().round().astype(np.int64) % 3)
    y[rng.random(n + 60) < 0.1] = 0
    T = from_scipy(X)
    from softreg.models.sparse import row_range

    return Dataset("sparse", Split(row_range(T, 0, n), y[:n]), Split(row_range(T, n, n + 60), y[n:]),
                   ["a", "b", "c"], index_base=0)


def _images(n=240) -> Dataset:
    X, y = easy_images(n)
    Xt, yt = easy_images(60, seed=5)
    return Dataset("bands", Split(X, y), Split(Xt, yt), ["a", "b", "c"], image_shape=(28, 28), pixel_max=255.0)


CASES = {
    "default-linear-averaged": dict(epochs=6, batch_size=32),
    "lesson-plain-sgd": dict(recipe="lesson", epochs=4, batch_size=20),
    "mlp-adam-cosine": dict(model="mlp", hidden=[16], epochs=6, batch_size=32),
    "lbfgs": dict(optimizer="lbfgs", lr=1.0, epochs=5),
    "sparse-linear-averaged": dict(epochs=6, batch_size=32, sparse=True),
    "early-stopping": dict(model="mlp", hidden=[8], optimizer="adam", lr=0.01, epochs=12, batch_size=32,
                           validation_fraction=0.25, early_stopping=True, patience=2),
}


def _assert_same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _config(case: dict):
    settings = dict(case)
    recipe = settings.pop("recipe", None)
    return make_config(recipe, **settings)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("mid_epoch", [False, True], ids=["epoch-boundary", "mid-epoch"])
def test_resumed_run_equals_an_uninterrupted_run(tmp_path, case, mid_epoch):
    settings = dict(CASES[case])
    data = _sparse_rows() if settings.pop("sparse", False) else _images()
    config = _config(settings)
    whole = train(data, config)
    steps = whole.state.step  # updates actually done (early stopping may end sooner)
    stop_at = max(1, int(0.7 * steps))
    if not mid_epoch:
        stop_at = max(1, stop_at // whole.plan.steps_per_epoch) * whole.plan.steps_per_epoch
    saver = Checkpointer(tmp_path, {"note": "test"}, every=1, seconds=1e-9 if mid_epoch else 0.0)
    with pytest.raises(KeyboardInterrupt):
        train(data, config, callbacks=[saver, Interrupt(stop_at, mid_epoch)])
    tensors, doc = read_checkpoint(tmp_path)
    assert doc["run"] == {"note": "test"}
    assert doc["state"]["step"] == stop_at
    resumed = train(data, config, resume=(tensors, doc["state"]))
    _assert_same_model(resumed.model, whole.model)
    assert resumed.history.rows[-1]["avg_cost"] == whole.history.rows[-1]["avg_cost"]
    assert [r["epoch"] for r in resumed.history.rows] == [r["epoch"] for r in whole.history.rows]
    assert resumed.metrics["test_accuracy"] == whole.metrics["test_accuracy"]


def test_missing_and_damaged_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(UserInputError, match="no checkpoint to resume from"):
        read_checkpoint(tmp_path)
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(UserInputError, match="is damaged"):
        read_checkpoint(tmp_path)
