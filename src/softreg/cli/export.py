"""`softreg export`: a run as an ONNX file that runs without softreg."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from softreg.cli.app import app, echo, option, pick
from softreg.errors import UserInputError

CHECK_ROWS = 10_000  # test samples compared with onnxruntime after the export


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    format: str = typer.Option("onnx", "--format", help="file format: onnx"),
    out: Path = typer.Option(..., "--out", help="the file to write (.onnx)"),
    check: bool = typer.Option(True, "--check/--no-check",
                               help="compare onnxruntime's probabilities with softreg's on the test split"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder (for --check)"),
    labels: Optional[str] = option("labels"),
    layout: Optional[str] = option("layout"),
    opset: Optional[int] = option("opset"),
) -> None:
    """Export the classifier, preprocessing included, as an ONNX graph: raw float32 features in,
    probabilities and labels out."""
    from softreg import settings as S
    from softreg.inference.export import NAMES, check_onnx, export_onnx, require_onnx

    if format != "onnx":
        raise UserInputError(f"--format must be onnx; got {format!r}.")
    labels, layout = pick(labels, "labels") or S.default("labels"), pick(layout, "layout") or S.default("layout")
    opset = S.default("opset") if opset is None else opset
    require_onnx()
    from softreg.inference.predictor import Predictor

    predictor = Predictor.from_run(run_dir, data_dir=data_dir)
    export_onnx(predictor, out, labels=labels, layout=layout, opset=opset)
    x, probabilities, label = NAMES[layout]
    shapes = f"{probabilities} (batch, {len(predictor.classes)})"
    outputs = (f"{label}, {shapes}" if layout == "sklearn"
               else f"{shapes}, {label}" + (", label" if labels == "string" else ""))
    echo(f"wrote {out}: {x} float32 (batch, {predictor.n_features}) -> {outputs} (opset {opset})")
    if not check:
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        echo("not checked: onnxruntime is not installed (pip install 'softreg[onnx]')")
        return
    split = predictor.test_split()
    if split is None:
        echo(f"not checked: the run's data is not available ({predictor.data_problem})")
        return
    data, name = split
    from softreg.models.sparse import is_sparse, row_range

    n = min(len(data), CHECK_ROWS)
    X = row_range(data.X, 0, n).to_dense() if is_sparse(data.X) else data.X[:n]  # the graph takes dense rows
    X = X.reshape(n, -1).float()
    diff = check_onnx(out, predictor, X)
    echo(f"checked with onnxruntime on {X.shape[0]} {name} samples: largest probability difference {diff:.1e}")
