"""In-memory data set type shared by every loader, and the error every loader raises."""
from __future__ import annotations

from dataclasses import dataclass

import torch


class DataError(ValueError):
    """A data set on disk, or a request for one, that cannot be honoured.

    Messages are one line naming the offending file (and line, where there is one) and what
    was expected there, so a user can fix the input without reading a traceback.
    """

    @classmethod
    def at(cls, path: object, expected: str, line: int | None = None) -> DataError:
        """Build the error for ``path`` (optionally at 1-based ``line``) with ``expected``."""
        where = f"{path}:{line}" if line is not None else f"{path}"
        return cls(f"{where}: expected {expected}")


@dataclass
class ArrayDataset:
    """Samples and labels held as tensors, so clients can slice their shard without copies.

    ``x`` is float32, N x D for flat data or N x C x H x W for images; ``y`` is int64 of
    length N with values in ``[0, num_classes)``.
    """

    x: torch.Tensor
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
