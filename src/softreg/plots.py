"""Pictures: a sample with its predicted class probabilities."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save atomically (temporary file, then rename) and close the figure."""
    plt = _pyplot()
    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    if suffix not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        plt.close(fig)
        raise UserInputError(f"{path}: unsupported picture type {suffix}; use .png, .svg, .pdf or .jpg.")
    folder = path.absolute().parent
    if not folder.is_dir():
        plt.close(fig)
        raise UserInputError(f"{path}: folder {folder} does not exist; create it or pick another path.")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
        os.close(fd)
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except OSError as exc:  # read-only or pseudo file systems, a folder in the way, disk full
        raise UserInputError(f"{path}: cannot write there ({exc.strerror or exc}); pick another path.") from None
    finally:
        plt.close(fig)
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def prediction_figure(sample: torch.Tensor, probs: torch.Tensor, classes: list[str],
                      image_shape: tuple[int, int] | None, true_label: str | None = None,
                      top: int = 10):
    """The input (an image, or a bar chart of feature values) beside its class probabilities."""
    plt = _pyplot()
    probs = probs.detach().cpu().double().numpy()
    order = np.argsort(-probs)[:top][::-1]
    fig, (ax_in, ax_p) = plt.subplots(1, 2, figsize=(8, 3.6), gridspec_kw={"width_ratios": [1, 1.3]})
    pred = classes[int(np.argmax(probs))]
    if image_shape is not None:
        ax_in.imshow(sample.detach().cpu().reshape(image_shape).numpy(), cmap="gray_r")
        ax_in.set_xticks([])
        ax_in.set_yticks([])
    else:
        values = sample.detach().cpu().reshape(-1).numpy()
        ax_in.bar(range(len(values)), values, color="0.5")
        ax_in.set_xlabel("feature")
        ax_in.set_ylabel("value")
    title = f"predicted: {pred}" + (f"   true: {true_label}" if true_label is not None else "")
    ax_in.set_title(title)
    colors = ["tab:blue" if classes[i] == pred else "0.7" for i in order]
    ax_p.barh([classes[i] for i in order], probs[order], color=colors)
    ax_p.set_xlim(0, 1)
    ax_p.set_xlabel("probability")
    ax_p.set_title("class probabilities")
    for y, i in enumerate(order):
        ax_p.text(min(probs[i] + 0.02, 0.85), y, f"{probs[i]:.3f}", va="center", fontsize=8)
    fig.tight_layout()
    return fig
