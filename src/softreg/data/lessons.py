"""The lessons' small tables: the 8x4 three-class table, the 6x3 pass/fail table and XOR."""

from __future__ import annotations

import torch

from softreg.data.base import Dataset, Split

# Four features per row; classes 0, 1, 2.
TOY_X = [
    [1, 2, 1, 1],
    [2, 1, 3, 2],
    [3, 1, 3, 4],
    [4, 1, 5, 5],
    [1, 7, 5, 5],
    [1, 2, 5, 6],
    [1, 6, 6, 6],
    [1, 7, 7, 7],
]
TOY_Y = [2, 2, 2, 1, 1, 1, 0, 0]

# Three scores per person; 0 = fail, 1 = pass.
TOY_BINARY_X = [[1, 2, 2], [2, 3, 1], [3, 1, 1], [4, 3, 5], [5, 3, 6], [6, 2, 4]]
TOY_BINARY_Y = [0, 0, 0, 1, 1, 1]

XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]]
XOR_Y = [0, 1, 1, 0]


def _table(name: str, X: list, y: list, classes: list[str]) -> Dataset:
    split = Split(torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.int64))
    # The lessons score the training table itself; there is no held-out split.
    return Dataset(
        name=name,
        train=split,
        test=None,
        classes=classes,
        origin="built in (lesson table)",
        feature_names=[f"x{i + 1}" for i in range(len(X[0]))],
    )


def toy() -> Dataset:
    """The lessons' 8-sample, 4-feature, 3-class table."""
    return _table("toy", TOY_X, TOY_Y, ["0", "1", "2"])


def toy_binary() -> Dataset:
    """The lessons' 6-sample pass/fail table for logistic regression."""
    return _table("toy-binary", TOY_BINARY_X, TOY_BINARY_Y, ["fail", "pass"])


def xor() -> Dataset:
    """The four points of XOR, which no single linear layer separates."""
    return _table("xor", XOR_X, XOR_Y, ["0", "1"])


LESSON_TABLES = {"toy": toy, "toy-binary": toy_binary, "xor": xor}
