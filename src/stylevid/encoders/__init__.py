"""Frozen feature encoders: ``load_encoder(name)`` → ``encoder(x, layers) -> {name: features}``."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from .. import weights as W
from ..config import ENCODERS, PRECISIONS
from ..errors import BadInput, WeightsError
from .base import Autocast, Encoder, LayerInfo
from .lite0 import Lite0, fold


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def load_encoder(name: str = "lite0", weights: str | None = None, offline: bool = False,
                 device: torch.device | str = "cpu", folded: bool = True, precision: str = "fp32") -> Encoder:
    """Build the named encoder with its real weights, frozen, on ``device``.

    ``folded`` folds lite0's batch norms into its convolutions (same outputs, faster).
    ``precision`` bf16 or fp16 runs it under autocast (:class:`Autocast`; fp16 on CUDA only).
    Never falls back to random weights.
    """
    if precision not in PRECISIONS:
        raise BadInput(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise BadInput(f"--precision fp16 needs a CUDA device (this run is on {torch.device(device).type}); "
                       "use bf16 or fp32")
    path, expected = _locate(name, weights, offline)
    st = path.stat()
    # The cache is keyed by the file actually resolved (and its size and mtime), so a changed
    # $STYLEVID_WEIGHTS, $TORCH_HOME or a replaced file is looked at again; and by the device, so
    # an encoder handed out for one device is never moved under its holder to another.
    model = _cached(name, str(path), expected, st.st_size, st.st_mtime_ns, folded, str(torch.device(device)))
    return Autocast(model, DTYPES[precision]) if precision in DTYPES else model


def _locate(name: str, weights: str | None, offline: bool) -> tuple[Path, str | None]:
    """The weights file of ``name`` and the sha256 (or prefix) it must have, if known here."""
    if name == "lite0":
        path = Path(weights).expanduser() if weights else W.lite0_file()
        if not path.is_file():
            raise WeightsError(f"{path}: lite0 weights not found")
        return path, None if weights else W.LITE0_SHA256
    if name in ("vgg16", "vgg19"):
        from .vgg import WEIGHTS

        meta = WEIGHTS[name]
        return W.resolve(Path(meta.url).name, meta.url, weights, offline, f"{name} weights"), None
    raise BadInput(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")


@lru_cache(maxsize=4)
def _cached(name: str, path_str: str, expected: str | None, size: int, mtime_ns: int, folded: bool,
            device: str) -> Encoder:
    path = Path(path_str)
    W.verify(path, expected)  # expected None: the hash prefix in the file name, if any
    if name == "lite0":
        model = Lite0()
        _strict(model, W.load_state_dict(path, expected or W.LITE0_SHA256), path)
        if folded:
            fold(model)
    else:
        from .vgg import VGG

        model = VGG(name)
        try:
            model.load_features(W.load_state_dict(path))
        except RuntimeError as e:
            raise WeightsError(f"{path}: not {name} weights ({str(e).splitlines()[0][:120]})") from None
    return model.freeze().to(device)


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


__all__ = ["Autocast", "Encoder", "LayerInfo", "load_encoder", "layer_table"]
