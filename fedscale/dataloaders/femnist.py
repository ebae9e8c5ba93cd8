"""FEMNIST read from FedScale's on-disk layout, plus a synthetic stand-in in that layout.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/femnist.py, fedscale/dataloaders/
divide_data.py, benchmark/dataset/femnist/README.md, benchmark/configs/femnist/conf.yml)
keeps FEMNIST as::

    <data_dir>/client_data_mapping/train.csv   client_id,sample_path,label_name,label_id
    <data_dir>/client_data_mapping/test.csv    the same columns
    <data_dir>/data/...                        the PNG images

``sample_path`` is relative to ``<data_dir>`` (FedScale opens ``<data_dir>/<sample_path>``),
``label_id`` is the class index, row i of the mapping file is training sample i, and a
client is all rows sharing a ``client_id`` (the writer), numbered by first appearance.
"""
from __future__ import annotations

import csv
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fedscale.dataloaders.dataset import ArrayDataset, DataError
from fedscale.dataloaders.partition import CsvTable, group_by_first_appearance, read_csv_table

MAPPING_DIR = "client_data_mapping"
FEMNIST_COLUMNS = ("client_id", "sample_path", "label_name", "label_id")
IMAGE_SIDE = 28
_COLUMNS_READ = ("client_id", "sample_path", "label_id")
_FIXTURE_LABEL_NAMES = "0123456789"
_FIXTURE_CLIENT_MIX_ALPHA = 0.5


def load_femnist(
    data_dir: str | PathLike[str], data_map_file: str = ""
) -> tuple[ArrayDataset, ArrayDataset, list[np.ndarray]]:
    """Load FEMNIST as (train, test, natural partition).

    Training rows come from ``data_map_file`` if given, else from
    ``client_data_mapping/train.csv``; test rows from ``client_data_mapping/test.csv``.
    Images become 1 x 28 x 28 float32 grayscale in [0, 1] (resized with PIL if needed; not
    inverted). ``num_classes`` is one more than the largest label_id of either split. The
    partition has one array of training indices per client_id, clients in order of first
    appearance in the training mapping file, as FedScale numbers them. Only the client_id,
    sample_path and label_id columns are read. Any problem raises a one-line DataError.
    """
    root = Path(data_dir)
    train_table, test_table = _mapping_tables(root, data_map_file)
    train_labels, test_labels = train_table.int_column("label_id"), test_table.int_column("label_id")
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    train = ArrayDataset(_read_images(root, train_table), torch.from_numpy(train_labels), num_classes)
    test = ArrayDataset(_read_images(root, test_table), torch.from_numpy(test_labels), num_classes)
    return train, test, group_by_first_appearance(train_table.columns["client_id"])


def femnist_client_sizes(data_dir: str | PathLike[str], data_map_file: str = "") -> np.ndarray:
    """Each client's number of training samples as ``load_femnist`` partitions them, read from the
    mapping files alone (their rows and labels are checked, the images are not read)."""
    train_table, test_table = _mapping_tables(Path(data_dir), data_map_file)
    train_table.int_column("label_id")
    test_table.int_column("label_id")
    return np.array([len(rows) for rows in group_by_first_appearance(train_table.columns["client_id"])])


def _mapping_tables(root: Path, data_map_file: str) -> tuple[CsvTable, CsvTable]:
    """The training mapping (``data_map_file`` or the folder's train.csv) and the test mapping."""
    if not root.is_dir():
        raise DataError.at(root, f"a FEMNIST folder holding {MAPPING_DIR}/train.csv and {MAPPING_DIR}/test.csv")
    return (read_csv_table(data_map_file or root / MAPPING_DIR / "train.csv", _COLUMNS_READ),
            read_csv_table(root / MAPPING_DIR / "test.csv", _COLUMNS_READ))


def _read_images(root: Path, table: CsvTable) -> torch.Tensor:
    paths = table.columns["sample_path"]
    images = np.empty((len(paths), 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    for row, sample_path in enumerate(paths):
        images[row, 0] = _read_image(root / str(sample_path), f"{table.path}:{table.lines[row]}")
    return torch.from_numpy(images)


def _read_image(path: Path, listed_at: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            gray = image.convert("L")
    except FileNotFoundError:
        raise DataError.at(path, f"an image file (listed at {listed_at}), but it does not exist") from None
    except OSError:
        raise DataError.at(path, f"an image file (listed at {listed_at}) that PIL can read") from None
    if gray.size != (IMAGE_SIDE, IMAGE_SIDE):
        gray = gray.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.float32) / 255.0


def write_femnist_fixture(root: str | PathLike[str], num_clients: int, samples_per_client: int, seed: int) -> str:
    """Write a small synthetic data set in FedScale's FEMNIST layout under ``root``; return ``root``.

    It stands in for the real download in tests and demos. There are 10 classes, each a fixed
    random blocky 28 x 28 glyph; a sample is its class's glyph shifted by up to one pixel plus
    Gaussian noise, so a model can learn the classes. Each client (writer) draws its labels
    from its own Dir(0.5) class mix, giving FEMNIST-like label skew, and owns
    ``samples_per_client`` training and ``max(1, samples_per_client // 4)`` test images.
    Deterministic in ``seed``.
    """
    if num_clients < 1 or samples_per_client < 1:
        raise ValueError(f"need num_clients, samples_per_client >= 1, got {num_clients}, {samples_per_client}")
    rng = np.random.default_rng(seed)
    glyphs = _fixture_glyphs(len(_FIXTURE_LABEL_NAMES), rng)
    base = Path(root)
    split_sizes = {"train": samples_per_client, "test": max(1, samples_per_client // 4)}
    rows: dict[str, list[tuple[str, str, str, int]]] = {split: [] for split in split_sizes}
    for client in range(num_clients):
        client_id = f"f{client:04d}"
        (base / "data" / client_id).mkdir(parents=True, exist_ok=True)
        class_mix = rng.dirichlet(np.full(len(glyphs), _FIXTURE_CLIENT_MIX_ALPHA))
        for split, size in split_sizes.items():
            for k, label in enumerate(rng.choice(len(glyphs), size=size, p=class_mix)):
                sample_path = f"data/{client_id}/{split}_{k:04d}.png"
                Image.fromarray(_fixture_sample(glyphs[label], rng)).save(base / sample_path)
                rows[split].append((client_id, sample_path, _FIXTURE_LABEL_NAMES[label], int(label)))
    (base / MAPPING_DIR).mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        with open(base / MAPPING_DIR / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(FEMNIST_COLUMNS)
            writer.writerows(split_rows)
    return str(base)


def _fixture_glyphs(num_classes: int, rng: np.random.Generator) -> np.ndarray:
    block = IMAGE_SIDE // 7
    coarse = (rng.random((num_classes, 7, 7)) < 0.4).astype(np.float32)
    return coarse.repeat(block, axis=1).repeat(block, axis=2)


def _fixture_sample(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shifted = np.roll(glyph, tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
    noisy = 0.1 + 0.8 * shifted + rng.normal(0.0, 0.15, size=glyph.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)
