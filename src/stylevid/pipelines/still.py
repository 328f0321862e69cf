"""Still-image style transfer (Gatys et al.), and the ``Stylizer`` the other pipelines reuse."""
from __future__ import annotations

import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .. import __version__
from ..config import ENCODER_LAYERS, INITS, OPTIMIZERS, PRECISIONS, StyleConfig, to_dict
from ..encoders import load_encoder
from ..errors import BadInput
from ..events import Sink, info, null_sink, warn
from ..files import atomic_write_text, check_input, check_output
from ..images import fit_size, image_format, load_image, resize, save_image, to_tensor, to_uint8
from ..losses import ContentLoss, StyleLoss, gram, total_variation
from ..optimize import optimize, with_grad
from ..runtime import cpu_has_bf16, generator, pick_device
from ..tiling import ALIGN, TiledLoss, tile_grid, tiled_features, tiled_grams

# A callable adding extra loss terms (the video pipeline's temporal loss).
Extra = Callable[[Tensor], Tensor]


def validate(cfg: StyleConfig, n_styles: int = 1) -> None:
    """Refuse bad option values with one line each (exit 2)."""
    if cfg.encoder not in ENCODER_LAYERS:
        raise BadInput(f"--encoder {cfg.encoder!r}: choose one of {', '.join(ENCODER_LAYERS)}")
    if cfg.init not in INITS:
        raise BadInput(f"--init {cfg.init!r}: choose one of {', '.join(INITS)}")
    if cfg.precision not in PRECISIONS:
        raise BadInput(f"--precision {cfg.precision!r}: choose one of {', '.join(PRECISIONS)}")
    if cfg.precision == "fp16" and pick_device(cfg.device).type != "cuda":
        raise BadInput("--precision fp16 needs a CUDA device; use bf16 or fp32")
    if cfg.optimizer not in OPTIMIZERS:
        raise BadInput(f"--optimizer {cfg.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    if not 16 <= cfg.size <= 16384:
        raise BadInput(f"--size {cfg.size}: must be between 16 and 16384")
    if not 1 <= cfg.scales <= 6:
        raise BadInput(f"--scales {cfg.scales}: must be between 1 and 6")
    if cfg.iterations < 0 or cfg.coarse_iterations < 0:
        raise BadInput("--iterations must be 0 or more")
    for name in ("content_weight", "style_weight", "tv_weight"):
        if getattr(cfg, name) < 0:
            raise BadInput(f"--{name.replace('_', '-')} must be 0 or more")
    if not 0.05 <= cfg.style_scale <= 8:
        raise BadInput(f"--style-scale {cfg.style_scale}: must be between 0.05 and 8")
    if cfg.style_blend is not None:
        if len(cfg.style_blend) != n_styles:
            raise BadInput(f"--style-blend has {len(cfg.style_blend)} weights for {n_styles} styles")
        if any(w < 0 for w in cfg.style_blend) or sum(cfg.style_blend) <= 0:
            raise BadInput("--style-blend weights must be non-negative with a positive sum")
    if cfg.lr <= 0:
        raise BadInput("--lr must be positive")
    if not 64 <= cfg.tile <= 16384:
        raise BadInput(f"--tile {cfg.tile}: must be between 64 and 16384")
    for opt, v in (("--tile-above", cfg.tile_above), ("--view-tile-above", cfg.view_tile_above)):
        if v and not 64 <= v <= 65536:
            raise BadInput(f"{opt} {v}: must be 0 (never tile) or between 64 and 65536")
    if not (0 <= cfg.tile_halo <= 1024 and cfg.tile_halo % ALIGN == 0):
        raise BadInput(f"--tile-halo {cfg.tile_halo}: must be a multiple of {ALIGN} between 0 and 1024")
    if cfg.lbfgs_history < 1 or cfg.lbfgs_memory_mb <= 0:
        raise BadInput("--lbfgs-memory (and lbfgs_history) must be positive")
    style_layers = cfg.layers()[0]
    for name, w in cfg.layer_weights.items():
        if name not in style_layers:
            raise BadInput(f"--layer-weight {name}: not one of the style layers ({', '.join(style_layers)})")
        if not w >= 0:
            raise BadInput(f"--layer-weight {name}:{w}: weights must be 0 or more")
    if sum(cfg.layer_weights.get(k, 1.0) for k in style_layers) <= 0:
        raise BadInput("--layer-weight: at least one style layer needs a positive weight")


class Stylizer:
    """Holds the encoder and the style images; optimizes pictures toward them.

    ``stylize(content)`` is the whole still pipeline (coarse-to-fine); ``optimize_at(...)`` is one
    optimization at one size, with optional extra loss terms (temporal) used by video.
    """

    def __init__(self, cfg: StyleConfig, styles: Sequence[np.ndarray], on_event: Sink = null_sink,
                 device: torch.device | None = None):
        validate(cfg, len(styles))
        self.cfg = cfg
        self.on_event = on_event
        self.device = device or pick_device(cfg.device)
        self.encoder = load_encoder(cfg.encoder, cfg.weights, cfg.offline, self.device, precision=cfg.precision)
        if cfg.precision != "fp32" and self.device.type == "cpu":
            if cpu_has_bf16():    # measured by scripts/bench.py (--only speed,precision) on a Xeon with AMX
                info(on_event, f"--precision {cfg.precision} on a CPU with bf16 instructions: for vgg 1.8x faster "
                               f"per step than fp32, for lite0 slower (1.3x); the look changes a little")
            else:
                warn(on_event, f"--precision {cfg.precision} on the CPU: same look, but far slower than fp32 "
                               "(25x measured on a CPU without bf16 instructions); it is meant for GPUs")
        self.style_layers, self.content_layers = cfg.layers()
        self.encoder.check_layers([*self.style_layers, *self.content_layers])
        self.styles = [to_tensor(s, self.device) for s in styles]
        self.blend = list(cfg.style_blend or [1.0] * len(styles))
        self._style_grams: dict[int, list] = {}        # long edge → each style's Grams
        self._grams: dict[tuple, StyleLoss] = {}       # (long edge, blend) → the blended targets

    # -- targets -------------------------------------------------------------------------------
    def style_loss_for(self, long_edge: int) -> StyleLoss:
        """Style targets for an output whose long edge is ``long_edge``: each style's Grams (cached per
        size), blended by the current :attr:`blend`."""
        if long_edge not in self._style_grams:
            grams = []
            for s in self.styles:
                h, w = fit_size(*s.shape[-2:], max(16, round(long_edge * self.cfg.style_scale)))
                grams.append(self.style_grams(resize(s, (h, w))))
            self._style_grams[long_edge] = grams
        key = (long_edge, tuple(self.blend))
        if key not in self._grams:
            if len(self._grams) > 8:          # a morph changes the blend every frame: keep a few
                self._grams.clear()
            blended = StyleLoss.blend_grams(self._style_grams[long_edge], self.blend, self.style_layers)
            self._grams[key] = StyleLoss(blended, self.cfg.layer_weights)
        return self._grams[key]

    def style_grams(self, style: Tensor) -> dict[str, Tensor]:
        """Gram matrices of a style picture at the style taps; a huge one tile by tile."""
        layers = list(self.style_layers)
        if not self.tiled(*style.shape[-2:]):
            with torch.no_grad():
                return {k: gram(f) for k, f in self.encoder(style, layers).items()}
        strides = {k: self.encoder.taps[k].stride for k in layers}
        return tiled_grams(self.encoder, style, layers, strides,
                           tile_grid(*style.shape[-2:], self.tile_core(), self.cfg.tile_halo))

    def tile_core(self) -> int:
        """Side of a tile's core: the tile less its halo on both sides, on the stride grid, >= 32."""
        return max(ALIGN, (self.cfg.tile - 2 * self.cfg.tile_halo) // ALIGN * ALIGN)

    def content_loss_for(self, content: Tensor) -> ContentLoss:
        with torch.no_grad():
            return ContentLoss(self.encoder(content, self.content_layers))

    def tiled(self, h: int, w: int, view: bool = False) -> bool:
        """True when an ``h×w`` picture is evaluated in tiles: more than ``cfg.tile_above``² pixels,
        or ``cfg.view_tile_above``² for a 360 ``view``."""
        above = self.cfg.view_tile_above if view else self.cfg.tile_above
        return bool(above) and h * w > above ** 2

    def objective(self, content: Tensor, extra: Extra | None = None, wrap_x: bool = False,
                  index: int = 0) -> Callable[[Tensor], Tensor]:
        cfg = self.cfg
        if self.tiled(*content.shape[-2:]):
            return self.tiled_objective(content, extra, wrap_x, index)
        style = self.style_loss_for(max(content.shape[-2:]))
        cont = self.content_loss_for(content) if cfg.content_weight > 0 else None
        layers = [*self.style_layers, *(self.content_layers if cont else ())]

        def loss_fn(x: Tensor) -> Tensor:
            feats = self.encoder(x, layers)
            loss = cfg.style_weight * style(feats) + cfg.tv_weight * total_variation(x, wrap_x)
            if cont is not None:
                loss = loss + cfg.content_weight * cont(feats)
            if extra is not None:
                loss = loss + extra(x)
            return loss

        return loss_fn

    def tiled_objective(self, content: Tensor, extra: Extra | None = None, wrap_x: bool = False,
                        index: int = 0) -> Callable[[Tensor], Tensor]:
        """The same loss for a picture beyond memory: encoder terms tile by tile (``tiling``), the
        picture-wide terms (total variation, ``extra``) on the whole picture."""
        cfg = self.cfg
        core = self.tile_core()
        strides = {k: self.encoder.taps[k].stride for k in (*self.style_layers, *self.content_layers)}
        cont = None
        if cfg.content_weight > 0:
            grid = tile_grid(*content.shape[-2:], core, cfg.tile_halo)
            cont = tiled_features(self.encoder, content, list(self.content_layers), strides, grid)
        style = self.style_loss_for(max(content.shape[-2:])) if cfg.style_weight > 0 else None
        tiled = TiledLoss(self.encoder, strides, style, cfg.style_weight, cont, cfg.content_weight, core,
                          cfg.tile_halo, generator(cfg.seed, index))

        def loss_fn(x: Tensor) -> Tensor:
            value, grad = tiled(x.detach())
            with torch.enable_grad():
                xd = x.detach().requires_grad_(True)
                dense = cfg.tv_weight * total_variation(xd, wrap_x)
                if extra is not None:
                    dense = dense + extra(xd)
                (g,) = torch.autograd.grad(dense, xd)
            return with_grad(x, value + dense.detach(), grad + g)

        return loss_fn

    # -- optimization ----------------------------------------------------------------------------
    def initial(self, content: Tensor, seed: int, index: int = 0) -> Tensor:
        if self.cfg.init == "content":
            return content.clone()
        if self.cfg.init == "noise":
            g = generator(seed, index)
            return torch.rand(content.shape, generator=g).to(self.device)
        return resize(self.styles[0], tuple(content.shape[-2:])).clone()

    def optimize_at(self, content: Tensor, init: Tensor, iterations: int, extra: Extra | None = None,
                    on_step=None, task: str = "iterations", wrap_x: bool = False, index: int = 0) -> tuple[Tensor, int]:
        """One optimization at the size of ``content``. ``index`` (the frame) seeds the random draws
        (tile grid offsets of huge pictures, the 360 view rotations), so a resumed video repeats itself."""
        cfg = self.cfg
        x, used, _ = optimize(init, self.objective(content, extra, wrap_x, index), iterations, cfg,
                              self.on_event, task, on_step)
        return x, used

    def pyramid(self, h: int, w: int) -> list[tuple[int, int]]:
        """Sizes from coarse to fine; the finest has long edge ``cfg.size`` (or the input's, if 0)."""
        H, W = fit_size(h, w, self.cfg.size)
        sizes = []
        for k in range(self.cfg.scales - 1, -1, -1):
            s = 2 ** k
            hh, ww = round(H / s), round(W / s)
            if min(hh, ww) >= 32 or k == 0:
                sizes.append((hh, ww))
        return sizes

    def stylize(self, content: np.ndarray, seed: int | None = None, index: int = 0,
                on_step: Callable[[int, int, Tensor], None] | None = None,
                iterations: int | None = None) -> tuple[np.ndarray, dict]:
        """Coarse-to-fine stylization of one uint8 picture. Returns (uint8 result, stats).

        ``iterations`` at the final size overrides ``cfg.iterations`` (video's first frames).
        """
        seed = self.cfg.seed if seed is None else seed
        full = to_tensor(content, self.device)
        sizes = self.pyramid(*content.shape[:2])
        x, used = None, []
        for level, size in enumerate(sizes):
            c = resize(full, size)
            x = self.initial(c, seed, index) if x is None else resize(x, size).clamp(0, 1)
            its = (self.cfg.iterations if iterations is None else iterations) if level == len(sizes) - 1 else self.cfg.coarse_iterations
            step = (lambda i, xx, lv=level: on_step(lv, i, xx)) if on_step else None
            x, n = self.optimize_at(c, x, its, on_step=step, index=index,
                                    task=f"scale {level + 1}/{len(sizes)} {size[1]}x{size[0]}")
            used.append(n)
        out = to_uint8(x)
        if self.cfg.preserve_colors:
            out = keep_colors(out, content)
        return out, {"sizes": [list(s) for s in sizes], "iterations": used}


def keep_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance from the stylized picture, chroma (YCbCr) from the content (Gatys et al. 2016)."""
    from PIL import Image

    h, w = stylized.shape[:2]
    c = np.asarray(Image.fromarray(content).resize((w, h), Image.BICUBIC).convert("YCbCr"))
    s = np.asarray(Image.fromarray(stylized).convert("YCbCr"))
    out = np.concatenate([s[..., :1], c[..., 1:]], axis=2)
    return np.asarray(Image.fromarray(out, "YCbCr").convert("RGB"))


def check_inputs(content: str | Path, styles: str | Path | Sequence[str | Path], cfg: StyleConfig,
                 what: str = "content image", check: Callable[[str | Path, str], Path] = check_input
                 ) -> tuple[Path, list[Path]]:
    """Check the content file (``check``: an image sequence too, for a video), the style files and
    the options; one clear error for each problem."""
    styles = [styles] if isinstance(styles, (str, Path)) else list(styles)
    cpath = check(content, what)
    spaths = [check_input(s, "style image") for s in styles]
    if not spaths:
        raise BadInput("give at least one --style image")
    validate(cfg, len(spaths))
    return cpath, spaths


def default_output(content: Path, styles: Sequence[Path], ext: str = ".png") -> Path:
    return Path(f"{content.stem}_{'+'.join(s.stem for s in styles)}{ext}")


def plan_outputs(contents: Sequence[str | Path], styles: Sequence[Path], out: str | Path | None,
                 overwrite: bool = False, skip_existing: bool = False, what: str = "photo",
                 default: Callable[[Path, Sequence[Path]], Path] = default_output,
                 check: Callable[[str | Path, str], Path] = check_input
                 ) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The (input, output) pairs of a batch of photos or videos (``what``), every one checked before
    any work starts, and the outputs skipped because they exist (``skip_existing``: a batch run
    again after a stop goes on where it stopped; outputs are written whole or not at all).

    Outputs: ``out`` for one input; inside ``out`` when it is an existing folder (``default`` names);
    default names in the current folder otherwise. Refused: several inputs with an ``out`` that is
    not a folder, two inputs giving one output name, an output that is one of the batch's inputs
    (it would be overwritten before it is read), an output that exists (unless ``overwrite`` or
    ``skip_existing``).
    """
    if not contents:
        raise BadInput(f"give at least one {what}")
    if overwrite and skip_existing:
        raise BadInput("--overwrite and --skip-existing: choose one")
    if what == "photo":                 # a folder of photos: each picture in it (not its subfolders)
        contents = [p for c in contents for p in (photos_in(Path(c)) if Path(c).is_dir() else [c])]
    paths = [check(c, "content image" if what == "photo" else what) for c in contents]
    folder = Path(out) if out is not None and Path(out).is_dir() else None
    if out is not None and folder is None and len(paths) > 1:
        raise BadInput(f"-o {out}: with {len(paths)} {what}s, -o must be an existing folder")
    outs = [(folder / default(c, styles) if folder else Path(out) if out is not None
             else default(c, styles)) for c in paths]
    seen: dict[Path, Path] = {}
    for c, o in zip(paths, outs):
        key = o.resolve()
        if key in seen:
            raise BadInput(f"{seen[key]} and {c} would both write {o}; paint them into different folders (-o)")
        seen[key] = c
    everything = [*paths, *styles]
    plan, skipped = [], []
    for c, o in zip(paths, outs):
        if skip_existing and o.is_file():
            check_output(o, everything, overwrite=True)      # still never an input
            skipped.append(o)
            continue
        check_output(o, everything, overwrite)
        plan.append((c, o))
    return plan, skipped


PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".avif",
                            ".mpo", ".gif"})


def photos_in(folder: Path) -> list[Path]:
    """The pictures in ``folder`` (by extension, in name order); a one-line error when there is none."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not found:
        raise BadInput(f"{folder}: a folder with no photos ({', '.join(sorted(PHOTO_SUFFIXES))})")
    return found


def sidecar(out: Path, record: dict) -> Path:
    """JSON beside the output with every resolved setting, versions and timings."""
    path = out.with_name(out.name + ".json")
    record = {"stylevid": __version__, "torch": torch.__version__, "python": platform.python_version(),
              "machine": platform.machine(), **record}
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    return path


def stylize_image(content: str | Path, styles: str | Path | Sequence[str | Path], out: str | Path | None = None,
                  cfg: StyleConfig = StyleConfig(), overwrite: bool = False, on_event: Sink = null_sink,
                  **overrides) -> Path:
    """Stylize one picture; returns the output path. ``overrides`` replace fields of ``cfg``."""
    t0 = time.perf_counter()
    cfg = replace(cfg, **overrides) if overrides else cfg
    cpath, spaths = check_inputs(content, styles, cfg)
    out = Path(out) if out else default_output(cpath, spaths)
    check_output(out, [cpath, *spaths], overwrite)
    image_format(out)  # an unknown extension fails now, not after the optimization
    image = load_image(cpath, "content image")
    style_images = [load_image(s, "style image") for s in spaths]
    stylizer = Stylizer(cfg, style_images, on_event)
    info(on_event, f"{cpath.name}: {image.shape[1]}x{image.shape[0]} → long edge {cfg.size} on {stylizer.device}"
                   f" with {cfg.encoder}")

    def save_intermediate(level: int, i: int, x: Tensor) -> None:
        if cfg.save_every and i % cfg.save_every == 0:
            p = out.with_name(f"{out.stem}.s{level + 1}.{i:04d}{out.suffix}")
            save_image(to_uint8(x), p)

    t1 = time.perf_counter()
    result, stats = stylizer.stylize(image, on_step=save_intermediate if cfg.save_every else None)
    t2 = time.perf_counter()
    save_image(result, out)
    sidecar(out, {"content": str(cpath), "styles": [str(s) for s in spaths], "output": str(out),
                  "config": to_dict(cfg), "device": str(stylizer.device), **stats,
                  "seconds": {"setup": round(t1 - t0, 3), "optimize": round(t2 - t1, 3),
                              "total": round(time.perf_counter() - t0, 3)}})
    return out
