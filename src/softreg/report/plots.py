"""Pictures of a run: training curves, weight templates, confusion matrix and predictions.

Each ``*_figure`` function returns a matplotlib figure (Agg backend, never a
display); ``save_figure`` writes it atomically and closes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.models.classifier import weight_templates

WRONG = "#c62828"  # red: a wrong prediction
RIGHT = "#1565c0"  # blue: the predicted class when right
WEIGHT_CMAP = "RdBu_r"  # diverging: red pushes towards the class, blue away, white is 0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save atomically (:func:`softreg.system.io.atomic_write`) and close the figure."""
    from softreg.system.io import atomic_write

    plt = _pyplot()
    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    try:
        if suffix not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
            raise UserInputError(f"{path}: unsupported picture type {suffix}; use .png, .svg, .pdf or .jpg.")
        folder = path.absolute().parent
        if not folder.is_dir():
            raise UserInputError(f"{path}: folder {folder} does not exist; create it or pick another path.")
        kind = {".jpg": "jpeg"}.get(suffix, suffix[1:])
        atomic_write(path, lambda f: fig.savefig(f, format=kind, dpi=dpi, bbox_inches="tight"),
                     fix="pick another path")
    finally:
        plt.close(fig)
    return path


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols


def _show_image(ax, image: torch.Tensor, image_shape: tuple[int, ...], pixel_max: float | None = None) -> None:
    """A raw sample drawn as a grayscale picture: high values dark, as ink on paper.

    With ``pixel_max`` the scale is fixed to [0, pixel_max] (faint ink stays faint);
    without it, the picture's own range fills the scale.
    """
    scale = {"vmin": 0.0, "vmax": pixel_max} if pixel_max else {}
    ax.imshow(_numpy(image.reshape(image_shape)), cmap="gray_r", interpolation="nearest", **scale)
    ax.set_xticks([])
    ax.set_yticks([])


def _frame(ax, colour: str, width: float) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def training_curves_figure(rows: list[dict]):
    """Cost and accuracy per epoch, training and (where present) validation.

    rows : history rows with ``epoch``, ``avg_cost``, ``accuracy`` and optionally
    ``val_loss``, ``val_accuracy`` (numbers, or strings as read from history.csv).
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    def column(name: str) -> np.ndarray:
        values = [row.get(name) for row in rows]
        return np.array([float(v) if v not in (None, "") else np.nan for v in values])

    epochs = column("epoch")
    marker = "o" if len(rows) <= 30 else None
    width = 1.5 if len(rows) <= 200 else 0.8  # long runs: thin lines keep oscillations readable
    fig, (ax_cost, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    curves = [
        (ax_cost, "avg_cost", "train (mean minibatch cost)", "val_loss", "validation"),
        (ax_acc, "accuracy", "train (running, during the epoch)", "val_accuracy", "validation"),
    ]
    for ax, train_key, train_label, val_key, val_label in curves:
        ax.plot(epochs, column(train_key), marker=marker, ms=4, lw=width, color="tab:blue", label=train_label)
        val = column(val_key)
        if not np.isnan(val).all():
            ax.plot(epochs, val, marker=marker, ms=4, lw=width, color="tab:orange", label=val_label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    ax_cost.set_ylabel("cost (cross-entropy)")
    ax_cost.set_title("cost per epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title("accuracy per epoch")
    fig.tight_layout()
    return fig


WEIGHT_UNITS = {  # what one unit of a first-layer weight means, by preprocessing
    "pixels": "score change for a full-ink pixel",
    "standardize": "score change per standard deviation of the pixel",
    "none": "score change per unit of pixel value",
}


def weights_figure(model, classes: list[str], image_shape: tuple[int, ...], kind: str,
                   max_units: int = 16):
    """Weight templates (see ``weight_templates``) drawn with a diverging colormap centred at 0
    and one colour bar shared by every panel.

    kind : softmax | logistic | mlp. For an MLP the ``max_units`` first-layer
    units with the largest weight norms are drawn.
    """
    plt = _pyplot()
    templates = weight_templates(model, image_shape)  # (K, H, W)
    if kind == "mlp":
        norms = templates.flatten(1).norm(dim=1)  # (K,)
        chosen = norms.argsort(descending=True)[:max_units].tolist()
        titles = [f"unit {i}" for i in chosen]
        heading = (f"first-layer weights of the {len(chosen)} strongest of {templates.shape[0]} hidden units "
                   "(largest weight norm)")
    elif kind == "logistic":
        chosen, titles = [0], [f"{classes[1]} vs {classes[0]}"]
        heading = f"weights: red pixels are evidence for {classes[1]}, blue for {classes[0]}"
    else:
        chosen, titles = list(range(len(classes))), list(classes)
        heading = "weights per class: red pixels raise the class score, blue lower it"
    images = _numpy(templates[chosen])
    largest = float(np.abs(images).max()) or 1.0
    limit = float(np.percentile(np.abs(images), 99.5)) or largest  # a few extreme pixels would wash out the rest
    n_rows, n_cols = _grid(len(chosen), 5 if len(chosen) <= 10 else 8)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.1 * n_cols + 1.0, 2.3 * n_rows + 0.6), squeeze=False)
    for ax in axes.flat[len(chosen):]:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        shown = ax.imshow(image, cmap=WEIGHT_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(heading, fontsize=12)
    fig.tight_layout()
    bar = fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02,
                       extend="both" if largest > limit else "neither")
    units = WEIGHT_UNITS.get(getattr(getattr(model, "preprocess", None), "kind", "none"), "weight")
    bar.set_label(units + (f"\n(clipped; largest = {largest:.3g})" if largest > limit else ""))
    return fig


def confusion_figure(confusion, classes: list[str], title: str = "confusion matrix"):
    """Counts written in the cells, coloured by the share of each true class (rows sum to 1)."""
    plt = _pyplot()
    counts = np.asarray(confusion.tolist() if torch.is_tensor(confusion) else confusion, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = counts / np.maximum(totals, 1)  # (C, C), each row sums to 1
    n = len(classes)
    side = min(max(4.5, 0.6 * n + 2.5), 16)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    if max(map(len, classes)) <= 12:  # slanted names read easily but need room for their width
        ax.set_xticklabels(classes, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticklabels(classes, rotation=90)
    ax.set_yticklabels(classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if n <= 30:
        size = 10 if n <= 12 else 7
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    colour = "white" if shares[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=size, color=colour)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the true class (row-normalised)")
    fig.tight_layout()
    return fig


def _percent(p: float) -> str:
    """Probabilities as percentages that never round to a misleading 0% or 100%."""
    if 0 < p < 0.001:
        return "<0.1%"
    if 0.999 < p < 1:
        return ">99.9%"
    return f"{p:.1%}"


def _short(name: str, limit: int) -> str:
    """Class names cut to fit a grid cell."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


LINE = 0.22  # inches between the text lines under a grid image
CELL = 1.7  # inches: side of a grid image


def _prediction_cell(ax, image: torch.Tensor, probs: np.ndarray, classes: list[str],
                     true_index: int | None, image_shape: tuple[int, ...], top: int, name: str = "") -> None:
    """One image, titled with its true class, over its ``top`` most probable classes.

    The predicted class is the first line: blue when right, red (with a red
    frame around the image) when wrong; under a wrong prediction whose true
    class is not among the ``top``, one more line gives the true class's probability.
    """
    _show_image(ax, image, image_shape)
    order = np.argsort(-probs)[:top]
    wrong = true_index is not None and int(order[0]) != true_index
    if true_index is not None:
        prefix = f"{name}true: "
        ax.set_title(prefix + _short(classes[true_index], max(10, 27 - len(prefix))), fontsize=9)
    elif name:
        ax.set_title(name.strip(), fontsize=9)
    _frame(ax, WRONG if wrong else "0.6", 3 if wrong else 0.8)
    lines = [(f"{_short(classes[i], 17)}  {_percent(probs[i])}", (WRONG if wrong else RIGHT) if rank == 0 else "0.25")
             for rank, i in enumerate(order)]
    if wrong and true_index not in order:
        lines.append((f"({_short(classes[true_index], 15)}  {_percent(probs[true_index])})", "0.45"))
    step = LINE / ax.get_position().height / ax.figure.get_figheight()  # inches -> axes fraction
    for row, (text, colour) in enumerate(lines):
        ax.text(0.5, -0.03 - step * row, text, transform=ax.transAxes, ha="center", va="top",
                fontsize=8.5, color=colour, fontweight="bold" if row == 0 else "normal")


def prediction_grid_figure(images: torch.Tensor, probs: torch.Tensor, y_true: torch.Tensor | None,
                           classes: list[str], image_shape: tuple[int, ...], indices=None,
                           title: str = "", top: int = 3, max_cols: int = 6):
    """A grid of images, each with its top predicted probabilities; wrong ones in red.

    images : tensor of shape (N, *sample_shape), raw samples
    probs : tensor of shape (N, C), predicted class probabilities
    y_true : tensor of shape (N,) of true class indices, or None
    indices : the N samples' positions in their split, shown as #i
    """
    plt = _pyplot()
    n = images.shape[0]
    top = min(top, len(classes))
    n_rows, n_cols = _grid(max(n, 1), max_cols)
    # the layout is set in inches: CELL-sized images, a title above each, text lines below
    below = (top + 1) * LINE + 0.1  # +1: the true class's line under a wrong prediction
    above = 0.3
    gap_x = 0.35
    head = 0.45 if title else 0.0
    width = n_cols * CELL + (n_cols - 1) * gap_x + 0.2
    height = n_rows * (CELL + above + below) + head
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=0.1 / width, right=1 - 0.1 / width, bottom=below / height,
                        top=1 - (above + head) / height, wspace=gap_x / CELL, hspace=(above + below) / CELL)
    for ax in axes.flat[n:]:
        ax.axis("off")
    p = _numpy(probs)
    for k, ax in enumerate(axes.flat[:n]):
        name = f"#{int(indices[k])}  " if indices is not None else ""
        true_index = int(y_true[k]) if y_true is not None else None
        _prediction_cell(ax, images[k], p[k], classes, true_index, image_shape, top, name)
    if title:
        fig.suptitle(title, fontsize=12, y=1 - 0.15 / height, va="top")
    return fig


def prediction_figure(sample: torch.Tensor, probs: torch.Tensor, classes: list[str],
                      image_shape: tuple[int, ...] | None, true_label: str | None = None,
                      top: int = 10, feature_names: list[str] | None = None,
                      pixel_max: float | None = None):
    """The input (an image, or a bar chart of feature values) beside its class probabilities.

    sample : one raw sample, of shape ``image_shape`` or (F,)
    pixel_max : full ink; the image is drawn on the fixed scale [0, pixel_max] when given
    probs : tensor of shape (C,), its class probabilities
    """
    plt = _pyplot()
    probs = _numpy(probs)
    order = np.argsort(-probs)[:top][::-1]  # most probable at the top of the bar chart
    best = int(np.argmax(probs))
    wrong = true_label is not None and classes[best] != true_label
    fig, (ax_in, ax_p) = plt.subplots(1, 2, figsize=(8.5, max(3.6, 0.32 * len(order) + 1.2)),
                                      gridspec_kw={"width_ratios": [1, 1.3]})
    if image_shape is not None:
        _show_image(ax_in, sample, image_shape, pixel_max)
        _frame(ax_in, WRONG if wrong else "0.6", 3 if wrong else 0.8)
    else:
        values = _numpy(sample.reshape(-1))
        names = feature_names if feature_names and len(feature_names) == len(values) else None
        ax_in.bar(range(len(values)), values, color="0.5")
        if names and len(names) <= 30:
            ax_in.set_xticks(range(len(values)))
            rotate = max(map(len, names)) > 3  # long names would overlap side by side
            ax_in.set_xticklabels(names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
        ax_in.set_xlabel("feature")
        ax_in.set_ylabel("value")
    title = f"predicted: {classes[best]}" + (f"\ntrue: {true_label}" if true_label is not None else "")
    ax_in.set_title(title, color=WRONG if wrong else "black")
    colours = [(WRONG if wrong else RIGHT) if i == best else "0.7" for i in order]
    ax_p.barh([classes[i] for i in order], probs[order], color=colours)
    ax_p.set_xlim(0, 1.15)
    ax_p.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax_p.set_xlabel("probability")
    ax_p.set_title("class probabilities")
    for y, i in enumerate(order):
        ax_p.text(probs[i] + 0.02, y, f"{probs[i]:.3f}", va="center", fontsize=8)
    fig.tight_layout()
    return fig
