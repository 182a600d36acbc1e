"""Streaming (softreg.data.shuffle / stream): every row once per epoch through a bounded buffer,
the same fitted preprocessing as in memory, and the same full-batch optimum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from helpers import write_idx_folder
from softreg.data import load_dataset
from softreg.data.shuffle import ShuffleBuffer, StreamSource, rebatch
from softreg.data.idx.stream import open_idx_stream
from softreg.data.tables.stream import open_table_stream
from softreg.data.tables.memory import load_table
from softreg.errors import UserInputError
from softreg.training import make_config, train


def test_shuffle_buffer_releases_every_row_once_in_a_new_order():
    buffer = ShuffleBuffer(64, torch.Generator().manual_seed(0))
    ids = torch.arange(1000)
    out = []
    for start in range(0, 1000, 37):
        out += [y for _, y in buffer.feed(ids[start : start + 37, None], ids[start : start + 37])]
        assert buffer.size <= 64
    out += [y for _, y in buffer.drain()]
    seen = torch.cat(out)
    assert sorted(seen.tolist()) == list(range(1000))
    assert not torch.equal(seen, ids)
    # rows travel: some leave long after rows that came in later
    assert (seen[1:] < seen[:-1]).sum() > 100


def test_rebatch_gives_exact_sizes():
    blocks = [(torch.arange(n)[:, None], torch.arange(n)) for n in (5, 1, 13, 2)]
    sizes = [y.shape[0] for _, y in rebatch(blocks, 4)]
    assert sizes == [4, 4, 4, 4, 4, 1]


def _source(n: int = 250, piece: int = 16) -> StreamSource:
    X = torch.arange(n)[:, None].float()
    y = torch.arange(n)
    pieces = [(a, min(a + piece, n)) for a in range(0, n, piece)]
    return StreamSource(pieces, lambda p: iter([(X[p[0] : p[1]], y[p[0] : p[1]])]), n, 1, 4)


@pytest.mark.parametrize("drop_last", [False, True])
def test_an_epoch_visits_every_row_once_and_is_fixed_by_its_seed(drop_last):
    source = _source()
    batches = list(source.batches(7, 32, drop_last, True))
    rows = torch.cat([b.y for b in batches])
    assert [b.X.shape[0] for b in batches][:-1] == [32] * (len(batches) - 1)
    if drop_last:
        assert len(batches) == 250 // 32 and len(set(rows.tolist())) == len(rows)
    else:
        assert sorted(rows.tolist()) == list(range(250)) and batches[-1].denom == 250 - 32 * 7
    again = torch.cat([b.y for b in source.batches(7, 32, drop_last, True)])
    other = torch.cat([b.y for b in source.batches(8, 32, drop_last, True)])
    assert torch.equal(rows, again) and not torch.equal(rows, other)
    skipped = torch.cat([b.y for b in source.batches(7, 32, drop_last, True, skip=3)])
    assert torch.equal(skipped, rows[3 * 32 :])


def test_processes_take_the_same_number_of_steps_and_their_share_of_each_batch():
    source = _source(250)
    ranks = [list(source.batches(3, 32, False, True, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 8  # ceil(250 / 32): equal steps, so collectives line up
    assert all(b.X.shape[0] == 16 and b.denom == 32 for batches in ranks for b in batches)
    seen = [set(torch.cat([b.y for b in batches]).tolist()) for batches in ranks]
    assert not seen[0] & seen[1]  # each process reads only its own pieces
    assert len(seen[0] | seen[1]) >= 0.75 * 250


def _mixed_parquet(path: Path, n: int = 400, seed: int = 0, row_group: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(3, 2, n) + (colour == "red") * 4
    weight = rng.normal(50, 10, n)
    weight[rng.random(n) < 0.1] = np.nan
    label = np.where(size > 4, "big", "small")
    pq.write_table(pa.table({"size": size, "colour": colour, "weight": weight, "label": label}), path,
                   row_group_size=row_group)
    return path


def test_streamed_preprocessing_equals_the_in_memory_fit(tmp_path):
    path = _mixed_parquet(tmp_path / "m.parquet")
    memory = load_table(path, impute="mean")
    stream = open_table_stream(path, preprocess="standardize", impute="mean")
    assert stream.classes == memory.classes and stream.schema.feature_names() == memory.schema.feature_names()
    for a, b in zip(stream.schema.columns, memory.schema.columns):
        assert a.categories == b.categories
        assert (a.fill is None) == (b.fill is None) and (a.fill is None or a.fill == pytest.approx(b.fill))
    from softreg.models.preprocess import Preprocess

    fitted = Preprocess.fit("standardize", memory.train.X, None, memory.schema.unscaled())
    torch.testing.assert_close(stream.preprocess.shift, fitted.shift, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stream.preprocess.scale, fitted.scale, rtol=1e-5, atol=1e-6)
    assert len(stream.train) == len(memory.train) and len(stream.test) == len(memory.test)
    rows = torch.cat([b.X for b in stream.test.chunks(1000)])
    assert torch.equal(rows, memory.test.X)  # the same held-out rows, in the same order


def test_streamed_full_batch_lbfgs_reaches_the_in_memory_optimum(tmp_path):
    path = _mixed_parquet(tmp_path / "m.parquet")
    config = make_config(optimizer="lbfgs", lr=1.0, epochs=8)
    memory = train(load_table(path, impute="mean"), config)
    stream = train(open_table_stream(path, preprocess="standardize", impute="mean"), config)
    # float32 gradients summed in another order differ by about 1e-7; L-BFGS follows them down to
    # the optimum's flat floor, where the two runs' weights agree to about 1e-5 relative of the cost
    torch.testing.assert_close(stream.model.net.linear.weight, memory.model.net.linear.weight, rtol=1e-4, atol=1e-4)
    assert stream.metrics["test_accuracy"] == memory.metrics["test_accuracy"]
    assert stream.metrics["train_loss"] == pytest.approx(memory.metrics["train_loss"], rel=1e-5)


def test_streaming_idx_reads_what_the_in_memory_loader_reads(tmp_path):
    for gz in (True, False):
        folder = write_idx_folder(tmp_path / f"idx{gz}", n_train=300, n_test=50, gz=gz)
        memory = load_dataset(str(folder))
        stream = open_idx_stream(str(folder), preprocess="pixels")
        assert stream.train.ordered == gz and stream.image_shape == (28, 28)
        rows = torch.cat([b.X for b in stream.train.chunks(64)])
        assert torch.equal(rows, memory.train.X)
        labels = torch.cat([b.y for b in stream.test.chunks(64)])
        assert torch.equal(labels, memory.test.y)
        result = train(stream, make_config(epochs=3, batch_size=32))
        assert result.metrics["test_accuracy"] > 0.9


def test_stream_errors_name_the_problem(tmp_path):
    path = _mixed_parquet(tmp_path / "m.parquet")
    with pytest.raises(UserInputError, match="column 'weight' has missing values .*impute='mean'"):
        open_table_stream(path, preprocess="standardize")
    with pytest.raises(UserInputError, match="needs image data"):
        open_table_stream(path, preprocess="pixels", impute="zero")
