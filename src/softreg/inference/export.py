"""ONNX export: the whole classifier, preprocessing included, as one small graph.

Input ``features``: float32 of shape (batch, n_features), raw values as ``Predictor.encode_rows``
gives them (for images: flattened pixels, 0..pixel_max). Outputs ``probabilities`` (batch, C) and
``label_index`` (batch,) int64, from standard ai.onnx operators alone, so any ONNX engine runs
it; ``labels="string"`` adds ``label`` (batch,) strings through ai.onnx.ml's LabelEncoder, and
``layout="sklearn"`` names and orders things as skl2onnx does for scikit-learn classifiers. The
graph is written node by node (softreg.inference.onnx_graph) rather than traced by
``torch.onnx.export``: softreg's networks are a few Gemm and activation nodes, so the builder is
short, needs only the ``onnx`` package, and can add what tracing cannot (the class names and
image shape as metadata).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softreg.errors import UserInputError
from softreg.inference import onnx_graph as graph
from softreg.settings import check, spell

OPSET = 17  # the default: onnxruntime >= 1.14 and tract run it
MIN_OPSET = 13  # Softmax over one axis, Squeeze-free graph
ML_OPSET = 2  # ai.onnx.ml: LabelEncoder with int64 keys and string values (--labels string only)
NAMES = {  # layout -> (input, probabilities, label_index / label)
    "softreg": ("features", "probabilities", "label_index"),
    "sklearn": ("X", "probabilities", "label"),
}


def require_onnx(runtime: bool = False) -> None:
    """Fail with one line naming the fix when onnx (or onnxruntime) is missing."""
    try:
        import onnx  # noqa: F401

        if runtime:
            import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise UserInputError(f"ONNX export needs {exc.name}, which is not installed; "
                             "run: pip install 'softreg[onnx]'") from None


@dataclass
class Exportable:
    """What an ONNX file is made from: a softreg Classifier, its class labels (the run's names or
    an estimator's ``classes_``), the feature count and the metadata the file carries."""

    model: object
    classes: list
    n_features: int
    meta: dict

    @classmethod
    def of_predictor(cls, predictor) -> "Exportable":
        meta = {"classes": predictor.classes, "n_features": predictor.n_features,
                "image_shape": predictor.image_shape, "pixel_max": predictor.pixel_max,
                "feature_names": predictor.feature_names, "model": predictor.kind, "run": predictor.name}
        return cls(predictor.model, list(predictor.classes), predictor.n_features, meta)


def check_options(labels: str, layout: str, opset: int) -> None:
    """The export settings' rules (softreg.settings), and the opset the installed onnx knows."""
    import onnx

    for name, value in (("labels", labels), ("layout", layout), ("opset", opset)):
        check(name, value, spell(name))
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise UserInputError(f"{spell('opset', opset)}: the installed onnx {onnx.__version__} knows opsets up "
                             f"to {newest}; give {spell('opset', OPSET)} or upgrade onnx.")
    if layout == "sklearn" and labels == "string":
        raise UserInputError(f"{spell('labels', 'string')} adds a string label to the softreg layout; "
                             f"{spell('layout', 'sklearn')} already labels with the classes themselves, "
                             "so leave one of them out.")


def to_onnx(source, *, labels: str = "index", layout: str = "softreg", opset: int = OPSET):
    """An ``onnx.ModelProto`` computing the classifier's probabilities and labels from raw features.

    source : a Predictor, or an Exportable (softreg.export.to_onnx accepts run folders and estimators).
    labels : ``index`` (outputs ``probabilities`` and ``label_index``: standard ai.onnx operators only)
        or ``string`` (also ``label``, the class names, through ai.onnx.ml's LabelEncoder).
    layout : ``softreg`` (input ``features``) or ``sklearn`` (skl2onnx's names and order: input ``X``;
        outputs ``label``, the class labels, int64 or strings, then ``probabilities``).
    opset : the ai.onnx opset the file declares, 13 or later.
    """
    require_onnx()
    check_options(labels, layout, opset)
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    item = source if isinstance(source, Exportable) else Exportable.of_predictor(source)
    x, probabilities, label = NAMES[layout]
    g = graph.Nodes()
    C = len(item.classes)
    index = "label_index" if layout == "softreg" else "label_index_"
    graph.classifier(g, item.model, x, probabilities, index)
    opsets = [helper.make_opsetid("", opset)]
    outputs = [helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, ["batch", C])]
    if layout == "sklearn":
        values = graph.label_array(item.classes)
        graph.class_values(g, index, values, label)
        kind = TensorProto.INT64 if values.dtype == np.int64 else TensorProto.STRING
        outputs.insert(0, helper.make_tensor_value_info(label, kind, ["batch"]))
    else:
        outputs.append(helper.make_tensor_value_info(index, TensorProto.INT64, ["batch"]))
        if labels == "string":
            g.add("LabelEncoder", [index], "label", domain="ai.onnx.ml", keys_int64s=list(range(C)),
                  values_strings=[str(c) for c in item.classes], default_string="")
            outputs.append(helper.make_tensor_value_info("label", TensorProto.STRING, ["batch"]))
            opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    nodes = [helper.make_node(op, ins, outs, domain=domain or None, **attrs) for op, ins, outs, attrs, domain in g.nodes]
    inits = [numpy_helper.from_array(value, name) for name, value in g.constants.items()]
    proto = helper.make_graph(nodes, "softreg_classifier",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", item.n_features])],
                              outputs, inits)
    onnx_model = helper.make_model(proto, producer_name="softreg", producer_version=_version(), opset_imports=opsets)
    onnx_model.ir_version = helper.find_min_ir_version_for(opsets)  # the oldest readers can open it
    helper.set_model_props(onnx_model, {k: json.dumps(v) for k, v in item.meta.items()})
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export_onnx(source, out: str | Path, **options) -> Path:
    """Write ``to_onnx(source, **options)`` to ``out`` atomically (temporary file, then rename)."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise UserInputError(f"{spell('out', out)}: give a file name ending in .onnx.")
    folder = out.absolute().parent
    if not folder.is_dir():
        raise UserInputError(f"{spell('out', out)}: folder {folder} does not exist; create it or pick another path.")
    data = to_onnx(source, **options).SerializeToString()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        raise UserInputError(f"{spell('out', out)}: cannot write there ({exc.strerror or exc}); pick another path.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return out


def run_onnx(path: str | Path, X: np.ndarray) -> dict[str, np.ndarray]:
    """Run an exported file with onnxruntime alone: its outputs by name."""
    require_onnx(runtime=True)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: np.asarray(X, dtype=np.float32)})))


def check_onnx(path: str | Path, predictor, X: torch.Tensor) -> float:
    """Largest |onnxruntime - softreg| probability difference on raw inputs X (N, n_features)."""
    got = run_onnx(path, X.reshape(X.shape[0], -1).numpy())
    expected = predictor.predict_proba(X).numpy()
    return float(np.abs(got["probabilities"] - expected).max()) if len(expected) else 0.0


def _version() -> str:
    from softreg import __version__

    return __version__
