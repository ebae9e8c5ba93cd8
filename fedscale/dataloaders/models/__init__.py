"""The models a job names with its ``model`` key, built by ``build_model(name, input_shape,
num_classes)`` for the data set's samples, one module per family:

  simple          logistic, mlp, cnn (ours, small)
  resnet          resnet18, resnet34, resnet50 (He et al., CVPR 2016)
  mobilenet_v2    mobilenet_v2 (Sandler et al., CVPR 2018)
  shufflenet_v2   shufflenet_v2_x0_5 ... shufflenet_v2_x2_0 (Ma et al., ECCV 2018)
  lstm_lm         lstm, a next-word model
  transformer     albert-base-v2, transformer-small (Lan et al., ICLR 2020)

The first three families are classifiers: (B, *input_shape) float samples -> (B, num_classes)
logits. The image networks size their stem by the input's resolution (``image_input``). The last
two are language models: (B, T) token ids -> (B, T, V) logits, V = ``num_classes``. Everything is
written here in PyTorch (no torchvision) and randomly initialised: no weights are downloaded.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from fedscale.dataloaders.catalog import MODEL_NAMES
from fedscale.dataloaders.models import simple
from fedscale.dataloaders.models.lstm_lm import lstm_lm
from fedscale.dataloaders.models.mobilenet_v2 import mobilenet_v2
from fedscale.dataloaders.models.resnet import LAYOUTS, resnet
from fedscale.dataloaders.models.shufflenet_v2 import STAGE_CHANNELS, shufflenet_v2
from fedscale.dataloaders.models.transformer import CONFIGS, albert

__all__ = ["MODEL_NAMES", "build_model"]

_BUILDERS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "logistic": simple.logistic,
    "mlp": simple.mlp,
    "cnn": simple.cnn,
    **{name: partial(resnet, name) for name in LAYOUTS},
    "mobilenet_v2": mobilenet_v2,
    **{name: partial(shufflenet_v2, name) for name in STAGE_CHANNELS},
    "lstm": lstm_lm,
    **{name: partial(albert, name) for name in CONFIGS},
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build model ``name`` (one of MODEL_NAMES) for samples of ``input_shape`` and ``num_classes``
    outputs (a language model's vocabulary); a ValueError naming the model and the shape if the
    model cannot take such samples.

    Weights are initialised from torch's global generator; seed it for reproducible models.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _BUILDERS[name](tuple(input_shape), num_classes)
