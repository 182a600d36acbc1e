"""The ONNX nodes of a classifier, written as plain data: (op, inputs, outputs, attributes).

Both ways a softreg model becomes ONNX read the same list: the stand-alone export
(softreg.inference.export, through ``onnx.helper``) and skl2onnx's converter for the
estimators (softreg.estimators.onnx, through skl2onnx's container). Only standard ``ai.onnx``
operators of opset 13 and later appear here, so every ONNX engine that runs Gemm, Softmax and
ArgMax runs the graph (tract included); the string label, which needs ``ai.onnx.ml``, is the
caller's choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.settings import spell

ACTIVATIONS = {torch.nn.ReLU: "Relu", torch.nn.Sigmoid: "Sigmoid", torch.nn.Tanh: "Tanh"}


def _numbered() -> Callable[[str], str]:
    """base -> base, base_1, base_2, ...: a name used once in the graph."""
    seen: dict[str, int] = {}

    def fresh(base: str) -> str:
        seen[base] = seen.get(base, -1) + 1
        return base if seen[base] == 0 else f"{base}_{seen[base]}"

    return fresh


@dataclass
class Nodes:
    """Nodes and constants in the order they are added; ``fresh`` names intermediate values."""

    fresh: Callable[[str], str] = field(default_factory=_numbered)
    nodes: list[tuple[str, list[str], list[str], dict, str]] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, op: str, inputs: list[str], out: str | None = None, domain: str = "", **attrs) -> str:
        out = out or self.fresh(op.lower())
        self.nodes.append((op, inputs, [out], attrs, domain))
        return out

    def const(self, base: str, value: torch.Tensor | np.ndarray) -> str:
        array = value.detach().cpu().float().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        name = self.fresh(base)
        self.constants[name] = np.ascontiguousarray(array)
        return name


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


def classifier(g: Nodes, model, x: str, probabilities: str, label_index: str) -> None:
    """Add ``model``'s nodes (a softreg Classifier): float32 ``x`` (batch, F) of raw features in;
    ``probabilities`` (batch, C) float32 and ``label_index`` (batch,) int64 out."""
    pre = model.preprocess
    if pre.kind == "standardize":  # (x - shift) * scale, as softreg.models.Preprocess
        x = g.add("Mul", [g.add("Sub", [x, g.const("shift", pre.shift)]), g.const("scale", pre.scale)])
    elif pre.kind in ("pixels", "scale"):  # x * scale (scale: sparse features, never centred)
        x = g.add("Mul", [x, g.const("scale", pre.scale)])
    elif pre.kind != "none":
        raise UserInputError(f"cannot export preprocessing {pre.kind!r} to ONNX; train with "
                             f"{spell('preprocess', 'none')}, pixels or standardize to export.")
    layers = _layers(model.net)
    for i, layer in enumerate(layers):
        if isinstance(layer, torch.nn.Linear):
            inputs = [x, g.const(f"W{i}", layer.weight)]  # (out, in): Gemm with transB
            if layer.bias is not None:
                inputs.append(g.const(f"b{i}", layer.bias))
            x = g.add("Gemm", inputs, transB=1)
        else:
            x = g.add(ACTIVATIONS[type(layer)], [x])
    if layers[-1].out_features == 1:  # a binary head's one logit z (batch, 1): P(1) = sigmoid(z)
        minus = g.add("Neg", [x])
        g.add("Concat", [g.add("Sigmoid", [minus]), g.add("Sigmoid", [x])], probabilities, axis=1)
        # softreg's rule: class 1 when z >= 0 (P(1) >= 0.5): the larger of (-z, z), the last on a tie
        g.add("ArgMax", [g.add("Concat", [minus, x], axis=1)], label_index, axis=1, keepdims=0, select_last_index=1)
    else:
        g.add("Softmax", [x], probabilities, axis=1)
        g.add("ArgMax", [probabilities], label_index, axis=1, keepdims=0)


def class_values(g: Nodes, label_index: str, values: np.ndarray, out: str) -> None:
    """``out`` = values[label_index]: the class labels themselves (int64 or strings), standard Gather."""
    g.add("Gather", [label_index, g.const("classes", values)][::-1], out, axis=0)


def label_array(classes) -> np.ndarray:
    """Class labels as an ONNX-friendly array: int64 when every label is an integer, else strings."""
    values = np.asarray(classes)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind == "f" and np.all(values == np.round(values)):
        return values.astype(np.int64)
    texts = [str(c) for c in values.tolist()]
    try:
        ints = [int(t) for t in texts]
    except ValueError:
        return np.array(texts, dtype=object)
    return np.array(ints, np.int64) if [str(i) for i in ints] == texts else np.array(texts, dtype=object)
