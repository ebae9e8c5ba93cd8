"""ResNet-18, -34 and -50 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
Table 1): two-layer basic blocks for 18 and 34, three-layer bottleneck blocks (1x1, 3x3, 1x1,
expansion 4) for 50, four stages of 64, 128, 256, 512 planes, projection shortcuts (1x1 conv +
BatchNorm) where the shape changes, global average pooling and one linear layer.

As torchvision builds them (so the ImageNet parameter counts are its published ones): the
bottleneck strides in its 3x3 convolution ("ResNet v1.5"). Ours: the stem follows the input's
resolution (``image_input``: the 7x7 stride-2 convolution and max-pool for inputs of 64 pixels
or more, a 3x3 stride-1 convolution without max-pool below), and the first convolution takes the
data set's channels. Weights are randomly initialised (``he_init``), never downloaded.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fedscale.dataloaders.models.image_input import image_input
from fedscale.dataloaders.models.layers import Residual, conv_bn, he_init

_STAGE_PLANES = (64, 128, 256, 512)
_STEM_CHANNELS = 64


def _basic_block(in_channels: int, planes: int, out_channels: int, stride: int) -> nn.Module:
    branch = nn.Sequential(conv_bn(in_channels, planes, 3, stride), conv_bn(planes, out_channels, 3, activation=None))
    return Residual(branch, _shortcut(in_channels, out_channels, stride), nn.ReLU())


def _bottleneck(in_channels: int, planes: int, out_channels: int, stride: int) -> nn.Module:
    branch = nn.Sequential(conv_bn(in_channels, planes, 1), conv_bn(planes, planes, 3, stride),
                           conv_bn(planes, out_channels, 1, activation=None))
    return Residual(branch, _shortcut(in_channels, out_channels, stride), nn.ReLU())


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The identity where shapes match, else the projection (the paper's option B)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return conv_bn(in_channels, out_channels, 1, stride, activation=None)


Block = Callable[[int, int, int, int], nn.Module]
# name: (block, its expansion of planes to output channels, blocks per stage)
LAYOUTS: dict[str, tuple[Block, int, tuple[int, ...]]] = {
    "resnet18": (_basic_block, 1, (2, 2, 2, 2)),
    "resnet34": (_basic_block, 1, (3, 4, 6, 3)),
    "resnet50": (_bottleneck, 4, (3, 4, 6, 3)),
}


def resnet(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet ``name`` (a key of LAYOUTS) for C x H x W samples and ``num_classes`` outputs."""
    block, expansion, repeats = LAYOUTS[name]
    image = image_input(name, input_shape)
    if image.small:
        stem = conv_bn(image.channels, _STEM_CHANNELS, 3)
    else:
        stem = nn.Sequential(conv_bn(image.channels, _STEM_CHANNELS, 7, 2), nn.MaxPool2d(3, 2, padding=1))
    blocks: list[nn.Module] = []
    channels = _STEM_CHANNELS
    for stage, (planes, count) in enumerate(zip(_STAGE_PLANES, repeats)):
        for index in range(count):
            blocks.append(block(channels, planes, planes * expansion, 2 if stage > 0 and index == 0 else 1))
            channels = planes * expansion
    return he_init(nn.Sequential(stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(channels, num_classes)))
