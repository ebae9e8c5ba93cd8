"""The data set type shared by every loader, its samples made on access, and the error every
loader raises."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


class DataError(ValueError):
    """A data set on disk, or a request for one, that cannot be honoured.

    Messages are one line naming the offending file (and line, where there is one) and what
    was expected there, so a user can fix the input without reading a traceback. ``key`` is
    the job key whose value is at fault, where it is a key's rather than a file's.
    """

    key: str = ""

    @classmethod
    def at(cls, path: object, expected: str, line: int | None = None) -> DataError:
        """Build the error for ``path`` (optionally at 1-based ``line``) with ``expected``."""
        where = f"{path}:{line}" if line is not None else f"{path}"
        return cls(f"{where}: expected {expected}")

    @classmethod
    def for_key(cls, key: str, expected: str) -> DataError:
        """The error for job key ``key``, whose value the data cannot honour; ``key`` says which."""
        error = cls.at(key, expected)
        error.key = key
        return error


class LazySamples:
    """Samples made only when indexed, by ``load`` from their positions in a compact source (files
    on disk, uint8 pixels), so a data set need not be held decoded in memory.

    It indexes like the float32 tensor of all its samples would: positions (an index tensor or
    array, or a slice) give the float32 tensor of those samples; ``rows`` is the view a tensor
    slice is, holding no samples.
    """

    dtype = torch.float32

    def __init__(self, load: Callable[[np.ndarray], torch.Tensor], sample_shape: tuple[int, ...],
                 positions: np.ndarray) -> None:
        self._load = load
        self._sample_shape = tuple(sample_shape)
        self._positions = positions

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self._positions), *self._sample_shape))

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index: torch.Tensor | np.ndarray | slice) -> torch.Tensor:
        return self._load(self._positions[index.numpy() if isinstance(index, torch.Tensor) else index])

    def rows(self, rows: slice) -> LazySamples:
        """The samples at ``rows``, still unmade."""
        return LazySamples(self._load, self._sample_shape, self._positions[rows])


@dataclass
class ArrayDataset:
    """Samples and labels, so clients can slice their shard without copies.

    ``x`` is float32, N x D for flat data or N x C x H x W for images, held as a tensor or, for
    data sets too large to hold decoded, as LazySamples; ``y`` is an int64 tensor of length N
    with values in ``[0, num_classes)``.
    """

    x: torch.Tensor | LazySamples
    y: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.y.dtype != torch.int64:
            raise ValueError(f"expected float32 x and int64 y, got {self.x.dtype} and {self.y.dtype}")
        if self.y.dim() != 1 or len(self.x) != len(self.y):
            raise ValueError(f"expected y of shape ({len(self.x)},), got {tuple(self.y.shape)}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)``."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, rows: slice) -> ArrayDataset:
        """The samples at ``rows``, sharing this data set's storage."""
        x = self.x.rows(rows) if isinstance(self.x, LazySamples) else self.x[rows]
        return ArrayDataset(x, self.y[rows], self.num_classes)
