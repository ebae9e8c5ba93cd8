"""The data set types the loaders return (class-labelled samples, or token sequences for
next-word prediction), samples made on access, and the error every loader raises."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

import numpy as np
import torch


# What a data set's samples are for, which decides the training loss and the test accuracy
# (``fedscale.cloud.execution.torch_client``): a class per sample, or the next token at each position.
CLASSIFICATION = "classification"
NEXT_WORD = "next_word"
PAD_ID = 0   # the token id filling a sequence past its end, in inputs and targets alike


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
    task: ClassVar[str] = CLASSIFICATION

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


@dataclass
class TokenDataset:
    """Token sequences for next-word prediction, indexed like ArrayDataset.

    ``x`` holds N input sequences of T int64 token ids and ``y`` their targets, the same tokens
    shifted by one (``y[:, t]`` is the token after ``x[:, t]``); both hold PAD_ID past a
    sequence's end, where a target is not scored. ``num_classes`` is the vocabulary's size.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    task: ClassVar[str] = NEXT_WORD

    def __post_init__(self) -> None:
        if self.x.dtype != torch.int64 or self.y.dtype != torch.int64 or self.x.dim() != 2:
            raise ValueError(f"expected int64 x and y of shape (N, T), got {self.x.dtype} {tuple(self.x.shape)} "
                             f"and {self.y.dtype}")
        if self.x.shape != self.y.shape:
            raise ValueError(f"expected y of shape {tuple(self.x.shape)}, got {tuple(self.y.shape)}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sequence, ``(T,)``."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, rows: slice) -> TokenDataset:
        """The sequences at ``rows``, sharing this data set's storage."""
        return TokenDataset(self.x[rows], self.y[rows], self.num_classes)


AnyDataset: TypeAlias = ArrayDataset | TokenDataset
