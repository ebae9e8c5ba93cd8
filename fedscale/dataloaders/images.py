"""Images decoded to model input as FedScale's image data sets feed them to models.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/utils_data.py, ``get_data_transform``)
resizes Open Images to 256 x 256 and normalises each channel by CIFAR-10's mean and standard
deviation, the constants below. Its random flips and crops are left out: training here is
deterministic for a fixed seed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fedscale.dataloaders.dataset import DataError

RGB_MEAN = (0.4914, 0.4822, 0.4465)
RGB_STD = (0.2023, 0.1994, 0.2010)


def normalise(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 N x C x H x W pixels as float32, scaled to [0, 1], minus ``mean`` over ``std`` per channel."""
    shape = (1, len(mean), 1, 1)
    scaled = pixels.to(torch.float32) / 255.0
    return (scaled - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


@dataclass(frozen=True)
class ImageFormat:
    """Images in PIL ``mode`` ("L" grey or "RGB"), resized bilinearly to ``side`` x ``side``
    where they differ (``read``), then normalised per channel by ``mean`` and ``std`` a batch at a
    time (``features``), so pixels stay uint8 until a batch is used."""

    mode: str
    side: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """C x H x W of one decoded image."""
        return len(self.mean), self.side, self.side

    def read(self, path: Path) -> np.ndarray:
        """The image at ``path`` as a uint8 C x H x W array; a one-line DataError naming ``path``
        if it is missing or not an image PIL can read."""
        try:
            with Image.open(path) as image:
                converted = image.convert(self.mode)
        except FileNotFoundError:
            raise DataError.at(path, "an image file, but it does not exist") from None
        except OSError:
            raise DataError.at(path, "an image file that PIL can read") from None
        if converted.size != (self.side, self.side):
            converted = converted.resize((self.side, self.side), Image.Resampling.BILINEAR)
        return np.asarray(converted).reshape(self.side, self.side, -1).transpose(2, 0, 1)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """A uint8 N x C x H x W batch of read images as normalised float32."""
        return normalise(pixels, self.mean, self.std)


def striped_class_images(num_classes: int, rng: np.random.Generator) -> Callable[[int, int, int], np.ndarray]:
    """For fixtures: a function drawing (from ``rng``) an H x W x 3 uint8 image of class ``label``
    given ``(label, height, width)``: the class's fixed random colour, striped at the class's own
    angle with an 8-pixel period, plus Gaussian noise, so a model can learn the classes."""
    colours = rng.uniform(40, 215, size=(num_classes, 3))
    angles = np.linspace(0.0, np.pi, num_classes, endpoint=False)

    def draw(label: int, height: int, width: int) -> np.ndarray:
        rows, columns = np.mgrid[0:height, 0:width] * (2 * np.pi / 8)
        stripes = np.sin(rows * np.sin(angles[label]) + columns * np.cos(angles[label]))
        pixels = colours[label] + 40 * stripes[..., None] + rng.normal(0, 12, size=(height, width, 3))
        return np.clip(pixels, 0, 255).astype(np.uint8)

    return draw
