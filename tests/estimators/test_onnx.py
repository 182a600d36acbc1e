"""Fitted estimators as ONNX: softreg.export.to_onnx and skl2onnx's converter, run by onnxruntime
and tract against the estimators' own predict_proba."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from softreg import LogisticRegressionClassifier, MLPClassifier, SoftmaxRegressionClassifier  # noqa: E402
from softreg.export import to_onnx  # noqa: E402

X, Y = load_iris(return_X_y=True)
ESTIMATORS = {
    "softmax": (lambda: SoftmaxRegressionClassifier(), Y),
    "logistic": (lambda: LogisticRegressionClassifier(), np.where(Y > 0, "yes", "no")),
    "mlp": (lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=30), Y),
}


def _run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("layout", ["softreg", "sklearn"])
def test_a_fitted_estimator_exports(name, layout, tmp_path):
    make, y = ESTIMATORS[name]
    est = make().fit(X, y)
    model = to_onnx(est, layout=layout)
    got = _run(model, X)
    assert np.abs(got["probabilities"] - est.predict_proba(X)).max() < 1e-5
    if layout == "sklearn":
        assert list(got) == ["label", "probabilities"] and list(got["label"]) == list(est.predict(X))
    else:
        assert np.array_equal(est.classes_[got["label_index"]], est.predict(X))
    tract = pytest.importorskip("tract")
    if layout == "sklearn" and name == "logistic":
        return  # string labels: tract has no string tensors
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    outputs = [t.to_numpy() for t in tract.onnx().load(str(path)).into_model().into_runnable()
               .run([X.astype(np.float32)])]
    probabilities = outputs[[o.name for o in model.graph.output].index("probabilities")]
    assert np.abs(probabilities - est.predict_proba(X)).max() < 1e-5


def test_a_pipeline_converts_with_skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx")
    from softreg.estimators.onnx import register_skl2onnx

    register_skl2onnx()
    pipe = make_pipeline(StandardScaler(), SoftmaxRegressionClassifier()).fit(X, Y)
    got = _run(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), options={"zipmap": False}), X)
    assert np.abs(got["probabilities"] - pipe.predict_proba(X)).max() < 1e-5
    assert np.array_equal(got["label"], pipe.predict(X))
