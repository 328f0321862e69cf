"""360° equirectangular stylization: no seam, no pole smearing (L3).

The optimized variable is the equirectangular image itself. Each loss evaluation samples
overlapping perspective views from it (``sphere.sample_view``: differentiable, circular in
longitude, continuous across the poles), runs the encoder on the views in batches, and sums:

- style: per view, a Gram matrix whose pixels are weighted by solid angle ÷ coverage (each
  direction of the sphere counts once, by its area: the stretched poles do not dominate), matched
  to the style's Gram; views weighted by the share of the sphere they stand for;
- content: the same weighting, against the content's views sampled the same way;
- total variation on the equirect with ``wrap_x`` (the left and right edges are neighbours), rows
  weighted by their area (cos latitude);
- ``extra(x)`` (the video pipeline's temporal term), on the equirect.

The view set is rotated about the vertical axis by a seeded random yaw every few iterations, so
no view border stays in place. The variable is held in a latitude-adaptive form
(``sphere.LatitudeGrid``): rows near the poles keep only as many samples as the views can resolve
(W/2^k), expanded to W columns by circular interpolation. A polar sample then moves the picture as
much as an equatorial one (L-BFGS stays well conditioned at the poles), and the picture has no
detail along the polar rows that the views cannot see (it would show as radial streaks). Memory depends on the face size and the batch of views, not on
the panorama: the views are processed in batches and their gradients accumulated. The L-BFGS
history (2 copies of the variable per pair) is the part that grows with the panorama; it is capped
by ``--lbfgs-memory`` (fewer pairs for huge panoramas; Adam keeps 2 copies).

Also here: projection detection (XMP GPano, 2:1 frames), GPano XMP kept on save, cube-map export,
and ``stylize_panorama`` (the 360-aware ``stylize_image``).
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import PROJECTIONS, PanoramaConfig, StyleConfig, to_dict
from ..errors import BadInput
from ..events import Sink, info, null_sink, warn
from ..files import check_output
from ..images import fit_size, frame_count, load_image, read_xmp, save_image, stereo_pair, to_tensor, to_uint8
from ..images import resize as _plain_resize
from ..losses import weighted_gram
from ..optimize import optimize, with_grad
from ..runtime import generator, pick_device
from ..stereo import NOT_STEREO, Eyes, choose as choose_stereo
from ..tiling import TiledLoss, tile_grid, tiled_features
from .. import sphere as S
from .still import Extra, Stylizer, check_inputs, default_output, keep_colors, sidecar

GPANO_NS = "http://ns.google.com/photos/1.0/panorama/"


class SphereObjective:
    """The 360 loss of one optimization: content, style targets, views, weights and the rotation."""

    def __init__(self, st: "PanoramaStylizer", content: Tensor, extra: Extra | None = None, yaw: float = 0.0,
                 gen: torch.Generator | None = None):
        self.st, self.extra, self.gen = st, extra, gen
        cfg = st.cfg
        h, w = content.shape[-2:]
        self.face = st.face_size_for(w)
        self.views = st.views
        self.lon, self.lat, self.grid_lat, self.pix, self._wcache = st.geometry(h, w, content.device)
        self.row_area = torch.cos(S.equirect_lonlat(h, w, content.device)[1]).view(1, 1, h, 1)
        share = self.pix.sum((1, 2, 3))
        self.share = share / share.sum()                                   # each view's part of the sphere
        self.style = st.style_loss_for(max(h, w)) if cfg.style_weight > 0 else None
        self.content = content
        self.want_content = cfg.content_weight > 0
        self.layers = list(dict.fromkeys([*(st.style_layers if self.style else ()),
                                          *(st.content_layers if self.want_content else ())]))
        per = max(1, st.batch_pixels // (self.face * self.face))
        n = len(self.views)
        # Faces over the tile size go one by one, each through tiles (``tiling``): memory stays bounded.
        self.tiled = st.tiled(self.face, self.face, view=True)
        if self.tiled:
            per = 1
            self.core = st.tile_core()
            self.strides = {k: st.encoder.taps[k].stride for k in self.layers}
        # Slices, not lists: indexing a CUDA tensor with a Python list copies the index to the GPU
        # and waits for it, once per chunk and iteration.
        self.chunks = [slice(i, min(n, i + per)) for i in range(0, n, per)]
        self._content_in = self.grid_lat.project(content)                 # what the variable can hold
        self.yaw = None
        self.set_yaw(yaw)

    # -- weights --------------------------------------------------------------------------------
    def _weights(self, hw: tuple[int, int], kind: str) -> Tensor:
        """Per-view pixel weights at a feature resolution: a distribution per view ("style") or over
        all views ("content")."""
        key = (hw, kind)
        if key not in self._wcache:
            w = torch.nn.functional.adaptive_avg_pool2d(self.pix, hw)
            w = w / (w.sum((1, 2, 3), keepdim=True) if kind == "style" else w.sum())
            self._wcache[key] = w
        return self._wcache[key]

    # -- rotation -------------------------------------------------------------------------------
    def set_yaw(self, yaw: float) -> None:
        """Rotate the view set by ``yaw`` radians about the vertical axis; new content targets."""
        if self.yaw == yaw:
            return
        self.yaw = yaw
        self.grid = S.lonlat_to_grid(self.lon, self.lat, yaw)
        self.targets = []
        if self.want_content:
            with torch.no_grad():
                for ch in self.chunks:
                    v = S.sample_view(self._content_in, self.grid[ch])
                    if self.tiled:
                        grid = tile_grid(self.face, self.face, self.core, self.st.cfg.tile_halo)
                        self.targets.append(tiled_features(self.st.encoder, v, list(self.st.content_layers),
                                                           self.strides, grid))
                    else:
                        self.targets.append(self.st.encoder(v, self.st.content_layers))
            msq = {}
            for k in self.st.content_layers:
                tot = 0.0
                for ch, t in zip(self.chunks, self.targets):
                    wc = self._weights(tuple(t[k].shape[-2:]), "content")[ch]
                    tot = tot + (wc * t[k].pow(2).mean(1, keepdim=True)).sum()
                msq[k] = tot.clamp_min(1e-8)
            self.content_msq = msq

    # -- loss -----------------------------------------------------------------------------------
    def chunk_loss(self, xf: Tensor, ci: int) -> Tensor:
        ch = self.chunks[ci]
        cfg = self.st.cfg
        views = S.sample_view(xf, self.grid[ch])
        feats = self.st.encoder(views, self.layers)
        loss = xf.new_zeros(())
        if self.style is not None:
            share = self.share[ch]
            s = 0.0
            for k, lw in self.style.weights.items():
                f = feats[k]
                h, w = f.shape[-2:]
                g = weighted_gram(f, self._weights((h, w), "style")[ch])    # solid-angle weighted
                t = self.style.grams[k]
                per_view = (g - t).pow(2).sum((1, 2)) / t.pow(2).sum().clamp_min(1e-8)
                s = s + lw * (share * per_view).sum()
            loss = loss + cfg.style_weight * s
        if self.want_content:
            c_loss = 0.0
            for k in self.st.content_layers:
                f, t = feats[k], self.targets[ci][k]
                wc = self._weights(tuple(f.shape[-2:]), "content")[ch]
                c_loss = c_loss + (wc * (f - t).pow(2).mean(1, keepdim=True)).sum() / self.content_msq[k]
            loss = loss + cfg.content_weight * c_loss / len(self.st.content_layers)
        return loss

    def tiled_chunk(self, xd: Tensor, ci: int) -> tuple[Tensor, Tensor]:
        """(loss, gradient on the equirect ``xd``) of one view too big for one encoder pass: the view
        is sampled, its loss and gradient come tile by tile, then go back through the sampling."""
        ch = self.chunks[ci]
        cfg = self.st.cfg
        f = self.face

        def maps(layers, kind):
            return {k: self._weights((-(-f // self.strides[k]),) * 2, kind)[ch] for k in layers}

        with torch.enable_grad():
            view = S.sample_view(xd, self.grid[ch])
        style_w = cfg.style_weight * self.share[ch.start] if self.style is not None else 0.0
        loss = TiledLoss(self.st.encoder, self.strides, self.style, style_w,
                         self.targets[ci] if self.want_content else None, cfg.content_weight, self.core,
                         cfg.tile_halo, self.gen,
                         gram_weights=maps(self.st.style_layers, "style") if self.style is not None else None,
                         content_weights=maps(self.st.content_layers, "content") if self.want_content else None,
                         content_msq=self.content_msq if self.want_content else None)
        value, gview = loss(view.detach())
        (g,) = torch.autograd.grad(view, xd, grad_outputs=gview)
        return value, g

    def tv(self, x: Tensor) -> Tensor:
        """Total variation, circular in longitude, each row weighted by its area (cos latitude)."""
        a = self.row_area
        dx = ((x - x.roll(1, dims=-1)).abs() * a).sum() / (a.sum() * x.shape[1] * x.shape[-1])
        ay = (a[..., 1:, :] + a[..., :-1, :]) / 2
        dy = ((x[..., 1:, :] - x[..., :-1, :]).abs() * ay).sum() / (ay.sum() * x.shape[1] * x.shape[-1])
        return dx + dy

    def picture_loss(self, pic: Tensor) -> tuple[Tensor, Tensor]:
        """(loss, its gradient with respect to the equirect ``pic``), view batch by view batch."""
        cfg = self.st.cfg
        with torch.enable_grad():
            xd = pic.detach().requires_grad_(True)
            total = pic.new_zeros(())
            gacc = torch.zeros_like(xd)
            for ci in range(len(self.chunks)):
                if self.tiled:
                    loss, g = self.tiled_chunk(xd, ci)
                else:
                    loss = self.chunk_loss(xd, ci)
                    (g,) = torch.autograd.grad(loss, xd)
                gacc += g
                total = total + loss.detach()
            dense = xd.new_zeros(())
            if cfg.tv_weight > 0:
                dense = dense + cfg.tv_weight * self.tv(xd)
            if self.extra is not None:
                dense = dense + self.extra(xd)
            if dense.requires_grad:
                (g,) = torch.autograd.grad(dense, xd)
                gacc += g
            total = total + dense.detach()
        return total, gacc

    def view_loss(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Loss of an equirect picture ``x`` (1×3×H×W) and its gradient (evaluation, tests)."""
        return self.picture_loss(x)

    def __call__(self, y: Tensor) -> Tensor:
        """Loss of the packed variable ``y`` (``LatitudeGrid``), gradient attached."""
        with torch.enable_grad():
            leaf = y.detach().requires_grad_(True)
            pic = self.grid_lat.unpack(leaf)
            value, gpic = self.picture_loss(pic)
            (grad,) = torch.autograd.grad(pic, leaf, grad_outputs=gpic)
        return with_grad(y, value, grad.contiguous())


class PanoramaStylizer(Stylizer):
    """A :class:`Stylizer` whose pictures are full-sphere equirectangular images.

    Same interface as ``Stylizer`` (the video pipeline uses either): ``stylize(content_uint8, seed,
    index)`` and ``optimize_at(content, init, iterations, extra, ...)``; ``wrap_x`` is always on.
    ``resize`` is circular in longitude (use it instead of ``images.resize`` for equirect frames).
    """

    wrap_x = True

    def __init__(self, cfg: StyleConfig, styles: Sequence[np.ndarray], on_event: Sink = null_sink,
                 device: torch.device | None = None, pano: PanoramaConfig = PanoramaConfig(),
                 rotate_every: int | None = None, batch_pixels: int | None = None):
        super().__init__(cfg, styles, on_event, device)
        if pano.views not in (6, 10, 14, 18):
            raise BadInput(f"--views {pano.views}: choose 6 (cube faces), 10, 14 or 18")
        if pano.face_size and not 32 <= pano.face_size <= 4096:
            raise BadInput(f"--face-size {pano.face_size}: must be 0 (automatic) or between 32 and 4096")
        self.pano = pano
        self.views = S.view_set(pano.views)
        # L-BFGS builds curvature from consecutive gradients: rotating every iteration feeds it noise.
        self.rotate_every = rotate_every or (1 if cfg.optimizer == "adam" else 4)
        cuda = self.device.type == "cuda"
        self.batch_pixels = batch_pixels or (8 << 20 if cuda else 1 << 20)
        self._calls = 0
        self._geometry: dict = {}

    def geometry(self, h: int, w: int, device) -> tuple:
        """View longitudes/latitudes, the row prefilter, the pixel weights (N×1×F×F, summing to 4π)
        and a cache for their pooled versions: computed once per equirect size (video frames reuse them)."""
        face = self.face_size_for(w)
        key = (h, w, face, str(device))
        if key not in self._geometry:
            fov = self.views[0].fov
            lon, lat = (t.to(device) for t in S.views_lonlat(self.views, face))
            grid = S.LatitudeGrid.for_views(h, w, face, fov)
            pix = S.view_weights(self.views, face).to(device)
            # Keep the last two sizes (a video's frames and their half-size reveal pass): bounded memory.
            self._geometry = {**dict(list(self._geometry.items())[-1:]), key: (lon, lat, grid, pix, {})}
        return self._geometry[key]

    def face_size_for(self, width: int) -> int:
        if self.pano.face_size:
            return self.pano.face_size
        return S.default_face_size(width, self.views[0].fov)

    @staticmethod
    def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
        return S.resize_equirect(x, size)

    def objective(self, content: Tensor, extra: Extra | None = None, wrap_x: bool = True,
                  yaw: float = 0.0, gen: torch.Generator | None = None) -> SphereObjective:
        return SphereObjective(self, content, extra, yaw, gen)

    def optimize_at(self, content: Tensor, init: Tensor, iterations: int, extra: Extra | None = None,
                    on_step=None, task: str = "iterations", wrap_x: bool = True, seed: int | None = None,
                    index: int | None = None, gen: torch.Generator | None = None) -> tuple[Tensor, int]:
        """One optimization at the size of ``content`` (``1×3×H×W`` equirect). The view rotations are
        drawn from ``gen``, else from a generator seeded with (``seed`` or cfg.seed, ``index``); pass
        the frame index for a resumable video."""
        if gen is None:
            if index is None:
                index, self._calls = self._calls, self._calls + 1
            gen = generator(self.cfg.seed if seed is None else seed, index)
        obj = self.objective(content, extra, yaw=float(torch.rand((), generator=gen)) * 2 * math.pi, gen=gen)
        every = self.rotate_every
        grid = obj.grid_lat

        def step_packed(i: int, y: Tensor) -> None:
            if i % every == 0:
                obj.set_yaw(float(torch.rand((), generator=gen)) * 2 * math.pi)
            if on_step is not None:
                on_step(i, grid.unpack(y).clamp(0, 1))

        # a rotation bumps the loss: give early stopping a few rotations of patience
        cfg = replace(self.cfg, early_stop_patience=max(self.cfg.early_stop_patience, 4 * every))
        y, used, _ = optimize(grid.pack(init), obj, iterations, cfg, self.on_event, task, step_packed)
        return grid.unpack(y).clamp(0, 1), used

    def stylize(self, content: np.ndarray, seed: int | None = None, index: int = 0,
                on_step: Callable[[int, int, Tensor], None] | None = None,
                iterations: int | None = None) -> tuple[np.ndarray, dict]:
        """Coarse-to-fine 360 stylization of one uint8 equirect. Returns (uint8 result, stats)."""
        seed = self.cfg.seed if seed is None else seed
        full = to_tensor(content, self.device)
        sizes = self.pyramid(*content.shape[:2])
        gen = generator(seed, index)
        x, used, faces = None, [], []
        for level, size in enumerate(sizes):
            c = S.resize_equirect(full, size)
            x = self.initial(c, seed, index) if x is None else S.resize_equirect(x, size).clamp(0, 1)
            its = (iterations or self.cfg.iterations) if level == len(sizes) - 1 else self.cfg.coarse_iterations
            step = (lambda i, xx, lv=level: on_step(lv, i, xx)) if on_step else None
            faces.append(self.face_size_for(size[1]))
            x, n = self.optimize_at(c, x, its, on_step=step, gen=gen,
                                    task=f"scale {level + 1}/{len(sizes)} {size[1]}x{size[0]} "
                                         f"({len(self.views)} views of {faces[-1]}px)")
            used.append(n)
        out = to_uint8(x)
        if self.cfg.preserve_colors:
            out = keep_colors(out, content)
        return out, {"projection": "equirect", "sizes": [list(s) for s in sizes], "iterations": used,
                     "views": len(self.views), "view_fov": round(self.views[0].fov, 2), "face_sizes": faces,
                     "rotate_every": self.rotate_every, "seam_ratio": round(S.seam_ratio(out), 4)}


# -- detection and metadata ------------------------------------------------------------------------
def _gpano_fields(xmp: bytes) -> dict[str, str]:
    """GPano properties of an XMP packet, attribute (``GPano:X="v"``) or element form."""
    text = xmp.decode("utf-8", "replace")
    out = {k: v for k, v in re.findall(r'GPano:(\w+)\s*=\s*["\']([^"\']*)["\']', text)}
    out.update({k: v.strip() for k, v in re.findall(r"<GPano:(\w+)>([^<]*)</GPano:\1>", text)})
    return out


def gpano_projection(xmp: bytes | None) -> str | None:
    """``GPano:ProjectionType`` of an XMP packet (lower case), or None."""
    if not xmp:
        return None
    p = _gpano_fields(xmp).get("ProjectionType")
    return p.lower() if p else None


def _gpano_partial(xmp: bytes) -> bool:
    """True when the GPano crop says the image does not cover the full 360° of longitude."""
    f = _gpano_fields(xmp)
    try:
        return int(float(f["CroppedAreaImageWidthPixels"])) < int(float(f["FullPanoWidthPixels"]))
    except (KeyError, ValueError):
        return False


def projection_reason(source: str | Path | bytes | None, w: int, h: int, mode: str = "auto") -> tuple[str, str]:
    """(``"equirect"`` or ``"flat"``, why). ``source`` is an image path or its XMP packet."""
    if mode not in PROJECTIONS:
        raise BadInput(f"--projection {mode!r}: choose one of {', '.join(PROJECTIONS)}")
    if mode == "flat":
        return "flat", "--projection flat"
    if mode == "equirect":
        why = "--projection equirect"
        if not S.is_equirect_shape(w, h):
            why += f" (note: {w}x{h} is not 2:1; treated as a full sphere)"
        return "equirect", why
    xmp = source if isinstance(source, (bytes, bytearray)) else None
    if isinstance(source, (str, Path)):
        try:
            xmp = read_xmp(source)
        except Exception:  # unreadable metadata is not a reason to fail: fall back to the shape
            xmp = None
    proj = gpano_projection(xmp)
    if proj == "equirectangular":
        if _gpano_partial(xmp):
            return "flat", "XMP GPano says equirectangular but not a full 360° (cropped): flat"
        return "equirect", "XMP GPano:ProjectionType=equirectangular"
    if proj:
        return "flat", f"XMP GPano:ProjectionType={proj}"
    if S.is_equirect_shape(w, h):
        return "equirect", f"{w}x{h} is 2:1 (--projection auto)"
    return "flat", f"{w}x{h} is not 2:1 and has no GPano metadata"


def detect_projection(source: str | Path | bytes | None, w: int, h: int, mode: str = "auto") -> str:
    """``"equirect"`` or ``"flat"``: the override, else XMP GPano, else a 2:1 frame (auto)."""
    return projection_reason(source, w, h, mode)[0]


_PX_X = ("CroppedAreaImageWidthPixels", "FullPanoWidthPixels", "CroppedAreaLeftPixels")
_PX_Y = ("CroppedAreaImageHeightPixels", "FullPanoHeightPixels", "CroppedAreaTopPixels")


def minimal_gpano_xmp(w: int, h: int) -> bytes:
    """A GPano XMP packet saying: full-sphere equirectangular, ``w×h``."""
    attrs = {"ProjectionType": "equirectangular", "UsePanoramaViewer": "True",
             "CroppedAreaImageWidthPixels": w, "CroppedAreaImageHeightPixels": h,
             "FullPanoWidthPixels": w, "FullPanoHeightPixels": h,
             "CroppedAreaLeftPixels": 0, "CroppedAreaTopPixels": 0}
    body = "\n   ".join(f'GPano:{k}="{v}"' for k, v in attrs.items())
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="stylevid">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            f'  <rdf:Description rdf:about="" xmlns:GPano="{GPANO_NS}"\n   {body}/>\n'
            ' </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>').encode("utf-8")


def gpano_xmp(xmp: bytes | None, w: int, h: int) -> bytes:
    """The XMP to write with a ``w×h`` output: the input's packet with its GPano pixel sizes scaled
    to the output (everything else kept), or a minimal GPano packet when it has none."""
    if not xmp or gpano_projection(xmp) is None or len(xmp) > 60000:
        return minimal_gpano_xmp(w, h)
    f = _gpano_fields(xmp)
    try:
        sx = w / float(f.get("CroppedAreaImageWidthPixels") or f.get("FullPanoWidthPixels"))
        sy = h / float(f.get("CroppedAreaImageHeightPixels") or f.get("FullPanoHeightPixels"))
    except (TypeError, ValueError, ZeroDivisionError):
        return minimal_gpano_xmp(w, h)
    text = xmp.decode("utf-8", "replace")
    for names, s in ((_PX_X, sx), (_PX_Y, sy)):
        for name in names:
            def sub(m, s=s):
                return f"{m.group(1)}{int(round(float(m.group(2)) * s))}{m.group(3)}"
            text = re.sub(rf'(GPano:{name}\s*=\s*["\'])([-\d.]+)(["\'])', sub, text)
            text = re.sub(rf"(<GPano:{name}>)\s*([-\d.]+)\s*(</GPano:{name}>)", sub, text)
    return text.encode("utf-8")


def export_cubemap(equi: np.ndarray | Tensor, folder: str | Path, size: int | None = None, ext: str = ".png",
                   overwrite: bool = False) -> list[Path]:
    """Write the six 90° cube faces of an equirect (uint8 H×W×3 or 1×3×H×W) as ``front``, ``right``,
    ``back``, ``left``, ``up``, ``down`` images in ``folder`` (created if missing). ``up`` has its top
    edge towards the back, ``down`` towards the front (the usual skybox layout)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"--export-cubemap {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    x = to_tensor(equi) if isinstance(equi, np.ndarray) else equi.detach().float().cpu()
    size = size or S.default_face_size(x.shape[-1], 90.0)
    faces = S.equirect_to_cubemap(x, size)
    paths = [check_output(folder / f"{name}{ext}", [], overwrite) for name in faces]
    for p, face in zip(paths, faces.values()):
        save_image(to_uint8(face), p)
    return paths


def stylize_panorama(content: str | Path, styles: str | Path | Sequence[str | Path], out: str | Path | None = None,
                     cfg: StyleConfig = StyleConfig(), pano: PanoramaConfig = PanoramaConfig(),
                     overwrite: bool = False, on_event: Sink = null_sink, export_cubemap_dir: str | Path | None = None,
                     **overrides) -> Path:
    """``stylize_image`` with 360 awareness: detects the projection (``pano.projection``), runs the
    panorama stylizer or the flat one, keeps/writes the XMP GPano block, optionally exports the cube
    faces, and records the mode and the output's seam ratio in the sidecar. Returns the output path."""
    t0 = time.perf_counter()
    cfg = replace(cfg, **overrides) if overrides else cfg
    cpath, spaths = check_inputs(content, styles, cfg)
    if pano.projection not in PROJECTIONS:
        raise BadInput(f"--projection {pano.projection!r}: choose one of {', '.join(PROJECTIONS)}")
    out = Path(out) if out else default_output(cpath, spaths)
    check_output(out, [cpath, *spaths], overwrite)
    image, declared = load_photo(cpath, pano.stereo, on_event)
    h, w = image.shape[:2]
    # A stereo picture's projection is its eyes' (a top-bottom 360 photo is 1:1, each eye 2:1).
    stereo, (eye_w, eye_h) = photo_stereo(image, pano.stereo, cpath, on_event, declared=declared)
    try:
        xmp = read_xmp(cpath)
    except Exception:
        xmp = None
    mode, why = projection_reason(xmp, eye_w, eye_h, pano.projection)
    info(on_event, f"projection: {mode} ({why})")
    if export_cubemap_dir is not None and (mode != "equirect" or stereo):
        warn(on_event, "--export-cubemap: the input is not treated as one equirectangular picture; no cube map written")
        export_cubemap_dir = None
    style_images = [load_image(s, "style image") for s in spaths]
    make: Callable[[StyleConfig], Stylizer] = (
        (lambda c: PanoramaStylizer(c, style_images, on_event, pano=pano)) if mode == "equirect"
        else (lambda c: Stylizer(c, style_images, on_event)))
    stylizer = None if stereo else make(cfg)     # a stereo pair makes one per eye size, below
    info(on_event, f"{cpath.name}: {w}x{h} → long edge {cfg.size} on {pick_device(cfg.device)} with {cfg.encoder}"
                   + (f", 360 mode: {len(stylizer.views)} views" if mode == "equirect" and stylizer else "")
                   + (f", stereo ({stereo}) eye by eye" if stereo else ""))

    def save_intermediate(level: int, i: int, x: Tensor) -> None:
        if cfg.save_every and i % cfg.save_every == 0:
            save_image(to_uint8(x), out.with_name(f"{out.stem}.s{level + 1}.{i:04d}{out.suffix}"))

    t1 = time.perf_counter()
    if stylizer is None:
        result, stats = stylize_stereo(image, stereo, cfg, make, mode == "equirect", on_event)
    else:
        result, stats = stylizer.stylize(image, on_step=save_intermediate if cfg.save_every else None)
    t2 = time.perf_counter()
    stats.setdefault("projection", mode)
    stats.setdefault("stereo", stereo)
    stats["projection_reason"] = why
    stats["seam_ratio"] = round(_seam_ratio(result, stereo), 4)
    stats["content_seam_ratio"] = round(_seam_ratio(image, stereo), 4)
    # A stereo pair stacked in one picture is not one equirectangular picture: GPano is only kept
    # (updated) where the input had it, never added for it (a viewer would show both eyes as one).
    keep = (mode == "equirect" and not stereo) or gpano_projection(xmp) is not None
    out_xmp = gpano_xmp(xmp, result.shape[1], result.shape[0]) if keep else None
    save_photo(result, out, stereo, out_xmp)
    info(on_event, f"{mode} mode ran; seam ratio {stats['seam_ratio']:.2f} (input {stats['content_seam_ratio']:.2f})"
                   + ("; XMP GPano written" if out_xmp else ""))
    cube = None
    if export_cubemap_dir is not None and mode == "equirect":
        cube = [str(p) for p in export_cubemap(result, export_cubemap_dir, overwrite=overwrite)]
        info(on_event, f"cube map: 6 faces in {export_cubemap_dir}")
    sidecar(out, {"content": str(cpath), "styles": [str(s) for s in spaths], "output": str(out),
                  "config": to_dict(cfg), "panorama": to_dict(pano), "device": str(pick_device(cfg.device)), **stats,
                  "xmp_gpano": bool(out_xmp), "cubemap": cube,
                  "seconds": {"setup": round(t1 - t0, 3), "optimize": round(t2 - t1, 3),
                              "total": round(time.perf_counter() - t0, 3)}})
    return out


def load_photo(path: Path, mode: str, on_event: Sink = null_sink) -> tuple[np.ndarray, str]:
    """The picture to paint and the stereo layout its file declares: an MPO stereo pair (a 3D
    camera's) is joined side by side (top-bottom with ``--stereo top-bottom``; with ``none`` the
    left eye alone, with a warning); any other photo is itself, declaring nothing (an animation's
    first picture, with a warning)."""
    pair = stereo_pair(path)
    if pair is None:
        picture = load_image(path, "content image")
        if (n := frame_count(path)) > 1:
            warn(on_event, f"{path.name}: an animation of {n} pictures: only the first is painted here; "
                           f"`stylevid video` paints every one")
        return picture, ""
    if mode == "none":
        warn(on_event, f"{path.name}: an MPO stereo pair; with --stereo none only its left eye is painted")
        return pair[0], ""
    layout = "top-bottom" if mode == "top-bottom" else "left-right"
    return Eyes(layout).join(*pair), layout


def save_photo(result: np.ndarray, out: Path, stereo: str, xmp: bytes | None = None) -> None:
    """``save_image``, with a stereo pair written as its two eyes where ``out`` is an .mpo."""
    save_image(result, out, xmp=xmp, eyes=Eyes(stereo).split(result) if stereo else None)


def photo_stereo(picture: np.ndarray, mode: str, path: Path, on_event: Sink = null_sink,
                 verb: str = "painted", declared: str = "") -> tuple[str, tuple[int, int]]:
    """The stereo layout ``picture`` is painted (or dreamed: ``verb``) with, "" for one picture
    (:func:`stereo.choose` on ``mode``, the --stereo option), and the (width, height) of one eye (the
    whole picture's when ""). Says which. A layout asked for that does not split the picture into two
    equal eyes is refused; a detected one is then painted as one picture, with a warning."""
    h, w = picture.shape[:2]
    layout, why = choose_stereo(mode, [picture], declared)
    if not layout:
        return "", (w, h)
    eyes = Eyes(layout)
    if not eyes.splits_evenly(w, h):
        if mode == layout:
            raise BadInput(f"{path}: --stereo {layout}: {w}x{h} does not split into two equal eyes")
        warn(on_event, f"{path.name}: looks like a stereo pair ({layout}, {why}) but {w}x{h} does not split "
                       f"into two equal eyes: {verb} as one picture")
        return "", (w, h)
    info(on_event, f"{path.name}: stereo ({layout}: {why}): each eye is {verb} on its own, the right eye from "
                   f"the left one warped by the disparity flow between them" + NOT_STEREO * (mode == "auto"))
    return layout, eyes.eye_size(w, h)


def stylize_stereo(image: np.ndarray, layout: str, cfg: StyleConfig, make: Callable[[StyleConfig], Stylizer],
                   wrap_x: bool, on_event: Sink = null_sink, stereo_weight: float | None = None
                   ) -> tuple[np.ndarray, dict]:
    """A stereo picture (both eyes in one, ``layout`` top-bottom or left-right) painted eye by eye,
    as ``stylevid video`` paints a stereo frame (:class:`~.video.StereoPainter`): the left eye like a
    photo, the right eye from the painted left eye warped by the disparity flow between the eyes and
    held there by the temporal loss where that flow is reliable, so that the eyes match. ``make``
    builds the stylizer for an eye's config (its size is the eye's long edge); each eye gets
    ``cfg.iterations`` at its final size. ``stereo_weight``: VideoConfig's unless given."""
    from ..config import VideoConfig
    from .video import StereoPainter, StylePainter

    eyes = Eyes(layout)
    h, w = fit_size(*image.shape[:2], cfg.size)             # the whole picture's working size
    size = eyes.eye_size(w, h)[::-1]                          # (height, width) of one eye
    rs = S.resize_equirect if wrap_x else _plain_resize      # each eye is a whole sphere of its own
    frame = eyes.join(*(to_uint8(rs(to_tensor(e), size)) for e in eyes.split(image)))
    vcfg = VideoConfig(first_iterations=cfg.iterations, iterations=cfg.iterations)
    if stereo_weight is not None:
        vcfg = replace(vcfg, stereo_weight=stereo_weight)
    left = eyes.split(frame)[0]

    def make_inner(size: int) -> StylePainter:
        return StylePainter(make(replace(cfg, size=size)), cfg, vcfg, wrap_x)

    painter = StereoPainter(make_inner, layout, vcfg, wrap_x, pick_device(cfg.device), {})
    result, used = painter.cold(frame, 0)
    info(on_event, f"stereo ({layout}): two eyes of {left.shape[1]}x{left.shape[0]} painted, {used} iterations")
    return result, {"iterations": used, "stereo": layout, "eye_size": [left.shape[1], left.shape[0]]}


def _seam_ratio(picture: np.ndarray, stereo: str) -> float:
    """The seam ratio of a picture, or the mean over the eyes of a stereo one."""
    if not stereo:
        return S.seam_ratio(picture)
    return float(np.mean([S.seam_ratio(e) for e in Eyes(stereo).split(picture)]))


__all__ = ["stylize_stereo", "PanoramaStylizer", "SphereObjective", "detect_projection", "projection_reason", "gpano_projection",
           "gpano_xmp", "minimal_gpano_xmp", "export_cubemap", "stylize_panorama"]
