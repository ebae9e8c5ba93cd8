"""A model whose floating-point state lives in one contiguous vector.

Every parameter and floating buffer of the module is re-pointed to a slice of a single flat
tensor, so the whole model is read, loaded, sent and averaged as one vector with no per-layer
Python work: loading the global model before a client trains is one ``copy_``, and the
client's update is one subtraction. Both ends of the wire build the same architecture, so the
vector's layout is the same everywhere; ``size`` guards against a mismatch.
"""
from __future__ import annotations

import torch
from torch import nn


class ModelVector:
    """Binds the floating state of ``model`` to one flat float32 tensor (``self.vector``);
    ``sizes`` holds each tensor's length in the vector's order (parameters, then buffers)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        parameters = [t for t in model.parameters() if t.is_floating_point()]
        tensors = parameters + [t for t in model.buffers() if t.is_floating_point()]
        self.num_parameters = sum(t.numel() for t in parameters)
        self.sizes = tuple(t.numel() for t in tensors)
        self.size = sum(self.sizes)
        self.vector = torch.empty(self.size, dtype=torch.float32)
        offset = 0
        for t in tensors:
            view = self.vector[offset:offset + t.numel()].view_as(t)
            view.copy_(t.detach())
            t.data = view
            offset += t.numel()

    @property
    def parameters(self) -> torch.Tensor:
        """The parameters' part of the vector (they come before the buffers), a view."""
        return self.vector[:self.num_parameters]

    def bind_gradients(self) -> torch.Tensor:
        """Point every parameter's ``.grad`` at a slice of one flat zeroed tensor, returned, laid out
        like ``parameters``. Autograd accumulates into an existing gradient in place, so zeroing
        the gradients and a plain SGD step are then one operation each on the whole model."""
        gradient = torch.zeros(self.num_parameters, dtype=self.vector.dtype)
        offset = 0
        for t in self.model.parameters():
            if t.is_floating_point():
                t.grad = gradient[offset:offset + t.numel()].view_as(t)
                offset += t.numel()
        return gradient

    @property
    def nbytes(self) -> int:
        return self.size * self.vector.element_size()

    def load_(self, flat: torch.Tensor) -> None:
        """Overwrite the model's state with ``flat`` (same layout)."""
        if flat.numel() != self.size:
            raise ValueError(f"model vector has {flat.numel()} values, this model needs {self.size}")
        with torch.no_grad():
            self.vector.copy_(flat)

    def snapshot(self) -> torch.Tensor:
        """A copy of the current state."""
        return self.vector.detach().clone()
