"""scikit-learn's bundled 8 x 8 handwritten digits: a small image task that needs no download."""
from __future__ import annotations

import numpy as np
import sklearn.datasets
import torch
from sklearn.model_selection import train_test_split

from fedscale.dataloaders.dataset import ArrayDataset

_MAX_PIXEL = 16.0


def load_digits(seed: int, test_fraction: float = 0.2) -> tuple[ArrayDataset, ArrayDataset]:
    """Return (train, test) digits as N x 1 x 8 x 8 float32 images, split stratified by class.

    Pixels are scaled from 0..16 to [0, 1], then standardised with one mean and std computed
    over every pixel of the TRAIN split only, so no test statistics leak into training.
    (Per-pixel statistics would divide by zero on the always-blank border pixels.)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = sklearn.datasets.load_digits()
    images = (bunch.images / _MAX_PIXEL).astype(np.float32)[:, np.newaxis]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    mean, std = images[train_idx].mean(), images[train_idx].std()
    standardised = (images - mean) / std
    num_classes = int(labels.max()) + 1

    def subset(idx: np.ndarray) -> ArrayDataset:
        return ArrayDataset(torch.from_numpy(standardised[idx]), torch.from_numpy(labels[idx]), num_classes)

    return subset(train_idx), subset(test_idx)
