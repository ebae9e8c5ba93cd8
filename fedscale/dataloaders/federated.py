"""One entry point turning a job's data settings into a training set split over clients."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedscale.dataloaders.catalog import DATA_SET_ALIASES, DATA_SETS, PARTITIONS, TEXT_DATA_SETS
from fedscale.dataloaders.cifar10 import load_cifar10
from fedscale.dataloaders.client_mapping import MappedLayout, load_mapped, mapped_client_sizes
from fedscale.dataloaders.dataset import AnyDataset, ArrayDataset, DataError
from fedscale.dataloaders.digits import load_digits
from fedscale.dataloaders.femnist import FEMNIST
from fedscale.dataloaders.google_speech import GOOGLE_SPEECH
from fedscale.dataloaders.open_images import OPEN_IMAGES
from fedscale.dataloaders.partition import dirichlet_partition, iid_partition, map_file_partition
from fedscale.dataloaders.text import load_text

if TYPE_CHECKING:
    from fedscale.cloud.config.components import DataConfig

CLIENT_MAPPED: dict[str, MappedLayout] = {"femnist": FEMNIST, "openImg": OPEN_IMAGES, "google_speech": GOOGLE_SPEECH}


@dataclass
class FederatedData:
    """A training set, a shared test set, and per client the indices into ``train`` it owns."""

    train: AnyDataset
    test: AnyDataset
    client_indices: list[np.ndarray]

    @property
    def num_clients(self) -> int:
        return len(self.client_indices)

    @property
    def client_sample_counts(self) -> np.ndarray:
        """int64 array with each client's number of training samples."""
        return np.array([len(indices) for indices in self.client_indices], dtype=np.int64)


def load_federated_data(conf: DataConfig, seed: int) -> FederatedData:
    """Load ``conf.data_set`` and split its training set over clients, seeded by ``seed``.

    digits and cifar10: by ``conf.data_map_file`` if set (sample_path = training-sample index),
    else by ``conf.partition`` into ``conf.num_clients`` clients. femnist, openImg and
    google_speech, and the text sets reddit (alias blog) and stackoverflow: the natural partition
    of FedScale's client mapping, from ``conf.data_map_file`` or ``client_data_mapping/train.csv``
    (``fedscale.dataloaders.text`` for the text sets' layout). Where a map file decides the
    partition, ``conf.num_clients`` is not used. Impossible requests raise DataError.
    """
    if conf.data_set in CLIENT_MAPPED:
        return FederatedData(*load_mapped(conf.data_dir, conf.data_map_file, CLIENT_MAPPED[conf.data_set]))
    if conf.data_set in TEXT_DATA_SETS:
        name = DATA_SET_ALIASES.get(conf.data_set, conf.data_set)
        return FederatedData(*load_text(conf.data_dir, conf.data_map_file, name))
    if conf.data_set in ("digits", "cifar10"):
        train, test = load_digits(seed) if conf.data_set == "digits" else load_cifar10(conf.data_dir)
        return FederatedData(train, test, _partition_in_memory(conf, seed, train))
    raise DataError.for_key("data_set", f"one of {', '.join(DATA_SETS)}, got {conf.data_set!r}")


def client_sample_counts(conf: DataConfig, seed: int) -> np.ndarray:
    """Each client's number of training samples as ``load_federated_data`` splits the data, for
    checking a job before launch: a client-mapped set's from its mapping files alone (samples
    unread), the others' (digits, cifar10, the text sets) from the split itself. Impossible requests raise DataError."""
    if conf.data_set in CLIENT_MAPPED:
        return mapped_client_sizes(conf.data_dir, conf.data_map_file, CLIENT_MAPPED[conf.data_set])
    return load_federated_data(conf, seed).client_sample_counts


def _partition_in_memory(conf: DataConfig, seed: int, train: ArrayDataset) -> list[np.ndarray]:
    if conf.data_map_file:
        return map_file_partition(conf.data_map_file, len(train))
    if not 1 <= conf.num_clients <= len(train):
        expected = f"between 1 and the {len(train)} training samples, got {conf.num_clients}"
        raise DataError.for_key("num_clients", expected)
    if conf.partition == "iid":
        return iid_partition(len(train), conf.num_clients, seed)
    if conf.partition == "dirichlet":
        if not conf.dirichlet_alpha > 0:
            raise DataError.for_key("dirichlet_alpha", f"a value > 0, got {conf.dirichlet_alpha}")
        return dirichlet_partition(train.y.numpy(), conf.num_clients, conf.dirichlet_alpha, seed)
    raise DataError.for_key("partition", f"one of {', '.join(PARTITIONS)}, got {conf.partition!r}")
