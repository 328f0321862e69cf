"""Optical flow between uint8 frames, a flow cache and a background prefetcher (L2).

Convention (same as :mod:`stylevid.warp`): ``estimate_flow(a, b)`` returns an ``H×W×2`` float32
array on the pixels of ``a`` (``[..., 0]`` = dx, ``[..., 1]`` = dy) pointing to where that pixel is
in ``b``: ``a[p] ≈ b[p + flow(p)]``, so ``warp(b, flow) ≈ a``.

``flow_pair(prev, cur)`` returns ``(forward, backward)``: forward = prev → cur (on prev's pixels),
backward = cur → prev (on cur's pixels). The pipeline warps the previous stylized frame with
``warp(s_prev, backward)`` and weights it with ``reliability(forward, backward)``.

Methods: ``"dis"`` (OpenCV DIS, MEDIUM preset, default), ``"farneback"`` (OpenCV), ``"raft"``
(torchvision RAFT, weights only from an explicit local file; never downloaded, never random).
"""
from __future__ import annotations

import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from .errors import BadInput, WeightsError
from .files import atomic_path

METHODS = ("dis", "farneback", "raft")

_local = threading.local()           # DIS objects are not thread-safe: one per thread


def _dis(shape: tuple[int, int]) -> "cv2.DISOpticalFlow":
    """This thread's DIS object for frames of ``shape``.

    Trap: a DIS object keeps state from the sizes it has seen. Used on 33 px wide frames, then on
    48 px wide ones, it gave flows up to 2.2 px off those of a fresh object (OpenCV 4.x): a flow
    then depended on what the thread had computed before (a resumed video differed from an
    uninterrupted one). One object per frame size: each sees one size only."""
    objects = getattr(_local, "dis", None)
    if objects is None:
        objects = _local.dis = {}
    d = objects.get(shape)
    if d is None:
        if len(objects) >= 8:            # a few sizes per job; forget the oldest
            objects.pop(next(iter(objects)))
        d = objects[shape] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return d


def _gray(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)


def _check(a: np.ndarray, b: np.ndarray) -> None:
    for x in (a, b):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim not in (2, 3):
            raise BadInput("estimate_flow: frames must be uint8 H×W×3 RGB arrays")
    if a.shape != b.shape:
        raise BadInput(f"estimate_flow: frame sizes differ ({a.shape} vs {b.shape})")


# ---------------------------------------------------------------- RAFT (weights from a file only)

_raft_models: dict[tuple[str, str], torch.nn.Module] = {}
_raft_lock = threading.Lock()


def _load_raft(weights_path: str | Path | None, device: torch.device) -> torch.nn.Module:
    if weights_path is None:
        raise WeightsError("flow 'raft' needs a weights file (torchvision raft_large or raft_small "
                           "state dict); pass weights_path, or use --flow dis")
    p = Path(weights_path)
    if not p.is_file():
        raise WeightsError(f"{p}: RAFT weights file not found")
    key = (str(p.resolve()), str(device))
    with _raft_lock:
        if key in _raft_models:
            return _raft_models[key]
        from torchvision.models.optical_flow import raft_large, raft_small

        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 — any unreadable file is a weights problem
            raise WeightsError(f"{p}: cannot read RAFT weights ({type(e).__name__}: {str(e)[:120]})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise WeightsError(f"{p}: not a state dict")
        model = None
        for build in (raft_large, raft_small):      # weights=None: architecture only, filled below
            m = build(weights=None, progress=False)
            try:
                m.load_state_dict(state, strict=True)
            except RuntimeError:
                continue
            model = m
            break
        if model is None:
            raise WeightsError(f"{p}: not a torchvision raft_large or raft_small state dict")
        model = model.eval().to(device)
        _raft_models[key] = model
        return model


def _raft_flow(a: np.ndarray, b: np.ndarray, weights_path, device, iters: int) -> np.ndarray:
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = _load_raft(weights_path, dev)
    h, w = a.shape[:2]
    # RAFT needs sides divisible by 8 and at least 128 px (its correlation pyramid); pad by replication.
    ph, pw = max(128, h + (-h) % 8) - h, max(128, w + (-w) % 8) - w

    def prep(x: np.ndarray) -> torch.Tensor:
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(x)).to(dev).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        return torch.nn.functional.pad(t, (0, pw, 0, ph), mode="replicate")

    with torch.inference_mode():
        flows = model(prep(a), prep(b), num_flow_updates=iters)
    return flows[-1][0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()


# ---------------------------------------------------------------- estimation


def _estimate(a: np.ndarray, b: np.ndarray, method: str, weights_path, device, raft_iters: int) -> np.ndarray:
    if method == "dis":
        return _dis(a.shape[:2]).calc(_gray(a), _gray(b), None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(_gray(a), _gray(b), None, pyr_scale=0.5, levels=5, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    if method == "raft":
        return _raft_flow(a, b, weights_path, device, raft_iters)
    raise BadInput(f"flow method {method!r}: expected one of {', '.join(METHODS)}")


def seam_margin(width: int) -> int:
    """Circular padding used for 360° flow: 1/8 of the width, at least 8 px, at most the width."""
    return min(width, max(8, width // 8))


def estimate_flow(a: np.ndarray, b: np.ndarray, method: str = "dis", wrap_x: bool = False, *,
                  weights_path: str | Path | None = None, device=None, raft_iters: int = 12) -> np.ndarray:
    """Flow ``H×W×2`` float32 from uint8 RGB frame ``a`` to ``b`` (``warp(b, flow) ≈ a``).

    With ``wrap_x`` (360° equirectangular) both frames are padded circularly in x by
    :func:`seam_margin`, the flow is estimated and cropped back, so motion across the seam is found;
    the x component may then point past the edges, which ``warp(..., wrap_x=True)`` wraps around.
    ``weights_path``/``device``/``raft_iters`` are used by ``"raft"`` only.
    """
    _check(a, b)
    if not wrap_x:
        flow = _estimate(a, b, method, weights_path, device, raft_iters)
    else:
        w = a.shape[1]
        m = seam_margin(w)

        def pad(x: np.ndarray) -> np.ndarray:
            return np.concatenate([x[:, w - m:], x, x[:, :m]], axis=1)

        flow = _estimate(pad(a), pad(b), method, weights_path, device, raft_iters)[:, m:m + w]
    return np.ascontiguousarray(flow, dtype=np.float32)


def to_tensor(flow: np.ndarray, device=None) -> torch.Tensor:
    """``H×W×2`` numpy flow → ``1×2×H×W`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


def to_numpy(flow: torch.Tensor) -> np.ndarray:
    """``1×2×H×W`` (or ``2×H×W``) tensor → ``H×W×2`` float32 numpy."""
    if flow.dim() == 4:
        flow = flow[0]
    return flow.detach().permute(1, 2, 0).float().cpu().numpy()


def flow_pair_np(prev: np.ndarray, cur: np.ndarray, method: str = "dis", wrap_x: bool = False,
                 **kw) -> tuple[np.ndarray, np.ndarray]:
    """``(forward prev→cur, backward cur→prev)`` as ``H×W×2`` float32 arrays."""
    return (estimate_flow(prev, cur, method, wrap_x, **kw), estimate_flow(cur, prev, method, wrap_x, **kw))


def flow_pair(prev: np.ndarray, cur: np.ndarray, method: str = "dis", wrap_x: bool = False,
              device=None, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """``(forward, backward)`` as ``1×2×H×W`` tensors: forward = prev → cur (on prev's pixels),
    backward = cur → prev (on cur's pixels). ``warp(s_prev, backward)`` lands on cur's grid and
    ``reliability(forward, backward)`` is its mask."""
    kw.setdefault("device", device)
    f, b = flow_pair_np(prev, cur, method, wrap_x, **kw)
    return to_tensor(f, device), to_tensor(b, device)


# ---------------------------------------------------------------- cache


class FlowCache:
    """Flow pairs on disk, one compressed ``.npz`` (float16) per frame index, written atomically.

    Entry ``t`` holds the pair between frames t-1 and t (``forward`` t-1 → t, ``backward`` t → t-1)
    plus the method, wrap_x and size it was made with; an entry made differently, or unreadable,
    counts as missing, so a resumed run reuses exactly what still applies.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, t: int) -> Path:
        return self.folder / f"flow_{int(t):06d}.npz"

    def get(self, t: int, method: str, wrap_x: bool, shape: tuple[int, int] | None = None
            ) -> tuple[np.ndarray, np.ndarray] | None:
        p = self.path(t)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                if str(z["method"]) != method or bool(z["wrap_x"]) != bool(wrap_x):
                    return None
                f, b = z["forward"].astype(np.float32), z["backward"].astype(np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
            return None
        if f.shape != b.shape or f.ndim != 3 or f.shape[2] != 2:
            return None
        if shape is not None and f.shape[:2] != tuple(shape):
            return None
        return f, b

    def put(self, t: int, forward: np.ndarray, backward: np.ndarray, method: str, wrap_x: bool) -> None:
        with atomic_path(self.path(t)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, forward=np.asarray(forward, np.float16),
                                    backward=np.asarray(backward, np.float16),
                                    method=np.array(method), wrap_x=np.array(bool(wrap_x)))

    def discard(self, through: int) -> None:
        """Remove the entries up to frame ``through``: once a frame is painted its flows are never
        read again, and kept they were most of a work folder (1.7 MB a frame at 640×360 against
        0.25 MB for the painted frame; tens of GB for a long 1080p video)."""
        for p in self.folder.glob("flow_*.npz"):
            try:
                if int(p.stem[5:]) <= through:
                    p.unlink(missing_ok=True)
            except ValueError:
                continue

    def get_or_compute(self, t: int, prev: np.ndarray, cur: np.ndarray, method: str = "dis",
                       wrap_x: bool = False, **kw) -> tuple[np.ndarray, np.ndarray]:
        hit = self.get(t, method, wrap_x, cur.shape[:2])
        if hit is not None:
            return hit
        f, b = flow_pair_np(prev, cur, method, wrap_x, **kw)
        self.put(t, f, b, method, wrap_x)
        # Return what a resumed run would read back, so a run is the same whether or not it resumed.
        return f.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32)


# ---------------------------------------------------------------- prefetcher


class FlowPrefetcher:
    """Computes flow pairs on one background thread (OpenCV releases the GIL) while a frame optimizes.

    ``submit(t, prev, cur)`` schedules the pair for frame t; ``get(t, prev, cur)`` returns
    ``(forward, backward)`` as numpy arrays — the scheduled result if any, otherwise computed
    now. With a ``cache`` the pair is read from / written to it. Use as a context manager or
    call ``close()``.
    """

    def __init__(self, method: str = "dis", wrap_x: bool = False, cache: FlowCache | None = None, **kw):
        if method not in METHODS:
            raise BadInput(f"flow method {method!r}: expected one of {', '.join(METHODS)}")
        self.method, self.wrap_x, self.cache, self.kw = method, wrap_x, cache, kw
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stylevid-flow")
        self._pending: dict[int, Future] = {}

    def _compute(self, t: int, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is not None:
            return self.cache.get_or_compute(t, prev, cur, self.method, self.wrap_x, **self.kw)
        return flow_pair_np(prev, cur, self.method, self.wrap_x, **self.kw)

    def submit(self, t: int, prev: np.ndarray, cur: np.ndarray) -> None:
        if t not in self._pending:
            self._pending[t] = self._pool.submit(self._compute, t, prev.copy(), cur.copy())

    def get(self, t: int, prev: np.ndarray | None = None, cur: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        fut = self._pending.pop(t, None)
        if fut is not None:
            return fut.result()
        if prev is None or cur is None:
            raise KeyError(f"flow for frame {t} was not submitted and no frames were given")
        return self._compute(t, prev, cur)

    def close(self) -> None:
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> "FlowPrefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- flicker


def _to_image_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 255.0


def flicker_series(input_frames: Sequence[np.ndarray], output_frames: Sequence[np.ndarray],
                   method: str = "dis", wrap_x: bool = False, **kw) -> list[float]:
    """Per-pair warping error (Lai et al.; see :func:`stylevid.warp.warping_errors`) of uint8 outputs.

    Flows and masks come from the *input* frames. Inputs are resized (area) to the outputs' size
    when they differ; all outputs must share one size. ``flicker_series(x, x)`` is the input's own.
    """
    from .warp import reliability, warping_errors

    if len(input_frames) != len(output_frames):
        raise BadInput(f"flicker: {len(input_frames)} input frames but {len(output_frames)} output frames")
    if len(output_frames) < 2:
        return []
    h, w = output_frames[0].shape[:2]

    def fit(x: np.ndarray) -> np.ndarray:
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=2)
        return x if x.shape[:2] == (h, w) else cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)

    errs: list[float] = []
    prev_in, prev_out = fit(input_frames[0]), fit(output_frames[0])
    for i in range(1, len(input_frames)):
        cur_in, cur_out = fit(input_frames[i]), fit(output_frames[i])
        f = to_tensor(estimate_flow(prev_in, cur_in, method, wrap_x, **kw))    # F_t: t → t+1
        b = to_tensor(estimate_flow(cur_in, prev_in, method, wrap_x, **kw))    # t+1 → t
        m = reliability(b, f, wrap_x)                                           # mask on frame t
        o = torch.cat([_to_image_tensor(prev_out), _to_image_tensor(cur_out)])
        errs.append(float(warping_errors(o, f, m, wrap_x)[0]))
        prev_in, prev_out = cur_in, cur_out
    return errs


__all__ = ["METHODS", "estimate_flow", "seam_margin", "flow_pair", "flow_pair_np", "to_tensor", "to_numpy",
           "FlowCache", "FlowPrefetcher", "flicker_series"]
