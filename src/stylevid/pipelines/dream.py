"""Deep dream (Mordvintsev, Olah, Tyka 2015) on the frozen encoder.

The pixels climb an objective by normalized gradient ascent, octave by octave, with random jitter:

- objective: a weighted sum of terms, each normalized by its value on the octave's base picture so
  that weights compare across layers and sizes (a weight-1 term starts near 1):
  * layer ``(name, w)``: ``w · mean(f²) / mean(f_base²)`` (plain amplification);
  * channel ``(name, c, w)``: ``w · mean(f[:, c]²) / mean(f_base²)`` (the layer's mean square, so a
    typical channel also starts near 1 and a channel that is silent on the picture still has a gradient);
  * with a guide picture, each layer term becomes the classic guided dream: every feature vector is
    matched to its best guide feature vector (largest dot product) and the objective is the mean of
    those dot products, divided by the guide's mean squared feature norm. The gradient at each position
    is the best-matching guide vector, so the picture grows the guide's motifs where they fit best.
    (Chosen over the dot product with the guide's Gram, which pulls every position toward the single
    dominant guide direction and washes out.) Channel terms stay plain amplification.
- step: ``x += step_size · m · g / mean_m(|g|)`` where ``m`` is the mask (1 without one) and the mean is
  over the unmasked pixels; pixels stay in [0,1].
- jitter: before each step the picture is rolled circularly by a random (dy, dx) in ``[-jitter, jitter]``
  (from ``runtime.generator(seed, index)``) and rolled back after; with ``wrap_x`` (equirectangular 360)
  only in x and by any amount in [0, W) (so the encoder's edges fall at a random longitude, not near
  the seam), the encoder sees the picture circularly padded in x (``wrap_pad``: columns of context),
  and every resize wraps, so the seam stays seamless.
- octaves: sizes ``round(size / octave_scale**k)``, k = octaves-1 … 0, each computed from the full
  size (no drift, odd sizes fine); octaves whose short side would be under ``MIN_OCTAVE_SIDE`` are
  dropped. As in the classic algorithm only the *detail* (dream − base) is carried up: the base of each
  octave is the content resized, the detail is upscaled and added.
- ``init`` (video: the previous dream warped by flow): the run starts from ``init`` instead of the
  content, but details stay relative to the content: ``init − content`` is split over the octaves like
  a Laplacian pyramid (each octave adds the band the coarser one could not hold), so with 0 steps the
  result is ``init`` itself.
- mask (H×W in [0,1], black = untouched): multiplies both the carried detail and each update, so where
  the mask is 0 the output equals the content exactly.
- zoom (a photo → a video, the classic infinite zoom; :func:`dream_zoom`): frame k starts from frame
  k-1 magnified about its centre (``warp.zoom_flow``) and is dreamed again with fewer steps, so the
  dream feeds on itself as the camera moves in.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..config import ENCODER_LAYERS, PROJECTIONS, STEREO_LAYOUTS, DreamConfig, PanoramaConfig, VideoConfig, to_dict
from ..encoders import layer_table, load_encoder
from ..errors import BadInput
from ..events import Progress, Sink, info, null_sink, warn
from ..files import check_input, check_output
from ..sequence import check_video_input, is_pattern, is_sequence, named_after, stem as sequence_stem
from ..images import fit_size, image_format, is_animated, load_image, open_image, read_xmp, save_image, to_tensor, to_uint8
from ..images import resize as _plain_resize
from ..optimize import GPU_READBACK
from ..runtime import generator, pick_device
from ..stereo import Eyes, check_mode as check_stereo
from ..video import OUTPUT_FORMATS, scaled_size, write_frames
from ..video.writer import check_codec, video_suffix
from ..warp import warp, zoom_flow
from .still import sidecar

MIN_OCTAVE_SIDE = 32      # an octave smaller than this on its short side is dropped
MAX_ZOOM_FRAMES = 100_000  # a zoom video's frames (over an hour at 24 fps)
GUIDE_MAX_SIDE = 512      # the guide is encoded at most this long (its features are matched, not tiled)
WRAP_PAD_MIN = 96         # wrap_x: columns of circular context on each side (at least) ...
WRAP_PAD_FRACTION = 0.125  # ... or this fraction of the width
WRAP_ALIGN = 32           # ... aligned to lite0's and VGG's largest stride (``wrap_pad``)

Term = tuple[str, int | None, float]    # (layer, channel or None, weight)


def wrap_pad(w: int) -> tuple[int, int]:
    """Columns of circular context (left, right) around a picture ``w`` wide: ``WRAP_PAD_*`` of them,
    the left a multiple of WRAP_ALIGN and the padded width too where the picture is wide enough, so
    that every encoder layer's windows line up with the picture's first column alike at any width
    (the features are cropped back by stride: an odd padded width shifted them by a pixel, and a
    seam showed)."""
    p = min(w, max(WRAP_PAD_MIN, int(w * WRAP_PAD_FRACTION)))
    for left in range(p - p % WRAP_ALIGN, 0, -WRAP_ALIGN):
        right = left + (-(w + 2 * left)) % WRAP_ALIGN
        if right <= w:           # a circular pad takes at most the picture's own width
            return left, right
    return p, p


# -- option parsing and validation ------------------------------------------------------------------
def parse_layer(text: str) -> tuple[str, float]:
    """``NAME[:WEIGHT]`` → (name, weight)."""
    parts = text.strip().split(":")
    if len(parts) not in (1, 2) or not parts[0]:
        raise BadInput(f"--layer {text!r}: expected NAME[:WEIGHT], e.g. block10 or block7:0.5")
    return parts[0], _weight(parts[1], "--layer", text) if len(parts) == 2 else 1.0


def parse_channel(text: str) -> tuple[str, int, float]:
    """``NAME:INDEX[:WEIGHT]`` → (name, index, weight)."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise BadInput(f"--channel {text!r}: expected NAME:INDEX[:WEIGHT], e.g. block10:42")
    try:
        index = int(parts[1])
    except ValueError:
        raise BadInput(f"--channel {text!r}: channel index {parts[1]!r} is not an integer") from None
    return parts[0], index, _weight(parts[2], "--channel", text) if len(parts) == 3 else 1.0


def _weight(s: str, opt: str, text: str) -> float:
    try:
        w = float(s)
    except ValueError:
        raise BadInput(f"{opt} {text!r}: weight {s!r} is not a number") from None
    if not math.isfinite(w):
        raise BadInput(f"{opt} {text!r}: weight must be finite")
    return w


def terms(cfg: DreamConfig) -> list[Term]:
    """The objective's terms: the layers (or the encoder's default dream layers when neither layers
    nor channels are given) and the channels."""
    layers = list(cfg.layers)
    if not layers and not cfg.channels:
        layers = [(name, 1.0) for name in ENCODER_LAYERS[cfg.encoder]["dream"]]
    return [(n, None, float(w)) for n, w in layers] + [(n, int(c), float(w)) for n, c, w in cfg.channels]


def validate(cfg: DreamConfig) -> list[Term]:
    """Refuse bad option values with one line each (exit 2); return the objective's terms."""
    if cfg.encoder not in ENCODER_LAYERS:
        raise BadInput(f"--encoder {cfg.encoder!r}: choose one of {', '.join(ENCODER_LAYERS)}")
    if not (cfg.size == 0 or 16 <= cfg.size <= 16384):
        raise BadInput(f"--size {cfg.size}: must be 0 (native) or between 16 and 16384")
    if not 1 <= cfg.octaves <= 12:
        raise BadInput(f"--octaves {cfg.octaves}: must be between 1 and 12")
    if not (math.isfinite(cfg.octave_scale) and 1.0 < cfg.octave_scale <= 4.0):
        raise BadInput(f"--octave-scale {cfg.octave_scale}: must be above 1 and at most 4")
    if cfg.steps < 0:
        raise BadInput(f"--steps {cfg.steps}: must be 0 or more")
    if not (math.isfinite(cfg.step_size) and cfg.step_size > 0):
        raise BadInput(f"--step-size {cfg.step_size}: must be positive")
    if cfg.jitter < 0:
        raise BadInput(f"--jitter {cfg.jitter}: must be 0 or more")
    if cfg.save_every < 0:
        raise BadInput(f"--save-every {cfg.save_every}: must be 0 or more")
    if not 0 <= cfg.zoom_frames <= MAX_ZOOM_FRAMES:
        raise BadInput(f"--zoom-frames {cfg.zoom_frames}: 0 (a photo) or up to {MAX_ZOOM_FRAMES} frames")
    if not (math.isfinite(cfg.zoom) and 0.5 <= cfg.zoom <= 2.0):
        raise BadInput(f"--zoom {cfg.zoom}: magnification per frame, from 0.5 (out) to 2 (in); 1 stays put")
    if not (math.isfinite(cfg.zoom_rotate) and abs(cfg.zoom_rotate) <= 45):
        raise BadInput(f"--zoom-rotate {cfg.zoom_rotate}: degrees per frame, from -45 to 45")
    if cfg.zoom_steps < 0:
        raise BadInput(f"--zoom-steps {cfg.zoom_steps}: must be 0 or more")
    if not 1 <= cfg.zoom_fps <= 240:
        raise BadInput(f"--fps {cfg.zoom_fps}: from 1 to 240")
    table = {l.name: l for l in layer_table(cfg.encoder)}
    ts = terms(cfg)
    for name, ch, w in ts:
        opt = "--layer" if ch is None else "--channel"
        if name not in table:
            raise BadInput(f"{opt} {name!r}: unknown layer for encoder {cfg.encoder}; "
                           f"see `stylevid layers --encoder {cfg.encoder}`")
        if ch is not None and not 0 <= ch < table[name].channels:
            raise BadInput(f"--channel {name}:{ch}: {name} has channels 0 to {table[name].channels - 1}")
        if not math.isfinite(w):
            raise BadInput(f"{opt} {name}: weight must be finite")
    if all(w == 0 for _, _, w in ts):
        raise BadInput("--layer/--channel: all weights are 0, nothing to dream")
    return ts


# -- geometry -----------------------------------------------------------------------------------------
def octave_sizes(h: int, w: int, octaves: int, scale: float, min_side: int = MIN_OCTAVE_SIDE) -> list[tuple[int, int]]:
    """Octave sizes from coarse to fine; the finest is (h, w), octave k is (h, w) / scale**k rounded
    half up, computed from the full size each time. Octaves with a short side under ``min_side`` are
    dropped (the finest is always kept)."""
    sizes = [(h, w)]
    for k in range(1, octaves):
        f = scale ** k
        hh, ww = int(math.floor(h / f + 0.5)), int(math.floor(w / f + 0.5))
        if min(hh, ww) < min_side:
            break
        sizes.append((hh, ww))
    return sizes[::-1]


def resize(x: Tensor, size: tuple[int, int], wrap_x: bool = False) -> Tensor:
    """Antialiased bilinear resize; with ``wrap_x`` circular in x (the picture is tiled three times
    across, resized to three times the width, and the middle third kept: exact, no seam)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if not wrap_x:
        return _plain_resize(x, size)
    h, w = size
    tiled = torch.cat([x, x, x], dim=-1)
    return _plain_resize(tiled, (h, 3 * w))[..., w:2 * w]


def _mask_tensor(mask, h: int, w: int, device, wrap_x: bool) -> Tensor:
    """H×W (or H×W×C) uint8 or float array, or a tensor, → 1×1×h×w float in [0,1]."""
    if isinstance(mask, Tensor):
        m = mask.detach().float()
        while m.dim() < 4:
            m = m.unsqueeze(0)
        m = m[:, :1] if m.shape[1] != 1 else m
    else:
        a = np.asarray(mask)
        scale = 255.0 if a.dtype == np.uint8 else 1.0
        a = a.astype(np.float32) / scale
        if a.ndim == 3:
            a = a[..., :3].mean(axis=2)
        if a.ndim != 2:
            raise BadInput(f"mask: expected an H×W or H×W×C array, got shape {a.shape}")
        m = torch.from_numpy(np.ascontiguousarray(a))[None, None]
    m = resize(m.to(device), (h, w), wrap_x).clamp(0, 1)
    return m


# -- the dreamer ----------------------------------------------------------------------------------------
class Dreamer:
    """Holds the encoder (and the guide); ``dream(image)`` is the whole still algorithm at the image's
    own size. ``encoder``/``weights``/``device`` override the config's; ``guide`` is a uint8 picture."""

    def __init__(self, cfg: DreamConfig = DreamConfig(), encoder: str | None = None, weights: str | None = None,
                 device: torch.device | str | None = None, on_event: Sink = null_sink,
                 guide: np.ndarray | None = None, wrap_x: bool | None = None):
        over = {k: v for k, v in (("encoder", encoder), ("weights", weights), ("wrap_x", wrap_x)) if v is not None}
        cfg = replace(cfg, **over) if over else cfg
        self.terms = validate(cfg)
        self.cfg = cfg
        self.on_event = on_event
        self.device = torch.device(device) if device is not None else pick_device(cfg.device)
        self.encoder = load_encoder(cfg.encoder, cfg.weights, cfg.offline, self.device)
        self.layers = list(dict.fromkeys(n for n, _, _ in self.terms))
        self.encoder.check_layers(self.layers)
        self.guide = to_tensor(guide, self.device) if guide is not None else None
        self.guide_layers = [n for n, c, _ in self.terms if c is None]
        self._guide_feats: dict[int, dict[str, Tensor]] = {}

    # -- objective ---------------------------------------------------------------------------------
    def _encode(self, x: Tensor) -> dict[str, Tensor]:
        if self.cfg.wrap_x:
            w = x.shape[-1]
            left, right = wrap_pad(w)
            feats = self.encoder(F.pad(x, (left, right, 0, 0), mode="circular"), self.layers)
            # crop the features back to the picture's own columns (the padding only gives context)
            out = {}
            for k, f in feats.items():
                s = f.shape[-1] / (w + left + right)
                a, b = int(round(left * s)), int(round((left + w) * s))
                out[k] = f[..., a:max(b, a + 1)]
            return out
        return self.encoder(x, self.layers)

    def guide_features(self, long_edge: int) -> dict[str, Tensor]:
        """Guide feature vectors per layer, C×M, for an octave whose long edge is ``long_edge``."""
        key = min(long_edge, GUIDE_MAX_SIDE)
        if key not in self._guide_feats:
            with torch.no_grad():
                g = resize(self.guide, fit_size(*self.guide.shape[-2:], key))
                feats = self.encoder(g, self.guide_layers)
            self._guide_feats[key] = {k: f[0].flatten(1) for k, f in feats.items()}
        return self._guide_feats[key]

    def objective(self, base: Tensor) -> Callable[[Tensor], Tensor]:
        """The objective for one octave, each term normalized by its value on ``base``."""
        guide = self.guide_features(max(base.shape[-2:])) if self.guide is not None else None
        with torch.no_grad():
            fb = self._encode(base)
            norm = {k: f.pow(2).mean().clamp_min(1e-8) for k, f in fb.items()}
            if guide is not None:
                gnorm = {k: g.pow(2).sum(0).mean().clamp_min(1e-8) for k, g in guide.items()}

        def fn(x: Tensor) -> Tensor:
            feats = self._encode(x)
            total = x.new_zeros(())
            for name, ch, w in self.terms:
                if w == 0:
                    continue
                f = feats[name]
                if ch is not None:
                    total = total + w * f[:, ch].pow(2).mean() / norm[name]
                elif guide is not None:
                    y = guide[name]                                  # C×M
                    a = f.flatten(2).transpose(1, 2) @ y             # B×N×M dot products
                    total = total + w * a.max(dim=2).values.mean() / gnorm[name]
                else:
                    total = total + w * f.pow(2).mean() / norm[name]
            return total

        return fn

    # -- the algorithm -------------------------------------------------------------------------------
    def sizes(self, h: int, w: int) -> list[tuple[int, int]]:
        return octave_sizes(h, w, self.cfg.octaves, self.cfg.octave_scale)

    def dream(self, image: np.ndarray, seed: int | None = None, index: int = 0, init: np.ndarray | None = None,
              mask=None, on_step: Callable[[int, int, Tensor], None] | None = None,
              steps: int | None = None) -> np.ndarray:
        """Dream one uint8 H×W×3 picture at its own size; returns uint8 H×W×3.

        ``init``: start from this picture (uint8, resized if needed) instead of ``image``; details stay
        relative to ``image``. ``mask``: H×W in [0,1] (or uint8), black = untouched.
        ``on_step(octave, step, x)`` is called after each step (``x`` at the octave's size).
        ``steps`` per octave overrides ``cfg.steps`` (warm video frames take fewer).
        """
        cfg, wrap = self.cfg, self.cfg.wrap_x
        seed = cfg.seed if seed is None else seed
        g = generator(seed, index)
        content = to_tensor(image, self.device)
        H, W = content.shape[-2:]
        sizes = self.sizes(H, W)
        dinit = None
        if init is not None:
            dinit = resize(to_tensor(init, self.device), (H, W), wrap) - content
        m_full = _mask_tensor(mask, H, W, self.device, wrap) if mask is not None else None

        detail = prev_di = None
        x = content
        for k, size in enumerate(sizes):
            base = resize(content, size, wrap)
            d = torch.zeros_like(base) if detail is None else resize(detail, size, wrap)
            if dinit is not None:
                di = resize(dinit, size, wrap)
                d = d + di - (resize(prev_di, size, wrap) if prev_di is not None else 0)
                prev_di = di
            m = None
            if m_full is not None:
                m = resize(m_full, size, wrap).clamp(0, 1) if k < len(sizes) - 1 else m_full
                d = d * m
            x = (base + d).clamp(0, 1)
            x = self._ascend(x, base, m, g, k, len(sizes), on_step, self.cfg.steps if steps is None else steps)
            detail = x - base
        if m_full is not None:     # exact: where the mask is 0 the content comes back bit for bit
            x = torch.where(m_full > 0, x, content)
        return to_uint8(x)

    def _ascend(self, x: Tensor, base: Tensor, m: Tensor | None, g: torch.Generator, k: int, n: int,
                on_step, steps: int) -> Tensor:
        cfg = self.cfg
        task = f"octave {k + 1}/{n} {x.shape[-1]}x{x.shape[-2]}"
        self.on_event(Progress(task, 0, steps))
        if steps == 0:
            return x
        fn = self.objective(base)
        msum = m.sum() * x.shape[1] if m is not None else None
        j = cfg.jitter
        # The loss is read back (a sync on a GPU) every GPU_READBACK steps and at the last one there.
        readback = 1 if x.device.type == "cpu" else GPU_READBACK
        shown = None
        for i in range(1, steps + 1):
            oy, ox = (torch.randint(-j, j + 1, (2,), generator=g).tolist() if j else (0, 0))
            if cfg.wrap_x:
                # circular in x: any roll is seamless, so roll anywhere; the encoder's edges (where its
                # padded context ends) then land at a random longitude, not always near the seam
                oy, ox = 0, int(torch.randint(0, x.shape[-1], (1,), generator=g))
            xr = x.roll((oy, ox), dims=(-2, -1)).requires_grad_(True)
            value = fn(xr)
            (grad,) = torch.autograd.grad(value, xr)
            grad = grad.roll((-oy, -ox), dims=(-2, -1))
            with torch.no_grad():
                if m is not None:
                    grad = grad * m
                    scale = grad.abs().sum() / msum.clamp_min(1e-8)
                else:
                    scale = grad.abs().mean()
                x = (x + cfg.step_size / scale.clamp_min(1e-12) * grad).clamp_(0, 1)
            if i % readback == 0 or i == steps:
                shown = float(value.detach())
            self.on_event(Progress(task, i, steps, loss=shown))
            if on_step is not None:
                on_step(k, i, x)
        return x


# -- files ----------------------------------------------------------------------------------------------
# Extensions that name a video container: such a file is dreamed as a video, and refused by the video
# reader if it is not one (a PNG renamed .mp4 is "a still image (png), not a video", as for `video`).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg",
                              ".mpeg", ".wmv", ".flv", ".3gp", ".ogv", ".y4m"})


def is_video(path: str | Path) -> bool:
    """Whether ``path`` is dreamed as a video: its extension names a video container, it is an
    animation (GIF, WebP, APNG) or an image sequence (sequence.py), or (an extension Pillow does not know either) PyAV finds a video
    stream in it. Anything else is read as a picture, and the image reader reports what is wrong
    with it."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS or is_sequence(p):
        return True
    if ext in Image.registered_extensions():
        return is_animated(p)           # an animated GIF, WebP or PNG is dreamed frame by frame
    try:
        from ..video.probe import probe

        probe(p)
        return True
    except Exception:
        return False


def default_output(image: Path, ext: str = ".png") -> Path:
    return Path(f"{image.stem}_dream{ext}")


def load_mask(path: str | Path) -> np.ndarray:
    """A mask file → H×W float32 in [0,1] (luminance; alpha, if any, composited on white first)."""
    from ..images import to_rgb

    im = open_image(path, "mask image")
    a = np.asarray(Image.fromarray(to_rgb(im)).convert("L"), dtype=np.float32) / 255.0
    return a


def check_dream_inputs(path, what: str, guide, mask, cfg: DreamConfig, projection: str):
    """Check the input, the optional guide and mask files, the options; one clear error each."""
    ipath = check_video_input(path, what) if what == "video" else check_input(path, what)
    gpath = check_input(guide, "guide image") if guide is not None else None
    mpath = check_input(mask, "mask image") if mask is not None else None
    validate(cfg)
    if projection not in PROJECTIONS:
        raise BadInput(f"--projection {projection!r}: choose one of {', '.join(PROJECTIONS)}")
    return ipath, gpath, mpath


def dream_image(image: str | Path, out: str | Path | None = None, cfg: DreamConfig = DreamConfig(),
                guide: str | Path | None = None, mask: str | Path | None = None, overwrite: bool = False,
                on_event: Sink = null_sink, projection: str = "auto", stereo: str = PanoramaConfig.stereo,
                **overrides) -> Path:
    """Dream one picture; returns the output path. ``overrides`` replace fields of ``cfg``.

    Same input/output rules as ``stylize_image``: inputs checked first, the output refused if it exists
    (unless ``overwrite``) or is an input, atomic save, a JSON sidecar beside it.
    ``projection`` (auto | equirect | flat, detected as in the 360 mode: XMP GPano, else a 2:1 frame):
    an equirectangular picture is dreamed with ``wrap_x`` (seamless) and keeps GPano metadata;
    ``cfg.wrap_x`` forces equirect.
    """
    t0 = time.perf_counter()
    cfg = replace(cfg, **overrides) if overrides else cfg
    ipath, gpath, mpath = check_dream_inputs(image, "input image", guide, mask, cfg, projection)
    out = Path(out) if out else default_output(ipath)
    check_output(out, [p for p in (ipath, gpath, mpath) if p is not None], overwrite)
    image_format(out)  # an unknown extension fails now, not after the dream
    from .panorama import detect_projection, gpano_projection, gpano_xmp, load_photo, photo_stereo, save_photo

    picture, declared = load_photo(ipath, stereo, on_event)
    # A stereo picture's projection is its eyes' (a top-bottom 360 photo is 1:1, each eye 2:1).
    stereo, (eye_w, eye_h) = photo_stereo(picture, stereo, ipath, on_event, "dreamed", declared)
    proj = "equirect" if cfg.wrap_x else detect_projection(ipath, eye_w, eye_h, projection)
    cfg = replace(cfg, wrap_x=proj == "equirect")
    guide_image = load_image(gpath, "guide image") if gpath else None
    mask_array = load_mask(mpath) if mpath else None
    dreamer = Dreamer(cfg, on_event=on_event, guide=guide_image)
    h, w = fit_size(*picture.shape[:2], cfg.size)
    if stereo:
        eyes = Eyes(stereo)
        size = eyes.eye_size(w, h)[::-1]        # (height, width) of one eye
        picture = eyes.join(*(to_uint8(resize(to_tensor(e), size, cfg.wrap_x)) for e in eyes.split(picture)))
        h, w = picture.shape[:2]
        octaves = dreamer.sizes(*size)          # each eye is dreamed at its own size
        if mask_array is not None:
            mask_array = eye_mask(mask_array, stereo, w, h)
        if cfg.save_every:
            warn(on_event, "--save-every: no intermediate images for a stereo picture (it is dreamed eye by eye)")
    else:
        if (h, w) != picture.shape[:2]:
            picture = to_uint8(resize(to_tensor(picture), (h, w), cfg.wrap_x))
        octaves = dreamer.sizes(h, w)
    info(on_event, f"{ipath.name}: {w}x{h}{f' ({stereo} stereo, eye by eye)' if stereo else ''}, octaves "
                   f"{' '.join(f'{b}x{a}' for a, b in octaves)} on "
                   f"{dreamer.device} with {cfg.encoder} ({', '.join(_describe(t) for t in dreamer.terms)}"
                   f"{', guided by ' + gpath.name if gpath else ''}{', equirect: seamless in x' if cfg.wrap_x else ''})")

    def save_intermediate(octave: int, i: int, x: Tensor) -> None:
        if i % cfg.save_every == 0:
            save_image(to_uint8(x), out.with_name(f"{out.stem}.o{octave + 1}.{i:04d}{out.suffix}"))

    t1 = time.perf_counter()
    if stereo:
        from .video import StereoPainter

        # As a stereo video's first frame: the left eye dreamed, the right eye keeps the left eye's
        # dream warped by the disparity flow where that is reliable and dreams only the rest.
        result, _ = StereoPainter(lambda size: DreamPainter(dreamer, cfg.steps, mask_array), stereo, VideoConfig(),
                                  cfg.wrap_x, dreamer.device, {}).cold(picture, 0)
    else:
        result = dreamer.dream(picture, mask=mask_array, on_step=save_intermediate if cfg.save_every else None)
    t2 = time.perf_counter()
    xmp = None
    try:
        xmp_in = read_xmp(ipath)
    except Exception:  # unreadable metadata: as if there were none
        xmp_in = None
    # GPano for a 360 dream, but not added to a stereo pair (both eyes in one are not one picture).
    if cfg.wrap_x and (not stereo or gpano_projection(xmp_in) is not None):
        xmp = gpano_xmp(xmp_in, w, h)
    save_photo(result, out, stereo, xmp)
    sidecar(out, {"input": str(ipath), "guide": str(gpath) if gpath else None, "mask": str(mpath) if mpath else None,
                  "output": str(out), "projection": proj, "stereo": stereo, "config": to_dict(cfg),
                  "device": str(dreamer.device),
                  "terms": [list(t) for t in dreamer.terms], "octaves": [list(s) for s in octaves],
                  "seconds": {"setup": round(t1 - t0, 3), "dream": round(t2 - t1, 3),
                              "total": round(time.perf_counter() - t0, 3)}})
    return out


class DreamPainter:
    """Video dream: frame 1 (and each new shot) dreams from the content; later frames start from the
    previous dream warped by optical flow where it is reliable (the video pipeline's machinery), with
    fewer steps (``steps × iterations / first_iterations``), so the dream follows the motion."""

    def __init__(self, dreamer: "Dreamer", warm_steps: int, mask: np.ndarray | None = None):
        self.dreamer, self.warm_steps, self.mask = dreamer, warm_steps, mask
        self.device = dreamer.device

    def _mask(self, h: int, w: int):
        if self.mask is None:
            return None
        m = Image.fromarray((np.clip(self.mask, 0, 1) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
        return np.asarray(m, dtype=np.float32) / 255.0

    def cold(self, content: np.ndarray, t: int) -> tuple[np.ndarray, int]:
        cfg = self.dreamer.cfg
        out = self.dreamer.dream(content, seed=cfg.seed, index=t, mask=self._mask(*content.shape[:2]))
        return out, cfg.steps * cfg.octaves

    def warm(self, content: np.ndarray, previous: list, t: int) -> tuple[np.ndarray, int]:
        warped, m = previous[0]
        init = to_uint8(m * warped + (1 - m) * to_tensor(content, self.device))
        cfg = self.dreamer.cfg
        out = self.dreamer.dream(content, seed=cfg.seed, index=t, init=init, mask=self._mask(*content.shape[:2]),
                                 steps=self.warm_steps)
        return out, self.warm_steps * cfg.octaves

    def other_eye(self, content: np.ndarray, previous: list, t: int) -> tuple[np.ndarray, int]:
        """The right eye of a stereo frame: the left eye's dream warped by the disparity flow
        (``previous[0]``) wherever that warp is reliable, kept exactly; only the rest (what the left
        eye cannot see) is dreamed, ``warm_steps`` per octave. Dreaming it all again would move the
        eyes apart by the steps' own strokes."""
        warped, m = previous[0]
        start = to_uint8(m * warped + (1 - m) * to_tensor(content, self.device))
        rest = 1 - m[0, 0]
        user = self._mask(*content.shape[:2])
        if user is not None:
            rest = rest * torch.from_numpy(user).to(rest)
        if float(rest.max()) == 0:
            return start, 0
        cfg = self.dreamer.cfg
        out = self.dreamer.dream(start, seed=cfg.seed, index=t, mask=rest, steps=self.warm_steps)
        return out, self.warm_steps * cfg.octaves


def eye_mask(mask: np.ndarray, layout: str, width: int, height: int) -> np.ndarray:
    """The mask for each eye of a stereo video: its first half when it was drawn over the whole
    stacked frame (its shape is nearer the frame's than an eye's), else the mask as it is."""
    frame = width / height
    eye = frame / 2 if layout == "left-right" else frame * 2
    aspect = mask.shape[1] / mask.shape[0]
    return Eyes(layout).split(mask)[0] if abs(math.log(aspect / frame)) < abs(math.log(aspect / eye)) else mask


def dream_video(video: str | Path, out: str | Path | None = None, cfg: DreamConfig = DreamConfig(),
                vcfg=None, guide: str | Path | None = None, mask: str | Path | None = None,
                overwrite: bool = False, restart: bool = False, keep_work: bool = False,
                on_event: Sink = null_sink, projection: str = "auto", stereo: str = PanoramaConfig.stereo) -> Path:
    """Dream every frame of a video, flow-guided, keeping audio and timing; resumable like
    ``stylize_video`` (same work folder, lock and signals). ``vcfg``: a VideoConfig (its size,
    window, flow, iterations ratio, crf). ``projection`` and ``stereo`` as in ``stylize_video``."""
    from ..video import probe
    from .video import StereoPainter, _display_size, flow_options, readable, run_video, stereo_layout

    vcfg = vcfg or VideoConfig(size=cfg.size)
    vpath, gpath, mpath = check_dream_inputs(video, "video", guide, mask, cfg, projection)
    out = Path(out) if out else Path(f"{sequence_stem(vpath)}_dream{video_suffix(vcfg.codec, vpath)}")
    with readable(vpath, on_event, vcfg.fps) as src:
        meta = probe(src)
        stereo = stereo_layout(src, meta, stereo, vcfg, on_event, "dreamed")
        eye_w, eye_h = Eyes(stereo).eye_size(*_display_size(meta)) if stereo else _display_size(meta)
        wrap = cfg.wrap_x or projection == "equirect" or (
            projection == "auto" and (meta.spherical or eye_w == 2 * eye_h))
        cfg = replace(cfg, wrap_x=wrap)
        if wrap:
            info(on_event, f"{vpath.name}: equirectangular 360 video: dreaming seamlessly in x")
        guide_image = load_image(gpath, "guide image") if gpath else None
        mask_array = load_mask(mpath) if mpath else None
        if stereo and mask_array is not None:
            mask_array = eye_mask(mask_array, stereo, *_display_size(meta))
        warm_steps = max(1, round(cfg.steps * vcfg.iterations / vcfg.first_iterations))
        # The device and the weights are checked now: a bad one must fail before a work folder is made.
        dreamer = Dreamer(cfg, on_event=on_event, guide=guide_image)

        def make_painter(size: int, sink: Sink):
            dreamer.on_event = sink
            if not stereo:
                return DreamPainter(dreamer, warm_steps, mask_array)
            # Eye by eye, as stylevid video paints: DreamPainter's warm start takes the left eye's dream
            # warped onto the right eye like a previous frame.
            return StereoPainter(lambda eye: DreamPainter(dreamer, warm_steps, mask_array), stereo, vcfg, wrap,
                                 dreamer.device, flow_options(vcfg, cfg.offline, dreamer.device))

        others = [p for p in (gpath, mpath) if p is not None]
        return run_video(vpath, out, make_painter, replace(vcfg, temporal_weight=0.0), {"dream": to_dict(cfg), "stereo": stereo},
                         others,
                         overwrite=overwrite, restart=restart, keep_work=keep_work, on_event=on_event, wrap_x=wrap,
                         record={"dream": to_dict(cfg), "guide": str(gpath) if gpath else None,
                                 "mask": str(mpath) if mpath else None, "warm_steps": warm_steps, "stereo": stereo},
                         use_temporal=False, offline=cfg.offline, stereo=stereo, read_from=src, device=dreamer.device)


def zoom_frame(previous: np.ndarray, cfg: DreamConfig) -> np.ndarray:
    """The next zoom frame's starting picture: ``previous`` magnified ``cfg.zoom`` times about its
    centre and turned ``cfg.zoom_rotate`` degrees (reflected past the edges), as uint8."""
    h, w = previous.shape[:2]
    flow = zoom_flow(h, w, cfg.zoom, cfg.zoom_rotate)
    return to_uint8(warp(to_tensor(previous), flow, padding_mode="reflection"))


def dream_zoom(image: str | Path, out: str | Path | None = None, cfg: DreamConfig = DreamConfig(), crf: int = 18,
               guide: str | Path | None = None, mask: str | Path | None = None, overwrite: bool = False,
               restart: bool = False, keep_work: bool = False, on_event: Sink = null_sink,
               projection: str = "auto", codec: str = VideoConfig.codec, audio: str | Path | None = None) -> Path:
    """A photo becomes a video of ``cfg.zoom_frames`` frames at ``cfg.zoom_fps`` (the classic infinite
    zoom): frame 0 is the photo dreamed; frame k is frame k-1 zoomed (:func:`zoom_frame`) and dreamed
    again with ``cfg.zoom_steps`` steps per octave, so the dream feeds on itself as the camera moves in.

    Resumable like ``stylevid video``: each finished frame is kept (PNG + sha256) in
    ``.stylevid-work/<output>-<key>/``, keyed by the photo, guide, mask and every setting that changes
    the frames; frame k depends only on the *saved* frame k-1 and its seed (seed, k), so a resumed run
    gives the same video. Ctrl-C / SIGTERM / SIGHUP stop within a step (exit 130 / 143 / 129).
    ``audio``: a sound file laid under the zoom from its beginning (music), cut where the frames end.
    """
    from .jobs import file_identity, finished_frame, video_job
    from .video import check_audio_output, check_sequence_output, write_pictures

    t_start = time.perf_counter()
    if cfg.zoom_frames < 1:
        raise BadInput(f"--zoom-frames {cfg.zoom_frames}: a zoom video needs at least 1 frame")
    ipath, gpath, mpath = check_dream_inputs(image, "input image", guide, mask, cfg, projection)
    out = Path(out) if out else default_output(ipath, video_suffix(codec))
    pictures = is_pattern(out)          # zoom_%04d.png: numbered pictures, from 1
    if pictures:
        check_sequence_output(out, overwrite)
    elif out.suffix.lower() not in OUTPUT_FORMATS:
        raise BadInput(f"{out}: --zoom-frames makes a video; name the output {', '.join(OUTPUT_FORMATS)} "
                       f"(or DIR/zoom_%04d.png: numbered pictures)")
    else:
        check_codec(out, codec, crf, on_event)
    inputs = [p for p in (ipath, gpath, mpath) if p is not None]
    check_output(out, inputs, overwrite)
    if audio is not None:
        audio = check_audio_output(audio, out)
        check_output(out, [audio], overwrite)
    picture = load_image(ipath, "input image")
    from .panorama import detect_projection

    if cfg.wrap_x or detect_projection(ipath, picture.shape[1], picture.shape[0], projection) == "equirect":
        raise BadInput(f"{ipath}: a 360 picture has no centre to zoom into; --projection flat zooms into it "
                       f"as a flat picture")
    guide_image = load_image(gpath, "guide image") if gpath else None
    mask_array = load_mask(mpath) if mpath else None
    dreamer = Dreamer(cfg, on_event=on_event, guide=guide_image)
    w, h = scaled_size(picture.shape[1], picture.shape[0], cfg.size)     # a video's rule: even sides when scaled
    if (h, w) != picture.shape[:2]:
        picture = to_uint8(resize(to_tensor(picture), (h, w)))
    n = cfg.zoom_frames
    info(on_event, f"{ipath.name}: zooming {n} frames of {w}x{h} at {cfg.zoom_fps} fps, x{cfg.zoom:g}"
                   f"{f' and {cfg.zoom_rotate:g}°' if cfg.zoom_rotate else ''} per frame, {cfg.steps} steps per "
                   f"octave on frame 0 and {cfg.zoom_steps} after, on {dreamer.device} with {cfg.encoder} "
                   f"({', '.join(_describe(t) for t in dreamer.terms)})")

    # The work folder is keyed by everything that changes the frames: not the fps, the crf, or how
    # many frames (frame k depends only on the frames before it), so a longer zoom continues a kept one.
    settings = {k: v for k, v in to_dict(cfg).items()
                if k not in ("zoom_frames", "zoom_fps", "save_every", "device", "offline")}
    key_src = json.dumps({"input": file_identity(ipath), "others": [file_identity(p) for p in inputs[1:]],
                          "size": [w, h], "zoom": settings,
                          "even_sides": True},   # lite0's even_sides (2026-11-26): frames from before differ
                         sort_keys=True, default=str)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    seconds: list[float] = []
    with video_job(out, key, {"input": str(ipath), "others": [str(p) for p in inputs[1:]], "size": [w, h],
                              "zoom": settings}, restart, keep_work, on_event) as job:
        dreamer.on_event = job.watch
        previous = finished_frame(job.work, job.done - 1) if job.done else None
        on_event(Progress("frames", job.done, n))
        for k in range(job.done, n):
            t0 = time.perf_counter()
            if k == 0:
                result = dreamer.dream(picture, index=0, mask=mask_array)
            else:
                result = dreamer.dream(zoom_frame(previous, cfg), index=k, mask=mask_array, steps=cfg.zoom_steps)
            previous = job.work.save(k, result)
            seconds.append(time.perf_counter() - t0)
            on_event(Progress("frames", k + 1, n))
            job.watch.check()
        job.stage = "mux"
        if pictures:
            written = write_pictures(out, job.work, list(range(1, n + 1)), job.watch.check, on_event)
        else:
            written = write_frames(lambda i: finished_frame(job.work, i), n, out, fps=cfg.zoom_fps, crf=crf, codec=codec,
                                   overwrite=overwrite, inputs=tuple(inputs), on_event=on_event, check=job.watch.check,
                                   audio=audio)
        job.stage = "done"
        sidecar(named_after(out), {"input": str(ipath), "guide": str(gpath) if gpath else None,
                      "mask": str(mpath) if mpath else None, "output": str(out), "config": to_dict(cfg),
                      "device": str(dreamer.device), "terms": [list(t) for t in dreamer.terms],
                      "octaves": [list(s) for s in dreamer.sizes(h, w)], "frames": n, "fps": cfg.zoom_fps,
                      "size": [written.width, written.height], "video_codec": written.codec,
                      "soundtrack": str(audio) if audio else None, "audio": list(written.audio),
                      "seconds": {"frames_painted_now": round(sum(seconds), 3),
                                  "total": round(time.perf_counter() - t_start, 3)}})
    return out


def dream(input: str | Path, out: str | Path | None = None, cfg: DreamConfig = DreamConfig(), vcfg=None,
          guide: str | Path | None = None, mask: str | Path | None = None, overwrite: bool = False,
          restart: bool = False, keep_work: bool = False, on_event: Sink = null_sink,
          projection: str = "auto", stereo: str = PanoramaConfig.stereo) -> Path:
    """Dream a photo or a video, whichever ``input`` is (:func:`is_video`), or with ``cfg.zoom_frames``
    turn a photo into a zoom video (:func:`dream_zoom`); returns the output path.

    Every option is checked first, the video ones (``vcfg``: window, flow, crf) even for a photo; for
    a photo, video options given other values than their defaults are ignored with a warning.
    """
    from .video import validate_video

    path = check_video_input(input, "input")     # a file, or an image sequence (a video)
    validate(cfg)
    if vcfg is not None:
        validate_video(vcfg)
    video = is_video(path)       # may open the file with PyAV: once
    if video and cfg.zoom_frames:
        raise BadInput(f"{path}: --zoom-frames makes a video from a photo; this is a video already")
    check_stereo(stereo)
    if stereo in STEREO_LAYOUTS and cfg.zoom_frames:
        raise BadInput("--stereo and --zoom-frames: a zoom is made from one picture, not a stereo pair")
    if cfg.zoom_frames:
        v = vcfg or VideoConfig()
        ignored = [f"--{k}" for k in ("start", "duration", "flow") if getattr(v, k) != getattr(VideoConfig(), k)]
        if ignored:
            warn(on_event, f"{path}: {', '.join(ignored)} apply to video inputs only; ignored for a zoom")
        return dream_zoom(path, out, cfg, v.crf, guide=guide, mask=mask, overwrite=overwrite, restart=restart,
                          keep_work=keep_work, on_event=on_event, projection=projection, codec=v.codec, audio=v.audio)
    if video:
        return dream_video(path, out, cfg, vcfg, guide=guide, mask=mask, overwrite=overwrite, restart=restart,
                           keep_work=keep_work, on_event=on_event, projection=projection, stereo=stereo)
    if vcfg is not None:
        d = VideoConfig()
        ignored = [f"--{k.replace('_', '-')}" for k in ("start", "duration", "flow", "crf", "codec", "audio")
                   if getattr(vcfg, k) != getattr(d, k)]
        ignored += [o for o, on in (("--restart", restart), ("--keep-work", keep_work)) if on]
        if ignored:
            warn(on_event, f"{path}: {', '.join(ignored)} apply to videos only; ignored for a photo")
    return dream_image(path, out, cfg, guide=guide, mask=mask, overwrite=overwrite, on_event=on_event, stereo=stereo,
                       projection=projection)


def _describe(t: Term) -> str:
    name, ch, w = t
    s = name if ch is None else f"{name}:{ch}"
    return s if w == 1 else f"{s}×{w:g}"


__all__ = ["Dreamer", "dream", "dream_image", "dream_video", "dream_zoom", "zoom_frame", "VIDEO_EXTENSIONS", "DreamPainter", "octave_sizes", "parse_layer", "parse_channel", "validate", "terms",
           "load_mask", "default_output", "is_video", "MIN_OCTAVE_SIDE"]
