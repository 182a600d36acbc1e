"""Runs the serving tests share (trained once per session), their Predictors and a server of all of them."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import call_main, write_idx_folder

N_TEST = 1000
BODY_LIMIT = 512 * 1024


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    """images: softmax on 28x28 IDX pictures (3 classes, 1,000 test images); mlp: an MLP on the same;
    table: the toy table; shop: a CSV with text columns; sparse: an svmlight model of 500 features."""
    base = tmp_path_factory.mktemp("serve")
    folder = write_idx_folder(base / "idx", n_train=300, n_test=N_TEST)
    out = {name: base / name for name in ("images", "mlp", "table", "shop", "sparse")}
    assert call_main(["train", "--data", folder, "--epochs", "3", "--device", "cpu", "--out", out["images"]]) == 0
    assert call_main(["train", "--data", folder, "--model", "mlp", "--hidden", "16", "--epochs", "3",
                      "--device", "cpu", "--out", out["mlp"]]) == 0
    assert call_main(["train", "--data", "toy", "--epochs", "20", "--device", "cpu", "--out", out["table"]]) == 0
    rng = np.random.default_rng(0)
    lines = ["colour,size,shape,price"]
    for _ in range(300):  # the label follows the colour and the size
        colour, shape = rng.choice(["red", "green", "blue"]), rng.choice(["round", "square"])
        size = round(float(rng.uniform(0, 10)), 2)
        price = "high" if (colour == "red") ^ (size > 5) else "low"
        lines.append(f"{colour},{size},{shape},{price}")
    (base / "shop.csv").write_text("\n".join(lines) + "\n")
    assert call_main(["train", "--data", base / "shop.csv", "--label", "price", "--epochs", "30", "--device", "cpu",
                      "--out", out["shop"]]) == 0
    lines = []
    for _ in range(400):  # the class is which of features 1..3 is largest; 500 features, a few set per row
        values = {j: round(float(rng.uniform(0.1, 2)), 3) for j in sorted(rng.choice(np.arange(1, 501), 6, False))}
        values.update({j: round(float(rng.uniform(0, 1)), 3) for j in (1, 2, 3)})
        label = max((1, 2, 3), key=values.get)
        lines.append(f"{label} " + " ".join(f"{j}:{v}" for j, v in sorted(values.items())))
    (base / "rows.svm").write_text("\n".join(lines) + "\n")
    assert call_main(["train", "--data", base / "rows.svm", "--epochs", "5", "--device", "cpu",
                      "--out", out["sparse"]]) == 0
    return {"folder": folder, **out}


@pytest.fixture(scope="session")
def predictors(runs) -> dict:
    from softreg.inference.predictor import Predictor

    return {name: Predictor.from_run(runs[name]) for name in ("images", "mlp", "table", "shop", "sparse")}


@pytest.fixture(scope="session")
def server(predictors):
    pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'softreg[serve]'")
    from softreg.serve.app import create_app
    from softreg.serve.server import BackgroundServer

    with BackgroundServer(create_app(list(predictors.values()), max_body_bytes=BODY_LIMIT)) as running:
        yield running


@pytest.fixture(scope="session")
def test_images(runs):
    from softreg.data import load_dataset

    return load_dataset(str(runs["folder"])).test.X  # (1000, 28, 28) uint8
