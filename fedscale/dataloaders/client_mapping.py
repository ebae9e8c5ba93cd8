"""FedScale's client-mapped data sets (FEMNIST, Open Images, Speech Commands) read from its layout.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/femnist.py, openimage.py, speech.py and
divide_data.py) keeps each of them under ``data_dir`` as::

    <data_dir>/client_data_mapping/train.csv   client_id,sample_path,label_name,label_id
    <data_dir>/client_data_mapping/test.csv    the same columns
    <data_dir>/...                             one file per sample

Row i of the training mapping is training sample i, and a client is all rows sharing a
``client_id``, numbered by first appearance, as FedScale numbers them. A ``MappedLayout`` says
for one data set where its files lie, how a file becomes a sample and where labels come from.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from fedscale.dataloaders.dataset import ArrayDataset, DataError, LazySamples
from fedscale.dataloaders.partition import CsvTable, group_by_first_appearance, read_csv_table

MAPPING_DIR = "client_data_mapping"
MAPPING_COLUMNS = ("client_id", "sample_path", "label_name", "label_id")
SPLITS = ("train", "test")
_FIXTURE_CLIENT_MIX_ALPHA = 0.5


@dataclass(frozen=True)
class MappedLayout:
    """How one client-mapped data set lies under ``data_dir`` and becomes samples.

    ``read`` turns one sample file into an array (the same shape for every file), raising a
    one-line DataError naming the file; ``features`` turns a batch of those, stacked into a
    tensor, into float32 samples of ``sample_shape``. With ``split_folders`` a sample_path is
    relative to ``<data_dir>/train/`` or ``<data_dir>/test/`` (FedScale's Open Images and Speech
    Commands), else to ``<data_dir>`` (its FEMNIST). With ``class_names`` a label is its
    label_name's position there (FedScale's Speech Commands ignores label_id), else it is
    label_id and there is one class more than the largest label_id of either split.
    ``in_memory`` decodes every sample at load (for a set small enough, whose bad files then fail
    the load at once), else samples are decoded from their files when indexed, so memory does not
    grow with the data set.
    """

    name: str
    sample_shape: tuple[int, ...]
    read: Callable[[Path], np.ndarray]
    features: Callable[[torch.Tensor], torch.Tensor]
    split_folders: bool = True
    class_names: tuple[str, ...] = ()
    in_memory: bool = False

    def folder(self, root: Path, split: str) -> Path:
        """The folder a sample_path of ``split`` is relative to."""
        return root / split if self.split_folders else root

    @property
    def label_column(self) -> str:
        return "label_name" if self.class_names else "label_id"


def load_mapped(data_dir: str | PathLike[str], data_map_file: str, layout: MappedLayout
                ) -> tuple[ArrayDataset, ArrayDataset, list[np.ndarray]]:
    """Load a data set in ``layout`` as (train, test, natural partition).

    Training rows come from ``data_map_file`` if given, else from
    ``client_data_mapping/train.csv``; test rows from ``client_data_mapping/test.csv``; only the
    client_id, sample_path and label columns are read. The partition has one array of training
    indices per client_id, in order of first appearance. Any problem raises a one-line DataError
    naming the file (and the mapping line that lists it).
    """
    root = Path(data_dir)
    tables = _mapping_tables(root, data_map_file, layout)
    labels = [_labels(table, layout) for table in tables]
    num_classes = len(layout.class_names) or int(max(split.max() for split in labels)) + 1
    train, test = (ArrayDataset(_samples(layout.folder(root, split), table, layout), torch.from_numpy(split_labels),
                                num_classes)
                   for split, table, split_labels in zip(SPLITS, tables, labels))
    return train, test, group_by_first_appearance(tables[0].columns["client_id"])


def mapped_client_sizes(data_dir: str | PathLike[str], data_map_file: str, layout: MappedLayout) -> np.ndarray:
    """Each client's number of training samples as ``load_mapped`` partitions them, from the mapping
    files alone (their rows and labels are checked, the sample files are not read)."""
    tables = _mapping_tables(Path(data_dir), data_map_file, layout)
    for table in tables:
        _labels(table, layout)
    return np.array([len(rows) for rows in group_by_first_appearance(tables[0].columns["client_id"])])


def _mapping_tables(root: Path, data_map_file: str, layout: MappedLayout) -> tuple[CsvTable, CsvTable]:
    """The training mapping (``data_map_file`` or the folder's train.csv) and the test mapping."""
    if not root.is_dir():
        raise DataError.at(root, f"a {layout.name} folder holding {MAPPING_DIR}/train.csv and {MAPPING_DIR}/test.csv")
    columns = ("client_id", "sample_path", layout.label_column)
    return (read_csv_table(data_map_file or root / MAPPING_DIR / "train.csv", columns),
            read_csv_table(root / MAPPING_DIR / "test.csv", columns))


def _labels(table: CsvTable, layout: MappedLayout) -> np.ndarray:
    if not layout.class_names:
        return table.int_column("label_id")
    names = np.strings.strip(table.columns["label_name"])
    classes = np.array(layout.class_names, dtype=names.dtype)
    order = np.argsort(classes)
    found = np.minimum(np.searchsorted(classes[order], names), len(classes) - 1)
    unknown = np.flatnonzero(classes[order][found] != names)
    if unknown.size:
        row = unknown[0]
        raise table.error(row, f"a label_name among the {len(classes)} {layout.name} classes, got {str(names[row])!r}")
    return order[found].astype(np.int64)


def _samples(folder: Path, table: CsvTable, layout: MappedLayout) -> torch.Tensor | LazySamples:
    paths = table.columns["sample_path"]

    def load(positions: np.ndarray) -> torch.Tensor:
        if not len(positions):
            return torch.empty((0, *layout.sample_shape))
        batch: np.ndarray | None = None
        for row, position in enumerate(positions):
            try:
                sample = layout.read(folder / str(paths[position]))
            except DataError as error:
                raise DataError(f"{error} (listed at {table.path}:{table.lines[position]})") from None
            if batch is None:
                batch = np.empty((len(positions), *sample.shape), dtype=sample.dtype)
            batch[row] = sample
        return layout.features(torch.from_numpy(batch))

    samples = LazySamples(load, layout.sample_shape, np.arange(len(paths)))
    return samples[:] if layout.in_memory else samples


def write_mapped_fixture(root: str | PathLike[str], layout: MappedLayout, client_ids: Sequence[str],
                         samples_per_client: int, label_names: Sequence[str], rng: np.random.Generator,
                         sample_path: Callable[[str, str, int, int], str],
                         write_sample: Callable[[Path, int], None]) -> str:
    """Write a synthetic data set in ``layout`` under ``root``; return ``root``.

    Each client draws its labels (indices into ``label_names``, also written as label_id) from
    its own Dir(0.5) class mix, giving FEMNIST-like label skew, and owns ``samples_per_client``
    training and ``max(1, samples_per_client // 4)`` test samples. The k-th sample of label
    ``label`` of a client's split is written by ``write_sample(path, label)`` to ``path``, the
    split's folder joined with ``sample_path(client_id, split, k, label)``.
    """
    if not client_ids or samples_per_client < 1:
        raise ValueError(f"need a client and samples_per_client >= 1, got {len(client_ids)}, {samples_per_client}")
    base = Path(root)
    split_sizes = {"train": samples_per_client, "test": max(1, samples_per_client // 4)}
    rows: dict[str, list[tuple[str, str, str, int]]] = {split: [] for split in SPLITS}
    for client_id in client_ids:
        class_mix = rng.dirichlet(np.full(len(label_names), _FIXTURE_CLIENT_MIX_ALPHA))
        for split, size in split_sizes.items():
            for k, label in enumerate(rng.choice(len(label_names), size=size, p=class_mix)):
                relative = sample_path(client_id, split, k, int(label))
                path = layout.folder(base, split) / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                write_sample(path, int(label))
                rows[split].append((client_id, relative, label_names[label], int(label)))
    write_mappings(base, rows)
    return str(base)


def write_mappings(root: Path, rows: Mapping[str, Sequence[tuple[str, str, str, int]]]) -> None:
    """Write each split's rows to ``<root>/client_data_mapping/<split>.csv`` under FedScale's header."""
    (root / MAPPING_DIR).mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        with open(root / MAPPING_DIR / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(MAPPING_COLUMNS)
            writer.writerows(split_rows)
