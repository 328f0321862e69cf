"""Stereo pictures: both eyes in one frame, top-bottom or left-right (left eye first).

:class:`Eyes` splits and joins such frames. :func:`choose` decides the layout a picture is painted
with: the one asked for, the one its metadata declares, or, with ``auto``, the one its halves show.
Many stereo files carry no metadata (an MPEG-TS, a re-encoded MP4, a JPEG), and painting both eyes as
one picture gives eyes that do not match.

How the halves show it (:func:`halves_match`): two eyes see one scene from a few centimetres apart,
so their fine detail (the picture less its blur) lines up once one eye is shifted by a few pixels
sideways (the disparity), and stops lining up at shifts two eyes would not show (the controls: an
eighth of the height down, or 8-25 % of the width sideways; a repeating pattern, stripes or tiles,
lines up there too). Measured on the shared media (`scripts/bench.py --only stereo_detect`, eyes
compared at 256 px wide): three real stereo 360 files (a photo, an MP4, an MPEG-TS) score 0.57-0.79,
0.54-0.74 above their controls; 26 mono files (photos, paintings, panoramas, video frames) score at
most 0.45 (a clip of long vertical edges, which match as well when shifted vertically) and at most
0.02 above their controls. Smooth pictures (a plain wall: whole-picture correlation 0.98) have too
little detail to decide and stay one picture.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .config import STEREO_LAYOUTS, STEREO_MODES
from .errors import BadInput

MATCH_WIDTH = 256          # the eyes are compared at this width (or their own, if narrower)
MIN_SCORE = 0.45           # correlation of the halves' detail that says "two eyes"
MIN_MARGIN = 0.25          # ... and how much better than at the control shifts (see halves_match)
MIN_DETAIL = 2.0           # RMS detail (0-255 grey levels) below which a picture cannot tell
NOT_STEREO = "; --stereo none paints both eyes as one picture"    # said after a layout auto chose


class Eyes:
    """The two eyes of a stereo frame, ``layout`` "top-bottom" or "left-right" (left eye first), for
    H×W×C arrays and B×C×H×W tensors alike."""

    def __init__(self, layout: str):
        self.layout = layout

    def _axis(self, ndim: int) -> int:
        return (0 if ndim == 3 else -2) if self.layout == "top-bottom" else (1 if ndim == 3 else -1)

    def split(self, x):
        """(left eye, right eye)."""
        ax = self._axis(x.ndim)
        n = x.shape[ax] // 2
        if isinstance(x, np.ndarray):
            return tuple(np.split(x, 2, axis=ax))
        return x.narrow(ax, 0, n), x.narrow(ax, n, n)

    def join(self, left, right):
        if isinstance(left, np.ndarray):
            return np.concatenate([left, right], axis=self._axis(left.ndim))
        return torch.cat([left, right], dim=self._axis(left.ndim))

    def eye_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of one eye of a width × height frame."""
        return (width, height // 2) if self.layout == "top-bottom" else (width // 2, height)

    def splits_evenly(self, width: int, height: int) -> bool:
        return (height if self.layout == "top-bottom" else width) % 2 == 0


class Match(NamedTuple):
    score: float       # best correlation of the eyes' detail over small horizontal shifts
    control: float     # the best at shifts two eyes would not match at (see halves_match)
    detail: float      # RMS of the detail (grey levels): how much there is to compare

    @property
    def stereo(self) -> bool:
        return (self.detail >= MIN_DETAIL and self.score >= MIN_SCORE
                and self.score - self.control >= MIN_MARGIN)


def _detail(eye: torch.Tensor, width: int) -> torch.Tensor:
    """The grey picture at ``width`` less its Gaussian blur (sigma 2 px): edges and texture."""
    h, w = eye.shape[-2:]
    g = eye.float().mean(dim=0, keepdim=True)[None]                     # 1×1×H×W, 0-255
    g = F.interpolate(g, size=(max(8, round(h * width / w)), width), mode="area")
    r = torch.arange(-6, 7, dtype=torch.float32)
    k = torch.exp(-r * r / 8.0)
    k = k / k.sum()
    blur = F.conv2d(F.pad(g, (6, 6, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    blur = F.conv2d(F.pad(blur, (0, 0, 6, 6), mode="replicate"), k.view(1, 1, -1, 1))
    return (g - blur)[0, 0]


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = torch.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def _best_shift(a: torch.Tensor, b: torch.Tensor, dy: int, shifts: Iterable[int]) -> float:
    """The best correlation of ``b`` shifted by each dx of ``shifts`` and by ``dy`` rows against ``a``."""
    h, w = a.shape
    a = a[max(0, dy):h + min(0, dy)]
    b = b[max(0, -dy):h + min(0, -dy)]
    best = -1.0
    for dx in shifts:
        x0, x1 = max(0, dx), w + min(0, dx)
        best = max(best, _correlation(a[:, x0:x1], b[:, x0 - dx:x1 - dx]))
    return best


def halves_match(picture: np.ndarray, layout: str) -> Match:
    """How well the halves of an H×W×C uint8 ``picture`` split by ``layout`` match as two eyes (an
    odd side loses its last row or column)."""
    h, w = picture.shape[:2]
    picture = picture[:h - h % 2] if layout == "top-bottom" else picture[:, :w - w % 2]
    left, right = (torch.tensor(e).permute(2, 0, 1) for e in Eyes(layout).split(picture))
    width = min(MATCH_WIDTH, left.shape[-1])
    a, b = _detail(left, width), _detail(right, width)
    reach = max(2, round(0.03 * width))                  # disparity: up to 3 % of the eye's width
    near = range(-reach, reach + 1)
    far = [s * dx for dx in range(round(0.08 * width), round(0.25 * width) + 1) for s in (1, -1)]
    # Controls, shifts two eyes would not match at: an eighth of the height down, or 8-25 % of the
    # width sideways. A pattern that repeats (stripes, tiles, a brick wall) matches there too.
    control = max(_best_shift(a, b, max(2, a.shape[0] // 8), near), _best_shift(a, b, 0, far))
    return Match(_best_shift(a, b, 0, near), control, float(torch.sqrt((a * a).mean() + (b * b).mean()) / 2 ** 0.5))


def detect(pictures: Iterable[np.ndarray], enough: int = 3) -> tuple[str, float]:
    """The stereo layout that ``pictures`` (frames of one video, or one photo) show, with its lowest
    score. Pictures with too little detail to tell (a fade from black) are passed over; the first
    ``enough`` that have it are compared (the rest are not read: ``pictures`` may be a lazy
    reader). A layout is taken when every one of them matches as two eyes in it. ("", best score)
    when none does."""
    seen: list[dict[str, Match]] = []
    for p in pictures:
        matches = {layout: halves_match(p, layout) for layout in STEREO_LAYOUTS}
        if min(m.detail for m in matches.values()) >= MIN_DETAIL:
            seen.append(matches)
            if len(seen) >= enough:
                break
    if not seen:
        return "", 0.0
    for layout in STEREO_LAYOUTS:
        if all(m[layout].stereo for m in seen):
            return layout, min(m[layout].score for m in seen)
    return "", max(m.score for matches in seen for m in matches.values())


def check_mode(mode: str) -> None:
    if mode not in STEREO_MODES:
        raise BadInput(f"--stereo {mode!r}: choose one of {', '.join(STEREO_MODES)}")


def choose(mode: str, pictures: Iterable[np.ndarray] | None = None, declared: str = "") -> tuple[str, str]:
    """(layout, why): the stereo layout to paint with ("" for one picture) and the reason.

    ``mode``: "none", a layout, or "auto": ``declared`` (the input's metadata) if any, else
    :func:`detect` on ``pictures`` (an iterable, read only when needed)."""
    check_mode(mode)
    if mode == "none":
        return "", "--stereo none"
    if mode != "auto":
        return mode, f"--stereo {mode}"
    if declared:
        return declared, "its metadata"
    if pictures is None:
        return "", ""
    layout, score = detect(pictures)
    return layout, f"its halves match as two eyes ({score:.2f})" if layout else ""


__all__ = ["Eyes", "Match", "halves_match", "detect", "check_mode", "choose", "NOT_STEREO", "MATCH_WIDTH", "MIN_SCORE", "MIN_MARGIN",
           "MIN_DETAIL"]
