"""The encoder interface: one pass returns a dict of named layers.

``encoder(x, layers)`` takes ``B×3×H×W`` RGB in [0,1] (preprocessing is the encoder's own, it
travels with the weights) and returns ``{name: features}`` for the requested taps, stopping after
the deepest one. Encoders are frozen: eval mode, no parameter gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class LayerInfo:
    name: str
    channels: int
    stride: int
    group: str          # stage or block group, for `stylevid layers`


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; the encoder's preprocessing."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Encoder(nn.Module):
    """Subclasses fill ``self.taps`` (ordered LayerInfo) and implement ``_run(x, wanted)``."""

    name: str = "encoder"
    taps: dict[str, LayerInfo]
    # The layout the encoder's convolutions run fastest in; inputs and weights are put in it,
    # features come out in it (``losses.positions`` reads them without a copy).
    memory_format: torch.memory_format = torch.contiguous_format

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        layers = list(dict.fromkeys(layers))
        bad = [l for l in layers if l not in self.taps]
        if bad:
            from ..errors import BadInput

            raise BadInput(f"unknown layer(s) {', '.join(bad)} for encoder {self.name}; "
                           f"see `stylevid layers --encoder {self.name}`")
        return layers

    def forward(self, x: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        wanted = set(self.check_layers(layers))
        return self._run(x.contiguous(memory_format=self.memory_format), wanted)

    def _run(self, x: Tensor, wanted: set[str]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def freeze(self) -> "Encoder":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self.to(memory_format=self.memory_format)

    def train(self, mode: bool = True):  # frozen: batch norm statistics never change
        return super().train(False)


class Autocast(nn.Module):
    """An encoder run under autocast in ``dtype`` (mixed precision). Its features come back in
    float32, so Grams and losses are summed in full precision; the gradient flows back through
    the same low-precision convolutions."""

    def __init__(self, encoder: Encoder, dtype: torch.dtype):
        super().__init__()
        self.inner, self.dtype = encoder, dtype
        self.name, self.taps, self.memory_format = encoder.name, encoder.taps, encoder.memory_format

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        return self.inner.check_layers(layers)

    def forward(self, x: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        with torch.autocast(x.device.type, dtype=self.dtype):
            feats = self.inner(x, layers)
        return {k: f.float() for k, f in feats.items()}
