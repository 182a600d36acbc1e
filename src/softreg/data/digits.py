"""scikit-learn's bundled 8x8 digits, split reproducibly into train and test."""

from __future__ import annotations

import numpy as np
import torch

from softreg.data.base import Dataset, Split

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed so every run, whatever its --seed, scores the same test images


def digits() -> Dataset:
    """1797 images of 8x8 pixels with values 0..16; 80/20 stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)  # (1797, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)
    return Dataset(
        name="digits",
        train=Split(images_t[idx_train], labels_t[idx_train]),
        test=Split(images_t[idx_test], labels_t[idx_test]),
        classes=[str(i) for i in range(10)],
        image_shape=(8, 8),
        pixel_max=16.0,
        origin="scikit-learn (bundled)",
    )
