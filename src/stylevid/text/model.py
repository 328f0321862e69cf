"""The LSTM language model: embedding, n LSTM layers, dropout, a (possibly tied) output layer."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import BadInput


@dataclass(frozen=True)
class ModelShape:
    vocab: int
    embedding: int = 128
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.2
    tie: bool = True

    def check(self) -> "ModelShape":
        for name in ("vocab", "embedding", "hidden", "layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise BadInput(f"--{name} {v}: must be a positive integer")
        if not 0.0 <= self.dropout < 1.0:
            raise BadInput(f"--dropout {self.dropout}: must be in [0, 1)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelShape":
        return cls(**{k: d[k] for k in ("vocab", "embedding", "hidden", "layers", "dropout", "tie")}).check()


class LSTMLM(nn.Module):
    """Token ids (batch, time) -> logits (batch, time, vocab), carrying the LSTM state.

    With ``tie`` the output layer shares the embedding matrix (Press & Wolf); when ``hidden``
    differs from ``embedding`` a linear projection maps the LSTM output to the embedding size.
    """

    def __init__(self, shape: ModelShape):
        super().__init__()
        shape.check()
        self.shape = shape
        self.embed = nn.Embedding(shape.vocab, shape.embedding)
        self.drop = nn.Dropout(shape.dropout)
        self.lstm = nn.LSTM(shape.embedding, shape.hidden, shape.layers, batch_first=True,
                            dropout=shape.dropout if shape.layers > 1 else 0.0)
        out_in = shape.hidden
        self.project = None
        if shape.tie and shape.hidden != shape.embedding:
            self.project = nn.Linear(shape.hidden, shape.embedding)
            out_in = shape.embedding
        self.decoder = nn.Linear(out_in, shape.vocab)
        if shape.tie:
            self.decoder.weight = self.embed.weight
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, ids: torch.Tensor, state=None):
        x = self.drop(self.embed(ids))
        y, state = self.lstm(x, state)
        y = self.drop(y)
        if self.project is not None:
            y = self.project(y)
        return self.decoder(y), state


def build(shape: ModelShape) -> LSTMLM:
    return LSTMLM(shape)
