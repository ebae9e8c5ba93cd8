"""Small models sized for the bundled data sets, built from a name so jobs can choose one in config.

None has BatchNorm or dropout: with a fixed seed, local training is then fully deterministic
and aggregating weights needs no special handling of running statistics.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from fedscale.dataloaders.catalog import MODEL_NAMES

_HIDDEN_UNITS = 128
_CNN_CHANNELS = (16, 32)
_CNN_POOLED_SIDE = 4


def _logistic(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def _mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), _HIDDEN_UNITS),
        nn.ReLU(),
        nn.Linear(_HIDDEN_UNITS, num_classes),
    )


def _cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two 3x3 same-padded conv+ReLU layers, each followed by a 2x2 max-pool only while the
    pooled image stays at least the head's 4 x 4 input; an adaptive average pool then fixes
    that size, so one architecture serves 8 x 8 digits and 28 x 28 FEMNIST alike."""
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs C x H x W input, got shape {input_shape}")
    layers: list[nn.Module] = []
    channels, side = input_shape[0], min(input_shape[1:])
    for width in _CNN_CHANNELS:
        layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU()]
        if side // 2 >= _CNN_POOLED_SIDE:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        channels = width
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(_CNN_POOLED_SIDE),
        nn.Flatten(),
        nn.Linear(channels * _CNN_POOLED_SIDE**2, num_classes),
    )


_BUILDERS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "logistic": _logistic,
    "mlp": _mlp,
    "cnn": _cnn,
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build model ``name`` (one of MODEL_NAMES) for samples of ``input_shape`` and ``num_classes`` outputs.

    Weights are initialised from torch's global generator; seed it for reproducible models.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _BUILDERS[name](tuple(input_shape), num_classes)
