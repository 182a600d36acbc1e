"""The one stratified split: each class's share held out by largest remainders, fixed by the seed."""

from __future__ import annotations

import numpy as np
import pytest

from softreg.data.split import stratified_split


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_each_class_keeps_its_share_and_the_rows_are_disjoint(fraction):
    y = np.random.default_rng(0).permutation(np.array([0] * 50 + [1] * 7 + [2] * 13 + [3] * 30))
    kept, held = stratified_split(y, fraction, seed=3)
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(100))  # every row once
    counts, n_out = np.bincount(y), round(100 * fraction)
    share = counts * n_out / 100
    got = np.bincount(y[held], minlength=4)
    assert got.sum() == n_out and np.all(np.abs(got - share) < 1)  # floor or ceiling of each class's share
    assert list(kept) == sorted(kept) and list(held) == sorted(held)


def test_the_seed_fixes_the_split():
    y = np.arange(200) % 3
    first, again, other = (stratified_split(y, 0.2, seed)[1] for seed in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_a_tiny_table_holds_nothing_out_but_a_validation_split_holds_one_row():
    y = np.array([0, 1])
    assert len(stratified_split(y, 0.2, seed=0)[1]) == 0
    assert len(stratified_split(y, 0.2, seed=0, minimum=1)[1]) == 1


def test_a_class_too_rare_to_split_falls_back_to_a_plain_random_share():
    y = np.array([0] * 30 + [1])
    kept, held = stratified_split(y, 0.2, seed=0)
    assert len(held) == 6 and len(kept) == 25
