"""ONNX export: the whole classifier, preprocessing included, as one small graph.

Input ``features``: float32 of shape (batch, n_features), raw values as ``Predictor.encode_rows``
gives them (for images: flattened pixels, 0..pixel_max). Outputs ``probabilities`` (batch, C),
``label_index`` (batch,) int64 and ``label`` (batch,) strings. The graph is written node by node
with ``onnx.helper`` rather than traced by ``torch.onnx.export``: softreg's networks are a few
Gemm and activation nodes, so the builder is short, needs only the ``onnx`` package (torch's
exporter now wants onnxscript too), and can add what tracing cannot (the string labels through
ai.onnx.ml's LabelEncoder, the class names and image shape as metadata).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.settings import spell

OPSET = 17  # onnxruntime >= 1.14 runs it
ML_OPSET = 2  # ai.onnx.ml: LabelEncoder with int64 keys and string values
ACTIVATIONS = {torch.nn.ReLU: "Relu", torch.nn.Sigmoid: "Sigmoid", torch.nn.Tanh: "Tanh"}


def require_onnx(runtime: bool = False) -> None:
    """Fail with one line naming the fix when onnx (or onnxruntime) is missing."""
    try:
        import onnx  # noqa: F401

        if runtime:
            import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise UserInputError(f"ONNX export needs {exc.name}, which is not installed; "
                             "run: pip install 'softreg[onnx]'") from None


def _layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The network's Linear layers and activations, in order; refuses anything else."""
    leaves = [m for m in net.modules() if not list(m.children())]
    for m in leaves:
        if not isinstance(m, (torch.nn.Linear, *ACTIVATIONS)):
            raise UserInputError(f"cannot export a network with a {type(m).__name__} layer to ONNX; "
                                 "softreg exports softmax, logistic and MLP (ReLU, sigmoid, tanh) models.")
    if not leaves or not isinstance(leaves[-1], torch.nn.Linear):
        raise UserInputError("cannot export this network to ONNX: it does not end in a linear layer.")
    return leaves


def to_onnx(predictor):
    """An ``onnx.ModelProto`` computing ``predictor``'s probabilities and labels from raw features."""
    require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    model = predictor.model
    pre = model.preprocess
    F, classes = predictor.n_features, predictor.classes
    nodes, inits = [], []

    def const(name: str, tensor: torch.Tensor | np.ndarray) -> str:
        array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    x = "features"
    if pre.kind == "standardize":  # (x - shift) * scale, as softreg.models.Preprocess
        nodes.append(helper.make_node("Sub", [x, const("shift", pre.shift.float())], ["centred"]))
        nodes.append(helper.make_node("Mul", ["centred", const("scale", pre.scale.float())], ["h0"]))
        x = "h0"
    elif pre.kind in ("pixels", "scale"):  # x * scale (scale: sparse features, never centred)
        nodes.append(helper.make_node("Mul", [x, const("scale", pre.scale.float())], ["h0"]))
        x = "h0"
    elif pre.kind != "none":
        raise UserInputError(f"cannot export preprocessing {pre.kind!r} to ONNX; train with {spell('preprocess', 'none')}, "
                             "pixels or standardize to export.")
    layers = _layers(model.net)
    for i, layer in enumerate(layers):
        out = f"h{i + 1}"
        if isinstance(layer, torch.nn.Linear):
            inputs = [x, const(f"W{i}", layer.weight.float())]  # (out, in): Gemm with transB
            if layer.bias is not None:
                inputs.append(const(f"b{i}", layer.bias.float()))
            nodes.append(helper.make_node("Gemm", inputs, [out], transB=1))
        else:
            nodes.append(helper.make_node(ACTIVATIONS[type(layer)], [x], [out]))
        x = out
    if layers[-1].out_features == 1:  # a binary head's one logit z: P(1) = sigmoid(z)
        nodes += [helper.make_node("Neg", [x], ["minus_z"]),
                  helper.make_node("Sigmoid", ["minus_z"], ["p0"]),
                  helper.make_node("Sigmoid", [x], ["p1"]),
                  helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
                  # softreg's rule: class 1 when z >= 0 (P(1) >= 0.5), ties included
                  helper.make_node("GreaterOrEqual", [x, const("zero", np.zeros(1, np.float32))], ["is_one"]),
                  helper.make_node("Cast", ["is_one"], ["is_one_int"], to=TensorProto.INT64),
                  helper.make_node("Squeeze", ["is_one_int", const("axis1", np.array([1], np.int64))],
                                   ["label_index"])]
    else:
        nodes += [helper.make_node("Softmax", [x], ["probabilities"], axis=1),
                  helper.make_node("ArgMax", ["probabilities"], ["label_index"], axis=1, keepdims=0)]
    nodes.append(helper.make_node("LabelEncoder", ["label_index"], ["label"], domain="ai.onnx.ml",
                                  keys_int64s=list(range(len(classes))), values_strings=list(classes),
                                  default_string=""))
    graph = helper.make_graph(
        nodes, "softreg_classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", F])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(classes)]),
         helper.make_tensor_value_info("label_index", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("label", TensorProto.STRING, ["batch"])],
        inits)
    onnx_model = helper.make_model(graph, producer_name="softreg", producer_version=_version(),
                                   opset_imports=[helper.make_opsetid("", OPSET),
                                                  helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    onnx_model.ir_version = 8  # readable by onnxruntime >= 1.14
    meta = {"classes": classes, "n_features": F, "image_shape": predictor.image_shape,
            "pixel_max": predictor.pixel_max, "feature_names": predictor.feature_names,
            "model": predictor.kind, "run": predictor.name}
    helper.set_model_props(onnx_model, {k: json.dumps(v) for k, v in meta.items()})
    import onnx

    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export_onnx(predictor, out: str | Path) -> Path:
    """Write ``to_onnx(predictor)`` to ``out`` atomically (temporary file, then rename)."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise UserInputError(f"{spell('out', out)}: give a file name ending in .onnx.")
    folder = out.absolute().parent
    if not folder.is_dir():
        raise UserInputError(f"{spell('out', out)}: folder {folder} does not exist; create it or pick another path.")
    data = to_onnx(predictor).SerializeToString()
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
    """Run an exported file with onnxruntime alone: {"probabilities", "label_index", "label"}."""
    require_onnx(runtime=True)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"features": np.asarray(X, dtype=np.float32)})))


def check_onnx(path: str | Path, predictor, X: torch.Tensor) -> float:
    """Largest |onnxruntime - softreg| probability difference on raw inputs X (N, n_features)."""
    got = run_onnx(path, X.reshape(X.shape[0], -1).numpy())
    expected = predictor.predict_proba(X).numpy()
    return float(np.abs(got["probabilities"] - expected).max()) if len(expected) else 0.0


def _version() -> str:
    from softreg import __version__

    return __version__
