"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR
2018, Table 2), width multiplier 1.0: a 32-channel stride-2 stem, seven stages of inverted
residual blocks (1x1 expansion by t, 3x3 depthwise, linear 1x1 projection; an identity shortcut
where stride is 1 and channels match), a 1x1 convolution to 1280 channels, global average
pooling and one linear layer. ReLU6 throughout.

As torchvision builds it (so the ImageNet parameter count is its published one). Ours: no
dropout before the classifier (dropout draws from the process's global generator, which would
make a client's update depend on which clients its executor trained before; it has no
parameters), and for inputs under 64 pixels (``image_input``) the stem and the 24-channel stage
stride 1 instead of 2, so the network shrinks its input 8-fold instead of 32-fold, as the CIFAR
MobileNetV2 variants do; the first convolution takes the data set's channels. Weights are
randomly initialised (``he_init``), never downloaded.
"""
from __future__ import annotations

from torch import nn

from fedscale.dataloaders.models.image_input import image_input
from fedscale.dataloaders.models.layers import Residual, conv_bn, he_init

_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280
# (expansion t, output channels c, blocks n, first block's stride s), the paper's Table 2
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1))
_SMALL_IMAGE_STAGE = 1  # the stage that strides 1 on small images


def _inverted_residual(in_channels: int, out_channels: int, stride: int, expansion: int) -> nn.Module:
    hidden = in_channels * expansion
    expand = [conv_bn(in_channels, hidden, 1, activation=nn.ReLU6)] if expansion != 1 else []
    branch = nn.Sequential(*expand, conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
                           conv_bn(hidden, out_channels, 1, activation=None))
    return Residual(branch) if stride == 1 and in_channels == out_channels else branch


def mobilenet_v2(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """MobileNetV2 for C x H x W samples and ``num_classes`` outputs."""
    image = image_input("mobilenet_v2", input_shape)
    blocks: list[nn.Module] = [conv_bn(image.channels, _STEM_CHANNELS, 3, 1 if image.small else 2,
                                       activation=nn.ReLU6)]
    channels = _STEM_CHANNELS
    for stage, (expansion, out_channels, count, stride) in enumerate(_STAGES):
        if image.small and stage == _SMALL_IMAGE_STAGE:
            stride = 1
        for index in range(count):
            blocks.append(_inverted_residual(channels, out_channels, stride if index == 0 else 1, expansion))
            channels = out_channels
    return he_init(nn.Sequential(*blocks, conv_bn(channels, _LAST_CHANNELS, 1, activation=nn.ReLU6),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(_LAST_CHANNELS, num_classes)))
