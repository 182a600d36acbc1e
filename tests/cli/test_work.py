"""Commands do only the work their answer needs."""

from __future__ import annotations

import torch

from softreg.inference.images import png_bytes
from softreg.inference.novelty import Novelty


def test_predict_test_sample_fits_no_novelty_model(run_cli, trained_idx_run, tmp_path, monkeypatch):
    """A sample of the run's own test split is scored without fitting the novelty check;
    a picture from elsewhere still gets it."""
    folder, run = trained_idx_run
    fits = []
    original = Novelty.fit.__func__
    monkeypatch.setattr(Novelty, "fit", classmethod(lambda cls, *a, **k: fits.append(1) or original(cls, *a, **k)))
    for args in (["--index", "0"], ["--random", "--seed", "1"]):
        code, out, err = run_cli("predict", run, *args)
        assert code == 0, err
        assert "predicted" in out
    assert fits == []
    picture = tmp_path / "band.png"
    image = torch.zeros(28, 28)
    image[4:10, 4:24] = 255
    picture.write_bytes(png_bytes(image, 255.0))
    code, out, err = run_cli("predict", run, picture)
    assert code == 0, err
    assert fits == [1]


def test_predict_features_beyond_float32_is_one_line(run_cli, tmp_path):
    from helpers import assert_user_error

    run = tmp_path / "toy"
    assert run_cli("train", "--data", "toy", "--epochs", "2", "--out", run)[0] == 0
    code, out, err = run_cli("predict", run, "--features", "1e300,2,3,4")
    line = assert_user_error(code, err, "1e+300", "position 0", "float32")
    assert "Warning" not in line and out == ""
