"""Static (fixed-threshold) L2 clipping pre-aggregator.

Each input is projected onto the L2 ball of radius c,

    y_i = min(1, c / ||x_i||_2) * x_i,

the rule called ``Clipping`` in ByzFL and used as the static baseline in Allouah et al.,
"The Vital Role of Gradient Clipping in Byzantine-Resilient Distributed Learning", 2024
(arXiv:2405.14432), Section 3. Rows of norm <= c (including zero rows) are unchanged.
Rows with an infinite norm become NaN (inf * 0), as in ByzFL.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_preaggregation, check_real
from fedscale.robust.report import note


def clip_rows(updates: torch.Tensor, threshold: torch.Tensor | float, report: dict | None = None,
              norms: torch.Tensor | None = None) -> torch.Tensor:
    """Scale each row with norm above ``threshold`` down to norm ``threshold`` (the rows
    scaled go to ``report["clipped"]``); ``norms`` are the row norms if already computed."""
    norms = (torch.linalg.vector_norm(updates, dim=1) if norms is None else norms)[:, None]
    threshold = torch.as_tensor(threshold, dtype=updates.dtype, device=updates.device)
    over = norms > threshold
    note(report, "clipped", torch.nonzero(over[:, 0]))
    scale = torch.where(over, threshold / norms, torch.ones_like(norms))
    return updates * scale


def preaggregate(updates: torch.Tensor, *, f: int = 0, generator: torch.Generator | None = None,
                 c: float = 2.0, report: dict | None = None, **params) -> torch.Tensor:
    """Return ``updates`` (n x d) with every row clipped to L2 norm at most ``c`` (finite and > 0;
    ByzFL's default is 2); the rows scaled down go to ``report["clipped"]``. Deterministic:
    ``generator`` is not used, and ``f`` is checked but not used."""
    updates, _ = check_preaggregation(updates, f, params)
    c = check_real("c", c, positive=True)
    return clip_rows(updates, c, report)
