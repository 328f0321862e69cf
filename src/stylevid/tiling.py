"""The style-transfer loss of a picture too big for one encoder pass, evaluated tile by tile (L1).

The style loss compares Gram matrices of the *whole* picture, so tiles cannot be optimized on
their own (each would match the style alone, and the statistics of the picture would drift).
One evaluation runs two passes over a grid of tiles, each tile a *core* plus a *halo* of context:

1. every tile through the encoder without gradients; the features a tile *owns* (those under its
   core) are summed into the picture's Grams  ``G = Σ F Fᵀ / N``;
2. every tile again with gradients, against the surrogate  ``⟨∂L/∂G, F Fᵀ / N⟩`` plus its part of
   the content loss. Its gradient is the gradient of the whole-picture loss with respect to the
   features the tile owns; the tiles' gradients are summed into one picture-sized gradient.

Core borders lie on multiples of ``ALIGN`` (the encoders' largest stride), so every feature of the
picture is owned by exactly one tile and the value is the whole-picture loss. Features near a core
border see the halo instead of the whole picture, so their values (and the gradient) are close to,
not exactly, the untiled ones. The grid moves between evaluations by a seeded random offset: the
small border errors never stay in one place and no grid shows in the result.

Memory: one tile's activations plus a few picture-sized buffers, whatever the picture's size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor

from .losses import StyleLoss, gram, weighted_gram
from .runtime import TRIM_ABOVE_MB, release_free_memory

ALIGN = 32          # lite0 and VGG taps have strides up to 32; core borders on its multiples

Encode = Callable[[Tensor, list[str]], Mapping[str, Tensor]]


@dataclass(frozen=True)
class Tile:
    y0: int     # core (owned pixels), full-picture coordinates
    y1: int
    x0: int
    x1: int
    cy0: int    # crop = core + halo, clipped to the picture
    cy1: int
    cx0: int
    cx1: int


def _cuts(n: int, core: int, offset: int) -> list[int]:
    return [0, *(b for b in range(offset % core, n, core) if b > 0), n]


def tile_grid(h: int, w: int, core: int, halo: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles covering an ``h×w`` picture: cores of ``core`` px (the first row/column shortened by
    ``offset``), crops ``halo`` px wider on every side. ``core``, ``halo`` and ``offset`` must be
    multiples of ``ALIGN``."""
    if core <= 0 or core % ALIGN or halo % ALIGN or offset[0] % ALIGN or offset[1] % ALIGN:
        raise ValueError(f"tile core {core}, halo {halo}, offset {offset}: must be multiples of {ALIGN}")
    ys, xs = _cuts(h, core, offset[0]), _cuts(w, core, offset[1])
    return [Tile(y0, y1, x0, x1, max(0, y0 - halo), min(h, y1 + halo), max(0, x0 - halo), min(w, x1 + halo))
            for y0, y1 in zip(ys, ys[1:]) for x0, x1 in zip(xs, xs[1:])]


def crop(x: Tensor, t: Tile) -> Tensor:
    return x[..., t.cy0:t.cy1, t.cx0:t.cx1]


def owned(feat: Tensor, t: Tile, stride: int, h: int, w: int) -> Tensor:
    """The part of a tile's feature map (computed on its crop) that lies under its core."""
    def span(a: int, b: int, c0: int, n: int) -> slice:
        end = math.ceil(n / stride) if b == n else b // stride       # the last core takes the remainder
        return slice(a // stride - c0 // stride, end - c0 // stride)
    return feat[..., span(t.y0, t.y1, t.cy0, h), span(t.x0, t.x1, t.cx0, w)]


def tiled_features(encode: Encode, x: Tensor, layers: list[str], strides: Mapping[str, int],
                   tiles: list[Tile]) -> dict[str, Tensor]:
    """Whole-picture feature maps assembled from the tiles' owned features (no gradients)."""
    h, w = x.shape[-2:]
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for t in tiles:
            feats = encode(crop(x, t), layers)
            for k in layers:
                s = strides[k]
                f = owned(feats[k], t, s, h, w)
                if k not in out:
                    out[k] = f.new_zeros(*f.shape[:2], math.ceil(h / s), math.ceil(w / s))
                out[k][..., t.y0 // s:t.y0 // s + f.shape[-2], t.x0 // s:t.x0 // s + f.shape[-1]] = f
    return out


def owned_map(m: Tensor, t: Tile, stride: int) -> Tensor:
    """The part of a whole-picture feature-grid map (weights, targets) under a tile's core."""
    y0, x0 = t.y0 // stride, t.x0 // stride
    y1 = math.ceil(t.y1 / stride) if t.y1 % stride else t.y1 // stride
    x1 = math.ceil(t.x1 / stride) if t.x1 % stride else t.x1 // stride
    return m[..., y0:y1, x0:x1]


def _gram(f: Tensor, weight: Tensor | None) -> Tensor:
    """``Σ_p w_p f_p f_pᵀ`` over the positions of ``f`` (B×C×h×w); unweighted without ``weight``."""
    if weight is None:
        return gram(f) * (f.shape[-2] * f.shape[-1])     # losses.gram: its one-product backward
    return weighted_gram(f, weight)


def tiled_grams(encode: Encode, x: Tensor, layers: list[str], strides: Mapping[str, int],
                tiles: list[Tile], weights: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Gram matrices of the whole picture, summed tile by tile: ``losses.gram``'s (divided by the
    positions), or with ``weights`` (whole-grid maps ``B×1×h×w`` per layer) ``Σ_p w_p f_p f_pᵀ``."""
    h, w = x.shape[-2:]
    sums: dict[str, Tensor] = {}
    count = dict.fromkeys(layers, 0)
    with torch.no_grad():
        for t in tiles:
            feats = encode(crop(x, t), layers)
            for k in layers:
                f = owned(feats[k], t, strides[k], h, w)
                wt = owned_map(weights[k], t, strides[k]) if weights else None
                g = _gram(f, wt)
                sums[k] = sums[k] + g if k in sums else g
                count[k] += f.shape[-2] * f.shape[-1]
    return {k: sums[k] if weights else sums[k] / count[k] for k in layers}


class TiledLoss:
    """Style (whole-picture Grams) and content loss of a picture, with its gradient, tile by tile.

    ``value, grad = loss(x)``; ``style`` holds the target Grams and layer weights, ``content`` the
    whole-picture content features (from :func:`tiled_features`) or None. Each call draws a new grid
    offset from ``gen``.

    By default positions count equally (the flat losses of ``losses``). The 360 views weight them
    by solid angle: ``gram_weights`` / ``content_weights`` are whole-grid maps per layer (summing to
    1 over a view, or over all views), and ``content_msq`` the content targets' weighted mean squares.
    """

    def __init__(self, encode: Encode, strides: Mapping[str, int], style: StyleLoss | None, style_weight: float,
                 content: Mapping[str, Tensor] | None, content_weight: float, core: int, halo: int,
                 gen: torch.Generator | None = None, gram_weights: Mapping[str, Tensor] | None = None,
                 content_weights: Mapping[str, Tensor] | None = None,
                 content_msq: Mapping[str, Tensor] | None = None):
        self.encode, self.strides = encode, dict(strides)
        self.style, self.style_weight = style, style_weight
        self.content, self.content_weight = content, content_weight
        self.core, self.halo, self.gen = core, halo, gen
        self.gram_weights, self.content_weights = gram_weights, content_weights
        self.style_layers = list(style.weights) if style is not None else []
        self.content_layers = list(content) if content is not None else []
        self.layers = list(dict.fromkeys([*self.style_layers, *self.content_layers]))
        self.msq = content_msq or {k: t.pow(2).mean().clamp_min(1e-8) for k, t in (content or {}).items()}

    def grid(self, h: int, w: int) -> list[Tile]:
        steps = self.core // ALIGN
        if self.gen is None:
            off = (0, 0)
        else:
            oy, ox = torch.randint(0, steps, (2,), generator=self.gen).tolist()
            off = (oy * ALIGN, ox * ALIGN)
        return tile_grid(h, w, self.core, self.halo, off)

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, w = x.shape[-2:]
        tiles = self.grid(h, w)
        value = x.new_zeros(())
        dgram: dict[str, Tensor] = {}
        if self.style_layers:
            grams = tiled_grams(self.encode, x, self.style_layers, self.strides, tiles, self.gram_weights)
            for k, lw in self.style.weights.items():
                t = self.style.grams[k]
                norm = t.pow(2).sum().clamp_min(1e-8)
                value = value + self.style_weight * lw * (grams[k] - t).pow(2).sum() / norm
                dgram[k] = self.style_weight * lw * 2 * (grams[k] - t) / norm     # ∂L/∂G
                if not self.gram_weights:                                         # G = Σ f fᵀ / N
                    dgram[k] = dgram[k] / (math.ceil(h / self.strides[k]) * math.ceil(w / self.strides[k]))
        grad = torch.zeros_like(x)
        for tile in tiles:
            if x.device.type == "cpu":            # or fragments of the last tile stay resident (measured)
                release_free_memory(TRIM_ABOVE_MB)
            with torch.enable_grad():
                xt = crop(x, tile).detach().requires_grad_(True)
                feats = self.encode(xt, self.layers)
                surrogate = xt.new_zeros(())
                for k in self.style_layers:
                    f = owned(feats[k], tile, self.strides[k], h, w)
                    wt = owned_map(self.gram_weights[k], tile, self.strides[k]) if self.gram_weights else None
                    surrogate = surrogate + (dgram[k] * _gram(f, wt)).sum()
                part = xt.new_zeros(())
                for k, target in (self.content or {}).items():
                    s = self.strides[k]
                    f = owned(feats[k], tile, s, h, w)
                    sq = (f - owned_map(target, tile, s)).pow(2)
                    if self.content_weights:
                        sq = (owned_map(self.content_weights[k], tile, s) * sq.mean(1, keepdim=True)).sum()
                    else:
                        sq = sq.sum() / target.numel()
                    part = part + sq / self.msq[k]
                if self.content_layers:
                    part = part * self.content_weight / len(self.content_layers)
                total = surrogate + part
                if total.requires_grad:
                    (g,) = torch.autograd.grad(total, xt)
                    grad[..., tile.cy0:tile.cy1, tile.cx0:tile.cx1] += g
            value = value + part.detach()
        return value, grad
