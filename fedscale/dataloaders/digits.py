"""scikit-learn's bundled 8 x 8 handwritten digits: a small image task that needs no download.

The data file ships inside the scikit-learn package; it is read directly (scikit-learn itself
is not imported: that would cost every process most of a second of start-up).
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from fedscale.dataloaders.dataset import ArrayDataset, DataError
from fedscale.dataloaders.partition import stratified_split

_MAX_PIXEL = 16.0


def digits_file() -> Path:
    """scikit-learn's ``datasets/data/digits.csv.gz``: 1797 rows of 64 pixels (0..16) and a label."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():
        raise DataError("the digits data set ships with scikit-learn, which is not installed (pip install -e .)")
    return path


def load_digits(seed: int, test_fraction: float = 0.2) -> tuple[ArrayDataset, ArrayDataset]:
    """Return (train, test) digits as N x 1 x 8 x 8 float32 images, split stratified by class.

    Pixels are scaled from 0..16 to [0, 1], then standardised with one mean and std computed
    over every pixel of the TRAIN split only, so no test statistics leak into training.
    (Per-pixel statistics would divide by zero on the always-blank border pixels.)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    with gzip.open(digits_file()) as f:
        table = np.loadtxt(f, delimiter=",")
    images = (table[:, :-1].reshape(-1, 8, 8) / _MAX_PIXEL).astype(np.float32)[:, np.newaxis]
    labels = table[:, -1].astype(np.int64)
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    mean, std = images[train_idx].mean(), images[train_idx].std()
    standardised = (images - mean) / std
    num_classes = int(labels.max()) + 1

    def subset(idx: np.ndarray) -> ArrayDataset:
        return ArrayDataset(torch.from_numpy(standardised[idx]), torch.from_numpy(labels[idx]), num_classes)

    return subset(train_idx), subset(test_idx)
