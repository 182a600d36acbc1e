"""A run's report: PNG pictures and one self-contained HTML page (pictures embedded as data URIs)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import torch

from softreg.system import io, locks
from softreg.report import plots
from softreg.data.base import Dataset
from softreg.errors import UserInputError
from softreg.report.metrics import TOP_K, classification_metrics, predict_scores
from softreg.system.limits import check_path
from softreg.models import scores_to_log_proba
from softreg.runs.folder import LoadedRun

PAGE = "index.html"
PICTURES = ("training_curves.png", "weights.png", "confusion_matrix.png", "predictions.png",
            "confident_mistakes.png")


@dataclass
class Picture:
    file: str  # PNG name inside the report folder
    title: str
    caption: str


@dataclass
class Report:
    """What ``write_report`` produced: the folder, the page, the pictures and the notes on skipped ones."""

    folder: Path
    page: Path
    pictures: list[Picture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    split: str = "test"
    metrics: dict = field(default_factory=dict)


def prepare_folder(out: str | Path) -> Path:
    """Create ``out`` (and its parents) and prove it is writable, or raise UserInputError.

    A symbolic link at ``out`` is refused, so a run folder's ``report`` entry cannot send
    the pictures anywhere else on disk.
    """
    out = check_path(out, "--out")
    if out.is_symlink():
        raise UserInputError(f"{out} is a symbolic link; softreg does not write a report through links: "
                             "remove it or choose another --out.")
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a folder for the report.")
    io.ensure_folder(out, f"the report to {out}", "choose another --out")
    io.probe_writable(out, f"the report to {out}")
    return out


def pick_wrong(probs: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the ``n`` wrong predictions made with the highest probability, most confident first.

    probs : (N, C) class probabilities; y : (N,) true classes.
    """
    confidence, predicted = probs.max(dim=1)  # (N,), (N,)
    wrong = (predicted != y.to(probs.device)).nonzero().squeeze(1)  # (W,)
    order = confidence[wrong].argsort(descending=True)[:n]
    return wrong[order].cpu()


def write_report(run: LoadedRun, dataset: Dataset, out: str | Path, top_k: int = TOP_K,
                 n_examples: int = 24, n_wrong: int = 16, seed: int = 0) -> Report:
    """Draw the run's pictures into ``out`` and write ``out/index.html`` embedding them.

    The pictures of predictions use the test split (the training split when
    there is none); images are drawn only for image data.
    """
    out = prepare_folder(out)
    with locks.lock(out, what=f"the report folder {out}", fix="choose another --out"):
        return _write_report(run, dataset, out, top_k, n_examples, n_wrong, seed)


def _write_report(run: LoadedRun, dataset: Dataset, out: Path, top_k: int, n_examples: int, n_wrong: int,
                  seed: int) -> Report:
    classes = run.data["classes"]
    image_shape = tuple(run.data["image_shape"]) if run.data.get("image_shape") else None
    split_name = "test" if dataset.test is not None else "train"
    split = dataset.test if dataset.test is not None else dataset.train
    scores = predict_scores(run.model, split.X)
    metrics = classification_metrics(scores, split.y, classes, top_k)
    probs = scores_to_log_proba(scores).exp().cpu()  # (N, C)
    report = Report(out, out / PAGE, split=split_name, metrics=metrics)

    def add(fig, file: str, title: str, caption: str) -> None:
        plots.save_figure(fig, out / file)
        report.pictures.append(Picture(file, title, caption))

    history = run.history
    if history:
        validation = any(row.get("val_loss") not in (None, "") for row in history)
        add(plots.training_curves_figure(history), "training_curves.png", "Training curves",
            "Mean minibatch cost and running accuracy per epoch"
            + (", with the held-out validation split." if validation else "; no validation split was used."))
    else:
        report.notes.append("No training curves: history.csv is missing or empty.")
    kind = run.model_config.kind
    if image_shape is None:
        report.notes.append(
            f"No image pictures (weights, sample grids): this model was trained on a table of "
            f"{run.model_config.n_features} features, not on images.")
    else:
        heading = {"softmax": "Weights per class", "logistic": "Weight template",
                   "mlp": "First-layer weights"}[kind]
        add(plots.weights_figure(run.model, classes, image_shape, kind), "weights.png", heading,
            f"Each weight drawn at its pixel ({plots.WEIGHT_UNITS[run.model.preprocess.kind]}): red raises "
            "the score, blue lowers it, white is 0; one colour scale for all panels.")
    add(plots.confusion_figure(torch.tensor(metrics["confusion_matrix"]), classes,
                               f"confusion matrix ({split_name} split, {len(split)} samples)"),
        "confusion_matrix.png", "Confusion matrix",
        "Rows are true classes, columns predicted ones; numbers are counts, colours the share of each row.")
    if image_shape is not None:
        g = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(split), generator=g)[:n_examples].sort().values
        add(plots.prediction_grid_figure(split.X[chosen], probs[chosen], split.y[chosen], classes,
                                         image_shape, chosen, f"predictions on {split_name} samples"),
            "predictions.png", "Sample predictions",
            f"{len(chosen)} random {split_name} images with their most probable classes; wrong ones in red.")
        wrong = pick_wrong(probs, split.y, n_wrong)
        if len(wrong):
            add(plots.prediction_grid_figure(split.X[wrong], probs[wrong], split.y[wrong], classes,
                                             image_shape, wrong, "most confident mistakes"),
                "confident_mistakes.png", "Most confident mistakes",
                f"The {len(wrong)} {split_name} images given the highest probability on a wrong class.")
        else:
            report.notes.append(f"No mistakes to show: every {split_name} sample is classified correctly.")
    io.write_text(report.page, render_html(run, report), "choose another --out")
    drawn = {picture.file for picture in report.pictures}
    for stale in set(PICTURES) - drawn:  # left by an earlier report into the same folder
        (out / stale).unlink(missing_ok=True)
    return report


def _table(header: list[str], rows: list[list], numeric_from: int = 1) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        tds = "".join(
            f"<td class='num'>{html.escape(str(v))}</td>" if i >= numeric_from else f"<td>{html.escape(str(v))}</td>"
            for i, v in enumerate(row))
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; } figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
.note { background: #fff8e1; border-left: 4px solid #ffb300; padding: 0.5em 1em; }
"""


def _plan_line(run: LoadedRun) -> str:
    """The update rule, penalties, batch and updates the run followed, as ``softreg train`` printed them:
    from the plan the run saved (runs before 0.3: resolved again from the settings and the split's size)."""
    from softreg.training.plan import Plan, describe, make_plan

    cfg = run.config
    if "plan" in run.metrics:
        plan = Plan(**run.metrics["plan"])
    else:
        n_train = int(run.data.get("n_train") or 0)
        fraction = cfg.stop.validation_fraction
        n_fit = n_train - (round(n_train * fraction) if fraction else 0)
        if n_fit < 1:
            return f"{cfg.optim.optimizer}, lr {cfg.optim.lr:g}"
        plan = make_plan(cfg, n_fit, run.model_config.n_features)
    return describe(cfg, plan, run.model.preprocess.kind, "cpu")[1].removeprefix("plan: ")


def render_html(run: LoadedRun, report: Report) -> str:
    """The report page: run settings, metrics, per-class table and every picture as a data URI."""
    m, cfg, data = report.metrics, run.config, run.data
    settings = [
        ["data", f"{data.get('name')}: {data.get('origin') or data.get('spec')}"],
        ["model", run.model_config.kind + (f" hidden {run.model_config.hidden}" if run.model_config.kind == "mlp"
                                           else "")],
        ["preprocessing", run.model.preprocess.kind],
        ["training", _plan_line(run)],
        ["epochs", str(run.metrics.get("epochs", cfg.optim.epochs))],
        ["seed", str(cfg.seed)],
    ]
    if "train_seconds" in run.metrics:
        settings.append(["training time", f"{run.metrics['train_seconds']:.2f} s"])
    summary = [
        ["accuracy", f"{m['accuracy']:.4f}"],
        ["log loss", f"{m['log_loss']:.4f}"],
        [f"top-{m['top_k']} accuracy", f"{m['top_k_accuracy']:.4f}"],
        ["macro precision", f"{m['macro']['precision']:.4f}"],
        ["macro recall", f"{m['macro']['recall']:.4f}"],
        ["macro F1", f"{m['macro']['f1']:.4f}"],
    ]
    per_class = [[r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
                 for r in m["per_class"]]
    per_class.append(["macro average", *(f"{m['macro'][key]:.4f}" for key in ("precision", "recall", "f1")), m["n"]])
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>softreg report: {html.escape(str(run.path))}</title><style>{STYLE}</style></head><body>",
        f"<h1>softreg report: {html.escape(str(run.path))}</h1>",
        "<h2>Run</h2>", _table(["setting", "value"], settings, numeric_from=2),
        f"<h2>Metrics on the {report.split} split ({m['n']} samples)</h2>",
        _table(["metric", "value"], summary),
        _table(["class", "precision", "recall", "F1", "support"], per_class),
    ]
    parts += [f"<p class='note'>{html.escape(note)}</p>" for note in report.notes]
    for picture in report.pictures:
        data_uri = base64.b64encode((report.folder / picture.file).read_bytes()).decode("ascii")
        parts += [
            f"<h2>{html.escape(picture.title)}</h2><figure>",
            f"<img src=\"data:image/png;base64,{data_uri}\" alt=\"{html.escape(picture.title)}\">",
            f"<figcaption>{html.escape(picture.caption)} ({html.escape(picture.file)})</figcaption></figure>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)
