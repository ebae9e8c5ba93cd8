"""Building blocks the image networks share: convolution + BatchNorm (+ activation), the residual
sum, and their initialisation.

Every convolution here is bias-free and followed by BatchNorm, as in the ResNet, MobileNetV2 and
ShuffleNetV2 papers. BatchNorm's running mean and variance are floating buffers, so they travel
and are averaged with the weights in the model vector (``fedscale.cloud.model_vector``), as
FedScale averages the whole state dict.
"""
from __future__ import annotations

from torch import Tensor, nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
            activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """A same-padded ``kernel_size`` convolution without bias, BatchNorm, then ``activation`` (none if None)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """``activation(branch(x) + shortcut(x))``: ResNet's block (ReLU after the sum) and MobileNetV2's
    linear bottleneck (identity shortcut, no activation)."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None = None,
                 activation: nn.Module | None = None) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.branch(x) + self.shortcut(x))


def he_init(model: nn.Module) -> nn.Module:
    """He et al. (ICCV 2015) normal initialisation of every convolution (fan-out, ReLU gain),
    BatchNorm scale 1 and shift 0, as torchvision initialises ResNet and MobileNetV2; linear
    layers keep torch's default. Returns ``model``."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
