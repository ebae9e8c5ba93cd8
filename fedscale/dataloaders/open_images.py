"""Open Images (FedScale's ``openImg``) read from FedScale's on-disk layout, plus a synthetic
stand-in in that layout.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/openimage.py, benchmark/dataset/
open_images/README.md, benchmark/dataset/download.sh) keeps it in its client-mapped layout (see
``client_mapping``) with the images under ``<data_dir>/train/`` and ``<data_dir>/test/``, a
sample_path relative to its split's folder, and the class in label_id (596 classes in
FedScale's preprocessed set). Images become 3 x 256 x 256 as FedScale's ``openImg`` transform
makes them (see ``images``). The set is 66 GB: samples are decoded from their files when a
batch needs them, never held decoded.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from fedscale.dataloaders.client_mapping import MappedLayout, write_mapped_fixture
from fedscale.dataloaders.images import RGB_MEAN, RGB_STD, ImageFormat, striped_class_images

IMAGE_SIDE = 256
_RGB = ImageFormat("RGB", IMAGE_SIDE, RGB_MEAN, RGB_STD)
OPEN_IMAGES = MappedLayout("Open Images", _RGB.shape, _RGB.read, _RGB.features)
_FIXTURE_LABEL_NAMES = ("/m/01g317", "/m/09j2d", "/m/05s2s", "/m/0c9ph5", "/m/083wq", "/m/0jbk")
_FIXTURE_SIDES = (24, 40)


def write_open_images_fixture(root: str | PathLike[str], num_clients: int, samples_per_client: int,
                              seed: int) -> str:
    """Write a small synthetic data set in FedScale's Open Images layout under ``root``; return ``root``.

    It stands in for the real download in tests and demos. There are 6 classes drawn by
    ``images.striped_class_images``, each sample a JPEG or PNG of a random size between 24 and 40
    pixels a side (so the loader resizes every one).
    Clients are spread as ``client_mapping.write_mapped_fixture`` says. Deterministic in ``seed``.
    """
    if num_clients < 1:
        raise ValueError(f"need num_clients >= 1, got {num_clients}")
    rng = np.random.default_rng(seed)
    draw = striped_class_images(len(_FIXTURE_LABEL_NAMES), rng)

    def write_sample(path: Path, label: int) -> None:
        height, width = rng.integers(_FIXTURE_SIDES[0], _FIXTURE_SIDES[1] + 1, size=2)
        Image.fromarray(draw(label, height, width)).save(path)

    return write_mapped_fixture(root, OPEN_IMAGES, [str(client) for client in range(num_clients)],
                                samples_per_client, _FIXTURE_LABEL_NAMES, rng,
                                lambda client_id, _, k, __: f"{client_id}_{k:04d}.{('jpg', 'png')[k % 2]}",
                                write_sample)
