"""Small models of our own sized for the bundled data sets: logistic regression, a one-hidden-layer
perceptron and a two-layer CNN. They take flat (D,) or C x H x W samples.

None has BatchNorm or dropout: any batch size trains them, and their whole state is weights.
"""
from __future__ import annotations

import math

from torch import nn

_HIDDEN_UNITS = 128
_CNN_CHANNELS = (16, 32)
_CNN_POOLED_SIDE = 4


def logistic(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Multinomial logistic regression on the flattened sample."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """One hidden layer of 128 ReLU units on the flattened sample."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), _HIDDEN_UNITS),
        nn.ReLU(),
        nn.Linear(_HIDDEN_UNITS, num_classes),
    )


def cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
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
