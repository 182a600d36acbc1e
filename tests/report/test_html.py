"""`softreg report`: PNG pictures plus one self-contained HTML page; bad runs and folders exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import assert_user_error, call_main
from PIL import Image

from softreg.data import load_dataset
from softreg.report.html import pick_wrong, write_report
from softreg.runs.folder import load_run

IMAGE_PICTURES = ["confusion_matrix.png", "predictions.png", "training_curves.png", "weights.png"]


def _pngs(folder: Path) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    for name in names:
        with Image.open(folder / name) as img:
            assert img.format == "PNG" and min(img.size) >= 200, name
    return names


def _embedded(page: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)


@pytest.fixture(scope="module")
def idx_report(trained_idx_run, tmp_path_factory) -> tuple[int, str, Path]:
    """(exit code, stdout, folder) of `softreg report RUN --out FOLDER` on the session run."""
    out = tmp_path_factory.mktemp("report") / "pictures"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        code = call_main(["report", trained_idx_run[1], "--out", out, "--device", "cpu"])
    return code, stdout.getvalue(), out


def test_report_writes_pictures_and_one_self_contained_page(idx_report, trained_idx_run):
    code, stdout, out = idx_report
    assert code == 0, stdout
    names = _pngs(out)
    assert set(IMAGE_PICTURES) <= set(names)
    assert set(names) <= set(IMAGE_PICTURES) | {"confident_mistakes.png"}
    page = (out / "index.html").read_text()
    assert len(_embedded(page)) == len(names)  # every picture embedded, as a data URI
    assert not re.search(r"""(src|href)=["']?(https?:|//|[\w./-]+\.png)""", page)  # no external assets
    for name in load_run(trained_idx_run[1]).data["classes"]:
        assert f"<td>{name}</td>" in page
    for name in names:
        assert f"wrote {out / name}" in stdout
    assert not (trained_idx_run[1] / "report").exists()  # --out was given


def test_report_embeds_the_very_png_files(idx_report):
    import base64

    _, _, out = idx_report
    page = (out / "index.html").read_text()
    embedded = {base64.b64decode(data) for data in _embedded(page)}
    assert embedded == {p.read_bytes() for p in out.glob("*.png")}


def test_report_shows_confident_mistakes_most_confident_first(trained_idx_run, tmp_path):
    run = load_run(trained_idx_run[1])
    with torch.no_grad():  # swap classes 0 and 1: their samples are now confidently wrong
        run.model.net.linear.weight[[0, 1]] = run.model.net.linear.weight[[1, 0]].clone()
        run.model.net.linear.bias[[0, 1]] = run.model.net.linear.bias[[1, 0]].clone()
    dataset = load_dataset(str(trained_idx_run[0]))
    report = write_report(run, dataset, tmp_path / "out", n_wrong=5)
    assert [p.file for p in report.pictures][-1] == "confident_mistakes.png"
    assert report.metrics["accuracy"] < 0.5
    page = report.page.read_text()
    assert "Most confident mistakes" in page and len(_embedded(page)) == 5
    assert _pngs(tmp_path / "out") == sorted(IMAGE_PICTURES + ["confident_mistakes.png"])
    # a new report into the same folder keeps only pictures it drew itself
    (tmp_path / "out" / "weights.png").unlink()
    again = write_report(load_run(trained_idx_run[1]), dataset, tmp_path / "out", n_examples=3)
    assert _pngs(tmp_path / "out") == sorted(p.file for p in again.pictures)


def test_pick_wrong_orders_by_probability_of_the_wrong_class():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    y = torch.tensor([1, 1, 1, 0, 0])
    assert pick_wrong(probs, y, 2).tolist() == [3, 0]
    assert pick_wrong(probs, y, 10).tolist() == [3, 0, 2]
    assert pick_wrong(probs, torch.tensor([0, 1, 0, 1, 0]), 3).tolist() == []


def test_report_on_a_table_skips_image_pictures_and_says_so(run_cli, tmp_path):
    run = tmp_path / "toy"
    assert run_cli("train", "--data", "toy", "--epochs", "20", "--device", "cpu", "--out", run)[0] == 0
    code, stdout, err = run_cli("report", run)
    assert code == 0, err
    out = run / "report"  # the default folder
    assert _pngs(out) == ["confusion_matrix.png", "training_curves.png"]
    page = (out / "index.html").read_text()
    assert "not on images" in page and "not on images" in stdout
    assert len(_embedded(page)) == 2
    assert json.loads((run / "metrics.json").read_text())  # the run itself is untouched


def test_report_on_a_binary_logistic_image_run_draws_one_template(run_cli, make_idx, tmp_path):
    folder = make_idx(n_classes=2, n_train=40, n_test=10)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--data", folder, "--model", "logistic", "--epochs", "3", "--device", "cpu",
                           "--out", run)
    assert code == 0, err
    code, _, err = run_cli("report", run, "--out", tmp_path / "rep")
    assert code == 0, err
    assert "weights.png" in _pngs(tmp_path / "rep")
    assert "<h2>Weight template</h2>" in (tmp_path / "rep" / "index.html").read_text()


# ------------------------------------------------------------ bad input


def test_report_on_a_missing_run_exits_2(run_cli, tmp_path):
    code, _, err = run_cli("report", tmp_path / "nothing")
    assert_user_error(code, err, "no such run folder")
    assert not (tmp_path / "nothing").exists()


def test_report_on_a_corrupt_run_exits_2(run_cli, trained_idx_run, tmp_path):
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    (run / "config.json").write_text("{ not json")
    code, _, err = run_cli("report", run)
    assert_user_error(code, err, str(run), "config.json is damaged")
    assert not (run / "report").exists()


def test_report_out_is_a_file_exits_2(run_cli, trained_idx_run, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    code, _, err = run_cli("report", trained_idx_run[1], "--out", blocker)
    assert_user_error(code, err, f"--out {blocker} is a file")


def test_report_unwritable_out_exits_2(run_cli, trained_idx_run):
    code, _, err = run_cli("report", trained_idx_run[1], "--out", "/proc/softreg-report")
    assert_user_error(code, err, "/proc/softreg-report", "cannot write the report", "choose another --out")


def test_report_bad_top_k_exits_2(run_cli, trained_idx_run, tmp_path):
    code, _, err = run_cli("report", trained_idx_run[1], "--top-k", "-1", "--out", tmp_path / "r")
    assert_user_error(code, err, "--top-k must be an integer >= 1")
    assert not (tmp_path / "r").exists()


def test_report_states_the_plan_the_training_followed(tmp_path):
    """The settings table names the update rule, penalty and batch the run used, as `softreg train`
    printed them (the saved config leaves the batch to the plan: it is not "all")."""
    import html

    run = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert call_main(["train", "--data", "digits", "--device", "cpu", "--out", run]) == 0
        assert call_main(["report", run, "--device", "cpu"]) == 0
    plan = next(line for line in stdout.getvalue().splitlines() if line.startswith("plan: "))
    assert "batch 32" in plan
    page = (run / "report" / "index.html").read_text()
    assert f"<td>{html.escape(plan.removeprefix('plan: '))}</td>" in page


def test_report_names_the_data_and_where_it_came_from(tmp_path):
    run = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert call_main(["train", "--data", "digits", "--device", "cpu", "--epochs", "1", "--out", run]) == 0
        assert call_main(["report", run, "--device", "cpu"]) == 0
    assert "<td>digits: scikit-learn (bundled)</td>" in (run / "report" / "index.html").read_text()
