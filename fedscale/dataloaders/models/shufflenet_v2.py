"""ShuffleNetV2 (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", ECCV 2018, Table 5) at widths 0.5, 1.0, 1.5 and 2.0 (``shufflenet_v2_x2_0``): a
24-channel stride-2 stem and a max-pool, three stages of 4, 8 and 4 units, a 1x1 convolution,
global average pooling and one linear layer. A unit splits its channels in two, passes one half
through (or, in a stage's first, stride-2 unit, through a depthwise-separable branch of its
own), runs the other through 1x1, 3x3 depthwise, 1x1, concatenates and shuffles the channels.

As torchvision builds it (so the ImageNet parameter counts are its published ones). Ours: for
inputs under 64 pixels (``image_input``) the stem strides 1 and the max-pool is left out, so the
network shrinks its input 8-fold instead of 32-fold; the first convolution takes the data set's
channels. Weights are randomly initialised (``he_init``), never downloaded.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from fedscale.dataloaders.models.image_input import image_input
from fedscale.dataloaders.models.layers import conv_bn, he_init

_STAGE_UNITS = (4, 8, 4)
# name: (stem, stage 2, stage 3, stage 4, last convolution) output channels, the paper's Table 5
STAGE_CHANNELS: dict[str, tuple[int, int, int, int, int]] = {
    "shufflenet_v2_x0_5": (24, 48, 96, 192, 1024),
    "shufflenet_v2_x1_0": (24, 116, 232, 464, 1024),
    "shufflenet_v2_x1_5": (24, 176, 352, 704, 1024),
    "shufflenet_v2_x2_0": (24, 244, 488, 976, 2048),
}


class ShuffleUnit(nn.Module):
    """One unit: stride 1 keeps half the channels and transforms the other half; stride 2
    transforms all channels in two branches, halving the resolution and doubling the channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.stride = stride
        self.shortcut_branch = nn.Sequential(
            conv_bn(in_channels, in_channels, 3, stride, groups=in_channels, activation=None),
            conv_bn(in_channels, half, 1),
        ) if stride == 2 else None
        self.branch = nn.Sequential(
            conv_bn(in_channels if stride == 2 else half, half, 1),
            conv_bn(half, half, 3, stride, groups=half, activation=None),
            conv_bn(half, half, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.shortcut_branch is None:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat((kept, self.branch(transformed)), dim=1)
        else:
            out = torch.cat((self.shortcut_branch(x), self.branch(x)), dim=1)
        return _shuffle(out)


def _shuffle(x: Tensor) -> Tensor:
    """Interleave the two halves' channels (the paper's channel shuffle with 2 groups)."""
    batch, channels, height, width = x.shape
    return x.view(batch, 2, channels // 2, height, width).transpose(1, 2).reshape(batch, channels, height, width)


def shufflenet_v2(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ShuffleNetV2 ``name`` (a key of STAGE_CHANNELS) for C x H x W samples and ``num_classes`` outputs."""
    stem_channels, *stage_channels, last_channels = STAGE_CHANNELS[name]
    image = image_input(name, input_shape)
    layers: list[nn.Module] = [conv_bn(image.channels, stem_channels, 3, 1 if image.small else 2)]
    if not image.small:
        layers.append(nn.MaxPool2d(3, 2, padding=1))
    channels = stem_channels
    for out_channels, units in zip(stage_channels, _STAGE_UNITS):
        layers += [ShuffleUnit(channels if index == 0 else out_channels, out_channels, 2 if index == 0 else 1)
                   for index in range(units)]
        channels = out_channels
    return he_init(nn.Sequential(*layers, conv_bn(channels, last_channels, 1), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(last_channels, num_classes)))
