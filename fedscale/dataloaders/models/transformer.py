"""An ALBERT-style transformer with its masked-language-model head (Lan et al., "ALBERT: A Lite
BERT for Self-supervised Learning of Language Representations", ICLR 2020), built from an
``EncoderConfig`` and run as a causal next-word model. ALBERT's two parameter reductions are
kept: factorised embeddings (tokens are embedded in E dimensions, then projected to the hidden
size H) and one encoder layer shared by all L layers. The layer is BERT's post-norm block
(multi-head self-attention, then a GELU feed-forward network, each with a residual sum and
LayerNorm); the head maps H back to E (dense, GELU, LayerNorm) and scores every token of the
vocabulary against the word embeddings (tied output, plus a bias per token).

``albert-base-v2`` has the base model's sizes (E 128, H 768, 12 layers, 12 heads, feed-forward
3072, 512 positions; FedScale's NLP example names it) and, with a vocabulary of 30,000, the
architecture of Hugging Face's ``AlbertForMaskedLM``: 11,221,680 parameters, its encoder being the
published ``AlbertModel`` (11,683,584, the paper's "12M") without the sentence pooler, which
masked-token training does not use. ``transformer-small`` is ours: the same design at E 64, H 256,
4 layers, 4 heads, feed-forward 1024, for quick simulations.

Ours besides: causal self-attention (each position attends to itself and those before it), so the
logits at position t predict token t + 1 from tokens up to t, as the clients' next-word training
scores them (FedScale trains ALBERT by masking tokens instead; the pads at a sequence's end then
never reach a scored position, hence no padding mask); no dropout (ALBERT v2 uses none either),
the tanh approximation of GELU as in ALBERT's ``gelu_new``, and every sequence in segment 0 (the
two segment embeddings are kept, so the parameter count is ALBERT's). Weights are randomly
initialised (normal, std 0.02, as ALBERT), never downloaded. Input: int64 token ids (B, T), T at
most ``max_positions``. Output: logits (B, T, V).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_SEGMENTS = 2
_LAYER_NORM_EPS = 1e-12
_INIT_STD = 0.02
# A function, not nn.GELU: torch's fused inference path for an encoder layer with nn.GELU computes
# the exact GELU, so evaluation would differ from training.
_gelu_tanh = partial(F.gelu, approximate="tanh")


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder's sizes; the defaults are ``transformer-small``. ``EncoderConfig(**mapping)``
    builds one from a config dict."""

    embedding_size: int = 64
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    max_positions: int = 512


CONFIGS: dict[str, EncoderConfig] = {
    "albert-base-v2": EncoderConfig(embedding_size=128, hidden_size=768, num_layers=12, num_heads=12,
                                    intermediate_size=3072, max_positions=512),
    "transformer-small": EncoderConfig(),
}


class AlbertLM(nn.Module):
    """Factorised embeddings, one causal encoder layer applied ``num_layers`` times, and the tied
    masked-language-model head."""

    def __init__(self, vocab_size: int, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        embedding, hidden = config.embedding_size, config.hidden_size
        self.num_layers = config.num_layers
        self.word = nn.Embedding(vocab_size, embedding)
        self.position = nn.Embedding(config.max_positions, embedding)
        self.segment = nn.Embedding(_SEGMENTS, embedding)
        self.embedding_norm = nn.LayerNorm(embedding, eps=_LAYER_NORM_EPS)
        self.embedding_projection = nn.Linear(embedding, hidden)
        self.layer = nn.TransformerEncoderLayer(hidden, config.num_heads, config.intermediate_size, dropout=0.0,
                                                activation=_gelu_tanh,
                                                layer_norm_eps=_LAYER_NORM_EPS, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, embedding), nn.GELU(approximate="tanh"),
                                  nn.LayerNorm(embedding, eps=_LAYER_NORM_EPS))
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        for name, parameter in self.named_parameters():
            if parameter.dim() > 1:
                nn.init.normal_(parameter, std=_INIT_STD)
            elif name.endswith("bias"):
                nn.init.zeros_(parameter)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.word(tokens) + self.position.weight[:tokens.shape[1]] + self.segment.weight[0]
        x = self.embedding_projection(self.embedding_norm(x))
        causal = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1], device=tokens.device)
        for _ in range(self.num_layers):
            x = self.layer(x, src_mask=causal, is_causal=True)
        return F.linear(self.head(x), self.word.weight, self.output_bias)


def albert(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The encoder of CONFIGS[``name``] for sequences of ``input_shape`` = (T,) over a vocabulary
    of ``num_classes`` tokens."""
    config = CONFIGS[name]
    if len(input_shape) != 1 or not 1 <= input_shape[0] <= config.max_positions:
        raise ValueError(f"{name} is a language model over token ids: it needs sequences of shape (T,) with "
                         f"T at most {config.max_positions}, got samples of shape {input_shape}")
    return AlbertLM(num_classes, config)
