"""Ways to spread a training set over simulated clients, and the CSV reading they share.

Every partition is a list with one int64 array per client holding indices into the training
set; the clients' arrays are disjoint. All randomness comes from a ``numpy`` generator seeded
by the caller, so a partition is a pure function of its arguments.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

from fedscale.dataloaders.dataset import DataError

_TEXT = np.dtypes.StringDType()
_MAX_DIGITS = 18  # every 18-digit number fits in an int64


@dataclass(frozen=True)
class CsvTable:
    """Chosen columns of a CSV file as strings, with every row's line number for error messages."""

    path: str
    lines: np.ndarray
    columns: dict[str, np.ndarray]

    def error(self, row: int, expected: str) -> DataError:
        """The DataError for data row ``row`` (0-based) of this file."""
        return DataError.at(self.path, expected, int(self.lines[row]))

    def int_column(self, name: str, limit: int | None = None) -> np.ndarray:
        """Column ``name`` parsed as non-negative integers, each below ``limit`` if one is given."""
        text = np.strings.strip(self.columns[name])
        valid = np.strings.isdecimal(text) & (np.strings.str_len(text) <= _MAX_DIGITS)
        malformed = np.flatnonzero(~valid)
        if malformed.size:
            row = malformed[0]
            raise self.error(row, f"a non-negative integer {name}, got {str(self.columns[name][row])!r}")
        values = text.astype(np.int64)
        if limit is not None and (too_large := np.flatnonzero(values >= limit)).size:
            row = too_large[0]
            raise self.error(row, f"{name} below {limit}, got {values[row]}")
        return values


def read_csv_table(path: str | PathLike[str], columns: Sequence[str]) -> CsvTable:
    """Read ``columns`` (matched by header name) from a UTF-8 CSV file with a header row.

    Blank lines are skipped. Raises DataError naming the file, and the line where there is
    one, if the file is unreadable, lacks a column, has a short row or has no data rows.
    """
    path = str(path)
    wanted = ", ".join(columns)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in columns if name not in header]
            if missing:
                raise DataError.at(path, f"a header with columns {wanted}; missing {', '.join(missing)}", 1)
            positions = [header.index(name) for name in columns]
            rows, lines = [], []
            for row in reader:
                if not row:
                    continue
                if len(row) < len(header):
                    expected = f"{len(header)} fields as in the header, got {len(row)}"
                    raise DataError.at(path, expected, reader.line_num)
                rows.append([row[p] for p in positions])
                lines.append(reader.line_num)
    except OSError:
        raise DataError.at(path, f"a readable CSV file with columns {wanted}") from None
    except UnicodeDecodeError:
        raise DataError.at(path, "a UTF-8 text CSV file") from None
    except csv.Error as error:
        raise DataError.at(path, f"well-formed CSV ({error})", reader.line_num) from None
    if not rows:
        raise DataError.at(path, "at least one data row after the header")
    table = np.array(rows, dtype=_TEXT)
    return CsvTable(path, np.array(lines), {name: table[:, i] for i, name in enumerate(columns)})


def group_by_owner(owner: np.ndarray, num_groups: int) -> list[np.ndarray]:
    """Split ``range(len(owner))`` into ``num_groups`` ascending arrays: group g holds each i with owner[i] == g.

    One stable sort instead of a Python loop over samples.
    """
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=num_groups)
    return np.split(order, np.cumsum(counts)[:-1])


def group_by_first_appearance(keys: np.ndarray) -> list[np.ndarray]:
    """Group the positions of equal ``keys``; groups are ordered by where their key first appears.

    This is how FedScale numbers clients when it reads a client mapping file.
    """
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(len(first))
    return group_by_owner(rank[inverse], len(first))


def contiguous_bounds(total: int, parts: int) -> np.ndarray:
    """``parts + 1`` boundaries cutting ``range(total)`` into contiguous blocks whose sizes
    differ by at most one (block ``i`` is ``bounds[i]:bounds[i + 1]``)."""
    return np.linspace(0, total, parts + 1).round().astype(np.int64)


def iid_partition(num_samples: int, num_clients: int, seed: int) -> list[np.ndarray]:
    """Deal a random permutation of the samples round-robin, so client sizes differ by at most one."""
    _check_num_clients(num_clients)
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    rng = np.random.default_rng(seed)
    owner = rng.permutation(np.arange(num_samples) % num_clients)
    return group_by_owner(owner, num_clients)


def dirichlet_partition(labels: np.ndarray, num_clients: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Label-skewed partition of Hsu, Qi and Brown (2019), "Measuring the Effects of
    Non-Identical Data Distribution for Federated Visual Classification", arXiv:1909.06335.

    For each class, proportions over clients are drawn from Dir(alpha * 1) and the class's
    shuffled samples are cut at those proportions; small alpha concentrates each class on few
    clients, large alpha approaches IID. Clients left empty each then receive one sample from
    the currently largest client (lowest id on ties), namely its highest-indexed sample, which
    is deterministic and moves as few samples as possible.
    """
    labels = np.asarray(labels)
    _check_num_clients(num_clients)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if len(labels) < num_clients:
        raise ValueError(f"cannot give {num_clients} clients a sample each from {len(labels)} samples")
    rng = np.random.default_rng(seed)
    owner = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        proportions = rng.dirichlet(np.full(num_clients, alpha))
        cuts = np.round(np.cumsum(proportions)[:-1] * len(members))
        owner[members] = np.searchsorted(cuts, np.arange(len(members)), side="right")
    return group_by_owner(_fill_empty_clients(owner, num_clients), num_clients)


def _fill_empty_clients(owner: np.ndarray, num_clients: int) -> np.ndarray:
    owner = owner.copy()
    counts = np.bincount(owner, minlength=num_clients)
    for empty in np.flatnonzero(counts == 0):
        donor = np.argmax(counts)
        owner[np.flatnonzero(owner == donor)[-1]] = empty
        counts[donor] -= 1
        counts[empty] += 1
    return owner


def map_file_partition(path: str | PathLike[str], num_samples: int) -> list[np.ndarray]:
    """Partition an in-memory training set by a client mapping CSV.

    The file has a header with at least ``client_id`` and ``sample_path``; here sample_path is
    the integer index of a training sample. Clients are ordered by first appearance in the
    file (as FedScale does) and keep their samples in file order. Every sample may belong to
    at most one client; samples the file does not name belong to no client. A malformed,
    out-of-range or repeated sample_path raises DataError naming the file and line.
    """
    table = read_csv_table(path, ("client_id", "sample_path"))
    samples = table.int_column("sample_path", limit=num_samples)
    repeated = np.ones(len(samples), dtype=bool)
    repeated[np.unique(samples, return_index=True)[1]] = False
    if repeated.any():
        row = np.flatnonzero(repeated)[0]
        raise table.error(row, f"each sample_path at most once, got {samples[row]} again")
    return [samples[rows] for rows in group_by_first_appearance(table.columns["client_id"])]


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``draws`` each class gets, in proportion to ``counts``: the floors, then one
    more for the largest remainders, ties broken at random (the approximate mode of the
    multivariate hypergeometric, as scikit-learn computes it)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    remainder = continuous - floored
    for value in np.sort(np.unique(remainder))[::-1]:
        if need <= 0:
            break
        (tied,) = np.where(remainder == value)
        chosen = rng.choice(tied, size=min(len(tied), need), replace=False)
        floored[chosen] += 1
        need -= len(chosen)
    return floored.astype(int)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions with each class split in the same proportion: the split of
    scikit-learn's ``train_test_split(..., stratify=labels, random_state=seed)``, draw for draw
    (``StratifiedShuffleSplit``: class shares by ``_approximate_mode``, a permutation per class,
    then one of each side), without importing scikit-learn, which costs a process most of a
    second."""
    n_test = math.ceil(test_fraction * len(labels))
    n_train = len(labels) - n_test
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for own, n_i, t_i in zip(members, train_counts, test_counts):
        shuffled = own.take(rng.permutation(len(own)), mode="clip")
        train.extend(shuffled[:n_i])
        test.extend(shuffled[n_i:n_i + t_i])
    return rng.permutation(train), rng.permutation(test)


def _check_num_clients(num_clients: int) -> None:
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")
