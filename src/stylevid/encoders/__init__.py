"""Frozen feature encoders: ``load_encoder(name)`` → ``encoder(x, layers) -> {name: features}``."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from .. import weights as W
from ..config import ENCODERS
from ..errors import BadInput, WeightsError
from .base import Encoder, LayerInfo
from .lite0 import Lite0, fold


def load_encoder(name: str = "lite0", weights: str | None = None, offline: bool = False,
                 device: torch.device | str = "cpu", folded: bool = True) -> Encoder:
    """Build the named encoder with its real weights, frozen, on ``device``.

    ``folded`` folds lite0's batch norms into its convolutions (same outputs, faster).
    Never falls back to random weights.
    """
    return _cached(name, weights, offline, folded).to(device)


@lru_cache(maxsize=4)
def _cached(name: str, weights: str | None, offline: bool, folded: bool) -> Encoder:
    if name == "lite0":
        path = Path(weights) if weights else W.lite0_file()
        if not path.is_file():
            raise WeightsError(f"{path}: lite0 weights not found")
        W.verify(path, None if weights else W.LITE0_SHA256)
        model = Lite0()
        _strict(model, W.load_state_dict(path), path)
        if folded:
            fold(model)
    elif name in ("vgg16", "vgg19"):
        from .vgg import VGG, WEIGHTS

        meta = WEIGHTS[name]
        filename = Path(meta.url).name
        path = W.resolve(filename, meta.url, weights, offline, f"{name} weights")
        W.verify(path)
        model = VGG(name)
        try:
            model.load_features(W.load_state_dict(path))
        except RuntimeError as e:
            raise WeightsError(f"{path}: not {name} weights ({str(e).splitlines()[0][:120]})") from None
    else:
        raise BadInput(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    return model.freeze()


def _strict(model: torch.nn.Module, state: dict, path: Path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path}: does not match the encoder ({str(e).splitlines()[0][:120]})") from None


def layer_table(name: str) -> list[LayerInfo]:
    """Layer names, channels and strides, without loading weights."""
    if name == "lite0":
        return list(Lite0().taps.values())
    if name in ("vgg16", "vgg19"):
        from .vgg import VGG

        return list(VGG(name).taps.values())
    raise BadInput(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")


__all__ = ["Encoder", "LayerInfo", "load_encoder", "layer_table"]
