"""Pictures: weight templates' shapes, legible figures (labels, colour bars, no overlapping names)."""

from __future__ import annotations

import itertools

import pytest
import torch
from PIL import Image

from softreg.report import plots
from softreg.models.classifier import weight_templates
from softreg.models import ModelConfig, build_model, Classifier, Preprocess
from softreg.runs.folder import load_run

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _model(kind: str, n_classes: int, hidden=(7,)) -> Classifier:
    config = ModelConfig(kind=kind, n_features=28 * 28, n_classes=n_classes, hidden=list(hidden))
    return Classifier(build_model(config), Preprocess(28 * 28, "pixels"), n_classes)


def _render(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _assert_no_overlap(texts, renderer) -> None:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def _save_png(fig, tmp_path, name="fig.png"):
    path = plots.save_figure(fig, tmp_path / name)
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_softmax_templates_are_class_by_image(trained_idx_run):
    run = load_run(trained_idx_run[1])
    templates = weight_templates(run.model, (28, 28))
    assert templates.shape == (3, 28, 28)  # C x H x W


@pytest.mark.parametrize("kind", ["pixels", "standardize", "none"])
def test_templates_are_the_weights_on_preprocessed_pixels(kind):
    X = torch.randint(0, 256, (50, 28, 28)).float()
    X[:, 0, 0] = 7.0  # constant in training
    model = _model("softmax", 4)
    model.preprocess = Preprocess.fit(kind, X, 255.0)
    templates = weight_templates(model, (28, 28))  # (C, H, W)
    W = model.net.linear.weight.detach().double().reshape(4, 28, 28)
    assert torch.equal(templates[:, 5:, 5:], W[:, 5:, 5:])
    if kind == "standardize":  # a constant pixel never took part: no weight to show
        assert not templates[:, 0, 0].any() and W[:, 0, 0].any()
    else:
        assert torch.equal(templates[:, 0, 0], W[:, 0, 0])


@pytest.mark.parametrize("kind, n_classes, expected", [
    ("softmax", 10, (10, 28, 28)), ("logistic", 2, (1, 28, 28)), ("mlp", 10, (7, 28, 28))])
def test_weight_templates_shapes(kind, n_classes, expected):
    assert weight_templates(_model(kind, n_classes), (28, 28)).shape == expected


def test_softmax_weights_figure_has_class_titles_and_a_centred_colour_bar(tmp_path):
    fig = plots.weights_figure(_model("softmax", 10), FASHION, (28, 28), "softmax")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == FASHION
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1 and colour_bars[0].get_ylabel().startswith("score change for a full-ink pixel")
    low, high = panels[0].get_images()[0].get_clim()
    assert low == -high and high > 0  # diverging scale centred at 0
    _assert_no_overlap([ax.title for ax in panels], _render(fig))
    _save_png(fig, tmp_path)


def test_mlp_weights_figure_draws_the_strongest_units():
    model = _model("mlp", 10, hidden=(40,))
    first = model.net.layers[0].weight
    with torch.no_grad():
        first[33] *= 10  # by far the largest norm
    fig = plots.weights_figure(model, FASHION, (28, 28), "mlp", max_units=16)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert len(titles) == 16 and titles[0] == "unit 33"
    plots._pyplot().close(fig)


def test_logistic_weights_figure_is_one_template():
    fig = plots.weights_figure(_model("logistic", 2), ["fail", "pass"], (28, 28), "logistic")
    assert [ax.get_title() for ax in fig.axes if ax.get_images()] == ["pass vs fail"]
    plots._pyplot().close(fig)


def test_confusion_figure_long_class_names_do_not_overlap():
    names = [f"a very long class name {i}" for i in range(12)]
    fig = plots.confusion_figure(torch.ones(12, 12, dtype=torch.long), names)
    ax = fig.axes[0]
    renderer = _render(fig)
    _assert_no_overlap(ax.get_xticklabels(), renderer)
    _assert_no_overlap(ax.get_yticklabels(), renderer)
    plots._pyplot().close(fig)


def test_confusion_figure_names_both_axes(tmp_path):
    counts = torch.randint(0, 500, (10, 10))
    fig = plots.confusion_figure(counts, FASHION)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == FASHION
    assert [t.get_text() for t in ax.get_yticklabels()] == FASHION
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert len(fig.axes) == 2 and "row-normalised" in fig.axes[1].get_ylabel()
    assert list(ax.get_images()[0].get_array().sum(axis=1)) == pytest.approx([1.0] * 10)
    renderer = _render(fig)
    _assert_no_overlap(ax.get_xticklabels(), renderer)
    _assert_no_overlap(ax.get_yticklabels(), renderer)
    cell_texts = {t.get_text() for t in ax.texts}
    assert str(int(counts[0, 0])) in cell_texts
    _save_png(fig, tmp_path)


def test_training_curves_with_and_without_validation(tmp_path):
    rows = [{"epoch": str(e), "avg_cost": str(1 / e), "accuracy": str(1 - 1 / (e + 1)), "seconds": "0.1"}
            for e in range(1, 6)]
    fig = plots.training_curves_figure(rows)
    cost, acc = fig.axes
    assert cost.get_xlabel() == "epoch" and "cost" in cost.get_ylabel() and acc.get_ylabel() == "accuracy"
    assert [t.get_text() for t in cost.get_legend().get_texts()] == ["train (mean minibatch cost)"]
    plots._pyplot().close(fig)
    for row in rows:
        row.update(val_loss=0.5, val_accuracy=0.8)
    fig = plots.training_curves_figure(rows)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
    assert "validation" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    _save_png(fig, tmp_path)


def test_prediction_grid_marks_wrong_predictions_red(tmp_path):
    images = torch.randint(0, 255, (7, 28, 28), dtype=torch.uint8)
    probs = torch.softmax(torch.randn(7, 10) * 3, dim=1)
    predicted = probs.argmax(1)
    y = predicted.clone()
    y[2] = (predicted[2] + 1) % 10  # one mistake
    fig = plots.prediction_grid_figure(images, probs, y, FASHION, (28, 28), torch.arange(7), "title")
    cells = [ax for ax in fig.axes if ax.get_images()]
    assert len(cells) == 7
    assert cells[2].get_title() == f"#2  true: {FASHION[int(y[2])]}"
    first_lines = [ax.texts[0] for ax in cells]
    assert [t.get_color() for t in first_lines].count(plots.WRONG) == 1
    assert first_lines[2].get_color() == plots.WRONG
    assert first_lines[0].get_text().startswith(FASHION[int(predicted[0])])
    renderer = _render(fig)
    _assert_no_overlap([ax.title for ax in cells] + [t for ax in cells for t in ax.texts], renderer)
    _save_png(fig, tmp_path)


def test_prediction_grid_cuts_very_long_class_names():
    names = [f"an extremely long class name number {i}" for i in range(4)]
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 12)
    y = torch.tensor([0, 3] * 6)
    fig = plots.prediction_grid_figure(torch.rand(12, 28, 28), probs, y, names, (28, 28), torch.arange(9990, 10002))
    cells = [ax for ax in fig.axes if ax.get_images()]
    _assert_no_overlap([ax.title for ax in cells] + [t for ax in cells for t in ax.texts], _render(fig))
    plots._pyplot().close(fig)


def test_percentages_never_round_to_a_false_0_or_100():
    assert plots._percent(0.00004) == "<0.1%"
    assert plots._percent(0.99996) == ">99.9%"
    assert plots._percent(0.5) == "50.0%" and plots._percent(0.0) == "0.0%"


def test_prediction_figure_for_images_and_tables(tmp_path):
    probs = torch.softmax(torch.arange(10.0), dim=0)  # predicts the last class, Ankle boot
    fig = plots.prediction_figure(torch.rand(28, 28), probs, FASHION, (28, 28), true_label="Bag")
    assert fig.axes[0].get_title() == "predicted: Ankle boot\ntrue: Bag"
    assert fig.axes[0].title.get_color() == plots.WRONG
    assert fig.axes[1].get_xlabel() == "probability"
    assert len(fig.axes[1].patches) == 10
    _save_png(fig, tmp_path, "image.png")
    fig = plots.prediction_figure(torch.tensor([1.0, 2, 3]), torch.tensor([0.2, 0.8]), ["no", "yes"], None,
                                  feature_names=["height", "weight", "age"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["height", "weight", "age"]
    _save_png(fig, tmp_path, "table.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.png", "table.png"]
