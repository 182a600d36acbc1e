"""``to_onnx`` / ``export_onnx`` for whatever softreg trained: a run folder, a Predictor or a
fitted estimator (``SoftmaxRegressionClassifier`` and the others), with the options of
``softreg export`` (see softreg.inference.export)."""

from __future__ import annotations

from pathlib import Path

from softreg.inference import export as _export


def exportable(source) -> _export.Exportable:
    """The model, classes and metadata of a run folder (path), a Predictor or a fitted estimator."""
    if isinstance(source, _export.Exportable):
        return source
    if isinstance(source, (str, Path)):
        from softreg.inference.predictor import Predictor

        source = Predictor.from_run(source)
    if hasattr(source, "classes_") and hasattr(source, "model_"):  # a fitted softreg estimator
        from softreg.estimators.onnx import estimator_exportable

        return estimator_exportable(source)
    if hasattr(source, "model") and hasattr(source, "classes"):
        return _export.Exportable.of_predictor(source)
    from softreg.errors import UserInputError

    raise UserInputError(f"cannot export a {type(source).__name__} to ONNX; pass a run folder, a Predictor or "
                         "a fitted softreg estimator (fit it first).")


def to_onnx(source, *, labels: str = "index", layout: str = "softreg", opset: int = _export.OPSET):
    """An ``onnx.ModelProto`` of ``source`` (a run folder, Predictor or fitted estimator).

    Options as ``softreg.inference.export.to_onnx``: ``labels`` index | string, ``layout``
    softreg | sklearn, ``opset`` 13 or later.
    """
    return _export.to_onnx(exportable(source), labels=labels, layout=layout, opset=opset)


def export_onnx(source, out: str | Path, *, labels: str = "index", layout: str = "softreg",
                opset: int = _export.OPSET) -> Path:
    """Write ``to_onnx(source, ...)`` to ``out`` (a .onnx file) atomically."""
    return _export.export_onnx(exportable(source), out, labels=labels, layout=layout, opset=opset)
