"""FEMNIST read from FedScale's on-disk layout, plus a synthetic stand-in in that layout.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/femnist.py, fedscale/dataloaders/
divide_data.py, benchmark/dataset/femnist/README.md, benchmark/configs/femnist/conf.yml)
keeps FEMNIST in its client-mapped layout (see ``client_mapping``), with the PNG images under
``<data_dir>/data/...`` and ``sample_path`` relative to ``<data_dir>`` (FedScale opens
``<data_dir>/<sample_path>``).
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from fedscale.dataloaders.client_mapping import MAPPING_DIR, MappedLayout, load_mapped, write_mapped_fixture
from fedscale.dataloaders.dataset import ArrayDataset
from fedscale.dataloaders.images import ImageFormat

__all__ = ["IMAGE_SIDE", "MAPPING_DIR", "FEMNIST", "load_femnist", "write_femnist_fixture"]

IMAGE_SIDE = 28
_GREY = ImageFormat("L", IMAGE_SIDE, mean=(0.0,), std=(1.0,))
FEMNIST = MappedLayout("FEMNIST", _GREY.shape, _GREY.read, _GREY.features, split_folders=False, in_memory=True)
_FIXTURE_LABEL_NAMES = "0123456789"


def load_femnist(
    data_dir: str | PathLike[str], data_map_file: str = ""
) -> tuple[ArrayDataset, ArrayDataset, list[np.ndarray]]:
    """Load FEMNIST as (train, test, natural partition), as ``client_mapping.load_mapped`` does.

    Images become 1 x 28 x 28 float32 grayscale in [0, 1] (resized with PIL if needed; not
    inverted), all decoded at load. ``num_classes`` is one more than the largest label_id of
    either split. Any problem raises a one-line DataError.
    """
    return load_mapped(data_dir, data_map_file, FEMNIST)


def write_femnist_fixture(root: str | PathLike[str], num_clients: int, samples_per_client: int, seed: int) -> str:
    """Write a small synthetic data set in FedScale's FEMNIST layout under ``root``; return ``root``.

    It stands in for the real download in tests and demos. There are 10 classes, each a fixed
    random blocky 28 x 28 glyph; a sample is its class's glyph shifted by up to one pixel plus
    Gaussian noise, so a model can learn the classes. Clients (writers) are spread as
    ``client_mapping.write_mapped_fixture`` says. Deterministic in ``seed``.
    """
    if num_clients < 1:
        raise ValueError(f"need num_clients >= 1, got {num_clients}")
    rng = np.random.default_rng(seed)
    glyphs = _fixture_glyphs(len(_FIXTURE_LABEL_NAMES), rng)

    def write_sample(path: Path, label: int) -> None:
        Image.fromarray(_fixture_sample(glyphs[label], rng)).save(path)

    return write_mapped_fixture(root, FEMNIST, [f"f{client:04d}" for client in range(num_clients)],
                                samples_per_client, _FIXTURE_LABEL_NAMES, rng,
                                lambda client_id, split, k, _: f"data/{client_id}/{split}_{k:04d}.png", write_sample)


def _fixture_glyphs(num_classes: int, rng: np.random.Generator) -> np.ndarray:
    block = IMAGE_SIDE // 7
    coarse = (rng.random((num_classes, 7, 7)) < 0.4).astype(np.float32)
    return coarse.repeat(block, axis=1).repeat(block, axis=2)


def _fixture_sample(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shifted = np.roll(glyph, tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
    noisy = 0.1 + 0.8 * shifted + rng.normal(0.0, 0.15, size=glyph.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)
