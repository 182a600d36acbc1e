"""The estimators as ONNX: for ``softreg.export.to_onnx`` and as a converter registered with
skl2onnx, so a scikit-learn Pipeline ending in a softreg estimator converts with
``skl2onnx.to_onnx`` like one ending in LogisticRegression.

``register_skl2onnx()`` (also run by the first ``softreg.export`` of an estimator) is all a user
calls; skl2onnx is imported only there. Both paths add the nodes of softreg.inference.onnx_graph.
"""

from __future__ import annotations

from sklearn.utils.validation import check_is_fitted

from softreg.inference import onnx_graph as graph
from softreg.inference.export import Exportable

KINDS = {"SoftmaxRegressionClassifier": "softmax", "LogisticRegressionClassifier": "logistic",
         "MLPClassifier": "mlp"}


def estimator_exportable(estimator) -> Exportable:
    """A fitted estimator's model, ``classes_`` and feature count, ready for softreg.inference.export."""
    check_is_fitted(estimator)
    classes = list(estimator.classes_.tolist())
    meta = {"classes": [str(c) for c in classes], "n_features": int(estimator.n_features_in_),
            "model": KINDS.get(type(estimator).__name__, type(estimator).__name__),
            "feature_names": [str(n) for n in getattr(estimator, "feature_names_in_", [])] or None}
    return Exportable(estimator.model_, classes, int(estimator.n_features_in_), meta)


def _shapes(operator) -> None:
    """skl2onnx shape calculator: label (N,) of the classes' type, probabilities (N, C)."""
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    calculate_linear_classifier_output_shapes(operator)


def _convert(scope, operator, container) -> None:
    """skl2onnx converter: the estimator's nodes between the operator's input and its outputs."""
    from onnx import numpy_helper

    estimator = operator.raw_operator
    label, probabilities = operator.outputs[0].full_name, operator.outputs[1].full_name
    g = graph.Nodes(fresh=scope.get_unique_variable_name)
    x = operator.inputs[0].full_name
    index = scope.get_unique_variable_name("label_index")
    graph.classifier(g, estimator.model_, x, probabilities, index)
    graph.class_values(g, index, graph.label_array(estimator.classes_), label)
    for name, value in g.constants.items():
        tensor = numpy_helper.from_array(value, name)
        strings = value.dtype == object  # no raw bytes: skl2onnx takes the values themselves
        container.add_initializer(name, tensor.data_type, list(value.shape),
                                  [str(v) for v in value.ravel()] if strings else tensor)
    for op, inputs, outputs, attrs, domain in g.nodes:
        container.add_node(op, inputs, outputs, name=scope.get_unique_operator_name(op), op_domain=domain,
                           op_version=None, **attrs)


_REGISTERED = False


def register_skl2onnx() -> None:
    """Teach skl2onnx the three softreg estimators (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    from softreg.estimators import classifiers

    for name in KINDS:
        update_registered_converter(getattr(classifiers, name), f"Softreg{name}", _shapes, _convert,
                                    options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    _REGISTERED = True
