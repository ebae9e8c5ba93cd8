"""How the image networks (ResNet, MobileNetV2, ShuffleNetV2) read a data set's samples: the
channels of their first convolution and the stem their resolution calls for.

The papers' ImageNet networks shrink a 224 x 224 input 32-fold: a stride-2 stem, then a max-pool
(ResNet, ShuffleNetV2) or a stride-2 first block (MobileNetV2), then three stride-2 stages. On
28 x 28 FEMNIST or 32 x 32 CIFAR that leaves a single pixel before the last stage. For small
images the stem keeps full resolution instead, as the CIFAR networks do (He et al., CVPR 2016,
Sec. 4.2; FedScale's model zoo's ``*_cifar`` models): a stride-1 stem and no max-pool, so the
network shrinks its input 8-fold and 32 x 32 ends at 4 x 4.

The rule, on a C x H x W sample with side ``min(H, W)``:
  side >= 64       the ImageNet stem (32-fold);
  8 <= side < 64   the small-image stem (8-fold), e.g. FEMNIST, CIFAR, 8 x 8 digits (ends at 1 x 1);
  side < 8         refused: 8-fold shrinking leaves less than a pixel for the last stage.
The first convolution takes C input channels (1 for FEMNIST and digits).
"""
from __future__ import annotations

from dataclasses import dataclass

LARGE_SIDE = 64
SMALLEST_SIDE = 8


@dataclass(frozen=True)
class ImageInput:
    """The input channels, and whether the small-image stem applies."""

    channels: int
    small: bool


def image_input(model: str, input_shape: tuple[int, ...]) -> ImageInput:
    """How ``model`` reads samples of ``input_shape``; a ValueError naming both if it cannot."""
    if len(input_shape) != 3:
        raise ValueError(f"{model} needs C x H x W images, got samples of shape {input_shape}")
    channels, height, width = input_shape
    if min(height, width) < SMALLEST_SIDE:
        raise ValueError(f"{model} needs images of at least {SMALLEST_SIDE} x {SMALLEST_SIDE} pixels, "
                         f"got {height} x {width}")
    return ImageInput(channels, min(height, width) < LARGE_SIDE)
