"""A small LSTM next-word model, the kind FedScale's Reddit and StackOverflow benchmarks and the
federated next-word-prediction literature train (e.g. Reddi et al., "Adaptive Federated
Optimization", ICLR 2021: embedding, LSTM, projection, tied softmax): a token embedding, a
two-layer LSTM (Hochreiter & Schmidhuber, 1997), and an output layer over the vocabulary. With
``tied`` the output layer reuses the embedding matrix (Press & Wolf, EACL 2017; Inan et al., ICLR
2017) after a linear projection from the LSTM's width to the embedding's.

Ours: the sizes (embedding 128, hidden 256), no dropout (it would draw from the process's global
generator and make a client's update depend on its executor's schedule).

Input: int64 token ids of shape (B, T). Output: next-token logits of shape (B, T, V), V the
vocabulary, which the clients' training loop (``fedscale.cloud.execution.torch_client``) scores
against the (B, T) next tokens of the text data sets, pads left out.
"""
from __future__ import annotations

from torch import Tensor, nn

EMBEDDING_SIZE = 128
HIDDEN_SIZE = 256
NUM_LAYERS = 2


class LSTMLanguageModel(nn.Module):
    """Embedding, ``num_layers`` LSTM layers, and vocabulary logits, tied to the embedding or not."""

    def __init__(self, vocab_size: int, embedding_size: int = EMBEDDING_SIZE, hidden_size: int = HIDDEN_SIZE,
                 num_layers: int = NUM_LAYERS, tied: bool = True) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.lstm = nn.LSTM(embedding_size, hidden_size, num_layers, batch_first=True)
        self.projection = nn.Linear(hidden_size, embedding_size) if tied else None
        self.output = nn.Linear(embedding_size if tied else hidden_size, vocab_size)
        if tied:
            self.output.weight = self.embedding.weight

    def forward(self, tokens: Tensor) -> Tensor:
        hidden, _ = self.lstm(self.embedding(tokens))
        if self.projection is not None:
            hidden = self.projection(hidden)
        return self.output(hidden)


def lstm_lm(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The tied LSTM language model for sequences of ``input_shape`` = (T,) over a vocabulary of
    ``num_classes`` tokens."""
    if len(input_shape) != 1:
        raise ValueError(f"lstm is a language model over token ids: it needs sequences of shape (T,), "
                         f"got samples of shape {input_shape}")
    return LSTMLanguageModel(num_classes)
