"""The smallest batch a model trains on. BatchNorm in training mode normalises each channel over
the batch and the channel's pixels, and refuses a single value: a one-sample batch fails wherever
a feature map is 1 x 1, as in the last stage of the image networks on 8 x 8 digits.
"""
from __future__ import annotations

import torch
from torch import nn

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def smallest_training_batch(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """1, or 2 if one sample of ``input_shape`` gives some BatchNorm layer of ``model`` a single
    value per channel. Found by one evaluation-mode pass over a blank sample (running statistics
    untouched, the model's mode restored); a model without BatchNorm is not run."""
    norms = [module for module in model.modules() if isinstance(module, _BATCH_NORMS)]
    if not norms:
        return 1
    values_per_channel: list[int] = []
    hooks = [norm.register_forward_pre_hook(lambda _, args: values_per_channel.append(args[0][0, 0].numel()))
             for norm in norms]
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(training)
    return 2 if min(values_per_channel) == 1 else 1
