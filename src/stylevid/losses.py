"""Loss math (L1: torch only). Functions do the math; the ``*Loss`` modules hold targets.

Normalization makes the weights mean something across layers and image sizes:
- content: feature MSE divided by the target's mean square;
- style: squared Gram difference divided by the target Gram's squared norm, per layer, then a
  weighted mean over layers;
- tv: mean absolute difference of neighbours (circular in x with ``wrap_x``, for 360 images);
- temporal: mean squared difference to a warped earlier output under a per-pixel weight.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def positions(features: Tensor) -> Tensor:
    """``B×C×H×W`` features as ``B×C×(H·W)``, a view in either memory layout: reshaping
    channels-last features (lite0's) the plain way would copy them, forward and backward."""
    b, c, h, w = features.shape
    if features.is_contiguous() or not features.is_contiguous(memory_format=torch.channels_last):
        return features.reshape(b, c, h * w)
    return features.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)


class _Gram(torch.autograd.Function):
    """``F Fᵀ / N`` of ``B×C×N`` positions; the backward is one product, ``(G' + G'ᵀ) F / N``,
    made in F's own layout (autograd's would be two products, a sum and a layout copy)."""

    @staticmethod
    def forward(ctx, f: Tensor) -> Tensor:
        ctx.save_for_backward(f)
        return f @ f.transpose(1, 2) / f.shape[-1]

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        (f,) = ctx.saved_tensors
        s = (g + g.transpose(1, 2)) / f.shape[-1]
        if f.stride(-1) == 1:
            return s @ f
        return (f.transpose(1, 2) @ s).transpose(1, 2)   # channels-last: positions-major, like f


def gram(features: Tensor) -> Tensor:
    """Gram matrix ``B×C×C`` of ``B×C×H×W`` features, divided by H·W (independent of image size)."""
    return _Gram.apply(positions(features))


class _WeightedGram(torch.autograd.Function):
    """``F diag(w) Fᵀ`` of ``B×C×N`` positions with fixed weights ``B×1×N``; the backward is one
    product, ``(G' + G'ᵀ)(F·w)``, with ``F·w`` kept from the forward."""

    @staticmethod
    def forward(ctx, f: Tensor, w: Tensor) -> Tensor:
        fw = f * w
        ctx.save_for_backward(fw)
        return fw @ f.transpose(1, 2)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None]:
        (fw,) = ctx.saved_tensors
        s = g + g.transpose(1, 2)
        if fw.stride(-1) == 1:
            return s @ fw, None
        return (fw.transpose(1, 2) @ s).transpose(1, 2), None


def weighted_gram(features: Tensor, weight: Tensor) -> Tensor:
    """``Σ_p w_p f_p f_pᵀ`` (``B×C×C``) over the positions of ``B×C×H×W`` features, with fixed
    (not differentiated) weights ``B×1×H×W``: a 360 view's solid angles, a tile's share."""
    h, w = features.shape[-2:]
    return _WeightedGram.apply(positions(features), weight.detach().reshape(weight.shape[0], 1, h * w))


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(features, target) / target.pow(2).mean().clamp_min(1e-8)


def style_loss(g: Tensor, target: Tensor) -> Tensor:
    """Squared Frobenius distance of Grams relative to the target's squared norm."""
    return (g - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-8)


def total_variation(x: Tensor, wrap_x: bool = False) -> Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV)."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    if wrap_x:
        dx = (x - x.roll(1, dims=-1)).abs().mean()
    else:
        dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dx + dy


def temporal_loss(x: Tensor, warped: Tensor, weight: Tensor) -> Tensor:
    """Ruder et al.: mean of ``weight · (x − warped)²`` over pixels and channels."""
    return (weight * (x - warped).pow(2)).mean()


class ContentLoss(nn.Module):
    def __init__(self, targets: Mapping[str, Tensor]):
        super().__init__()
        self.targets = {k: v.detach() for k, v in targets.items()}

    def forward(self, feats: Mapping[str, Tensor]) -> Tensor:
        losses = [content_loss(feats[k], t) for k, t in self.targets.items()]
        return torch.stack(losses).mean()


class StyleLoss(nn.Module):
    """Holds the target Grams (already blended over several styles) and the layer weights."""

    def __init__(self, grams: Mapping[str, Tensor], layer_weights: Mapping[str, float] | None = None):
        super().__init__()
        self.grams = {k: v.detach() for k, v in grams.items()}
        lw = layer_weights or {}
        total = sum(lw.get(k, 1.0) for k in self.grams)
        self.weights = {k: lw.get(k, 1.0) / total for k in self.grams}

    @staticmethod
    def target_grams(feature_sets: list[Mapping[str, Tensor]], blend: list[float], layers) -> dict[str, Tensor]:
        """Weighted mean of several styles' Grams (``--style-blend``)."""
        return StyleLoss.blend_grams([{k: gram(f[k]) for k in layers} for f in feature_sets], blend, layers)

    @staticmethod
    def blend_grams(gram_sets: list[Mapping[str, Tensor]], blend: list[float], layers) -> dict[str, Tensor]:
        """Weighted mean of several styles' Grams, given as Grams (from tiles, for huge styles)."""
        s = sum(blend)
        return {k: sum(w / s * g[k] for w, g in zip(blend, gram_sets)) for k in layers}

    def forward(self, feats: Mapping[str, Tensor]) -> Tensor:
        return sum(w * style_loss(gram(feats[k]), self.grams[k]) for k, w in self.weights.items())


class TotalVariation(nn.Module):
    def __init__(self, wrap_x: bool = False):
        super().__init__()
        self.wrap_x = wrap_x

    def forward(self, x: Tensor) -> Tensor:
        return total_variation(x, self.wrap_x)
