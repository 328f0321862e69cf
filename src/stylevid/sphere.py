"""Equirectangular ↔ sphere ↔ perspective-view math for 360° images (L1: torch and numpy only).

Conventions (everywhere in stylevid):

- Directions are unit vectors ``(x, y, z)``: ``+z`` forward (longitude 0, the centre column of the
  equirectangular image), ``+x`` right (longitude +90°), ``+y`` up (latitude +90°, the top row).
  ``lon = atan2(x, z)`` in [-π, π), ``lat = asin(y)`` in [-π/2, π/2].
- An equirectangular image ``B×C×H×W``: column ``j`` is centred at ``lon = ((j + ½)/W)·2π − π`` and
  row ``i`` at ``lat = π/2 − ((i + ½)/H)·π``. Its ``grid_sample`` coordinates (``align_corners=False``)
  are therefore ``gx = lon/π``, ``gy = −lat/(π/2)``: the *grids* below are in these coordinates.
- A perspective view ``(yaw, pitch, fov)``, all in degrees: the camera looks at longitude ``yaw`` and
  latitude ``pitch``; ``fov`` is the full horizontal (and vertical, views are square) field of view.
  View pixel ``(i, j)`` of an ``S×S`` view has ``u = (j + ½)/S·2 − 1`` (right) and
  ``v = (i + ½)/S·2 − 1`` (down); its ray is ``(u·t, −v·t, 1)`` rotated by pitch then yaw,
  ``t = tan(fov/2)``. The "up" face (pitch 90) has its top edge towards the back.

Sampling is circular in longitude and reflects across the poles (:func:`circular_pad`), so a view
straddling the ±180° seam or a pole is continuous, and ``grid_sample`` keeps it differentiable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# Six cube faces: name → (yaw, pitch) in degrees.
CUBE_FACES: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0), "right": (90.0, 0.0), "back": (180.0, 0.0), "left": (-90.0, 0.0),
    "up": (0.0, 90.0), "down": (0.0, -90.0),
}
_CORNER_PITCH = math.degrees(math.atan(1 / math.sqrt(2)))  # 35.26°: a cube corner's latitude
PAD = 2  # columns/rows of circular (pole-reflected) padding used when sampling


# -- equirect geometry -----------------------------------------------------------------------------
def is_equirect_shape(w: int, h: int) -> bool:
    """True for a 2:1 frame (the shape of a full-sphere equirectangular image), ±1 px or ±0.2 %."""
    return h >= 8 and abs(int(w) - 2 * int(h)) <= max(1, int(w) // 500)


def equirect_lonlat(h: int, w: int, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Longitude (1×W) and latitude (H×1) of the pixel centres, radians."""
    lon = ((torch.arange(w, device=device, dtype=dtype) + 0.5) / w * 2 - 1) * math.pi
    lat = (0.5 - (torch.arange(h, device=device, dtype=dtype) + 0.5) / h) * math.pi
    return lon.view(1, w), lat.view(h, 1)


def lonlat_to_dirs(lon: Tensor, lat: Tensor) -> Tensor:
    """Unit directions ``...×3`` from broadcastable longitude and latitude (radians)."""
    lon, lat = torch.broadcast_tensors(lon, lat)
    c = torch.cos(lat)
    return torch.stack([c * torch.sin(lon), torch.sin(lat), c * torch.cos(lon)], dim=-1)


def dirs_to_lonlat(d: Tensor) -> tuple[Tensor, Tensor]:
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    lon = torch.atan2(d[..., 0], d[..., 2])
    lat = torch.asin(d[..., 1].clamp(-1, 1))
    return lon, lat


def lonlat_to_grid(lon: Tensor, lat: Tensor, yaw_offset: float = 0.0) -> Tensor:
    """``grid_sample`` coordinates ``...×2`` of longitudes/latitudes (longitude taken modulo 2π).

    ``yaw_offset`` (radians) rotates the sphere about its vertical axis: it is added to longitude.
    """
    lon = torch.remainder(lon + (yaw_offset + math.pi), 2 * math.pi) - math.pi
    return torch.stack([lon / math.pi, -lat / (math.pi / 2)], dim=-1)


def rotation(yaw: float, pitch: float, dtype=torch.float64) -> Tensor:
    """3×3 camera-to-world rotation of a view looking at (yaw, pitch) degrees: ``R_yaw · R_pitch``."""
    y, p = math.radians(yaw), math.radians(pitch)
    ry = torch.tensor([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]], dtype=dtype)
    rp = torch.tensor([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]], dtype=dtype)
    return ry @ rp


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def view_uv(size: int | Sequence[int], device=None, dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """Normalized view-plane coordinates ``u`` (1×W, right) and ``v`` (H×1, down) of pixel centres."""
    h, w = _size2(size)
    u = ((torch.arange(w, device=device, dtype=dtype) + 0.5) / w * 2 - 1).view(1, w)
    v = ((torch.arange(h, device=device, dtype=dtype) + 0.5) / h * 2 - 1).view(h, 1)
    return u, v


def view_dirs(yaw: float, pitch: float, fov: float, size: int | Sequence[int], device=None) -> Tensor:
    """World directions ``H×W×3`` (float64) of a perspective view's pixel centres."""
    h, w = _size2(size)
    t = math.tan(math.radians(fov) / 2)
    u, v = view_uv((h, w), device)
    ray = torch.stack(torch.broadcast_tensors(u * t, -v * t * h / w, torch.ones_like(u * v)), dim=-1)
    ray = ray / ray.norm(dim=-1, keepdim=True)
    return ray @ rotation(yaw, pitch).to(ray.device).T


def perspective_grid(yaw: float, pitch: float, fov: float, size: int | Sequence[int], device=None) -> Tensor:
    """``1×H×W×2`` grid (equirect ``grid_sample`` coordinates) of a perspective view; see :func:`sample_view`."""
    lon, lat = dirs_to_lonlat(view_dirs(yaw, pitch, fov, size, device))
    return lonlat_to_grid(lon, lat).float().unsqueeze(0)


# -- sampling --------------------------------------------------------------------------------------
def circular_pad_x(x: Tensor, pad: int) -> Tensor:
    """Pad ``…×W`` circularly in x by ``pad`` columns on each side (longitude wraps)."""
    if pad <= 0:
        return x
    if pad > x.shape[-1]:
        reps = -(-pad // x.shape[-1])
        x_rep = torch.cat([x] * (2 * reps + 1), dim=-1)
        start = reps * x.shape[-1] - pad
        return x_rep[..., start:start + x.shape[-1] + 2 * pad]
    return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)


def pole_pad_y(x: Tensor, pad: int) -> Tensor:
    """Pad ``…×H×W`` by ``pad`` rows across each pole: the row beyond the pole is the row below it
    seen from the opposite longitude (flipped, rolled by W/2)."""
    if pad <= 0:
        return x
    w = x.shape[-1]
    top = x[..., :pad, :].flip(-2).roll(w // 2, dims=-1)
    bottom = x[..., -pad:, :].flip(-2).roll(w // 2, dims=-1)
    return torch.cat([top, x, bottom], dim=-2)


def circular_pad(x: Tensor, pad: int = PAD) -> Tensor:
    """Circular in longitude, reflected across the poles: the padding a sphere sampler needs."""
    return circular_pad_x(pole_pad_y(x, pad), pad)


def _to_padded(grid: Tensor, h: int, w: int, pad: int) -> Tensor:
    sx = w / (w + 2 * pad)
    sy = h / (h + 2 * pad)
    return torch.stack([grid[..., 0] * sx, grid[..., 1] * sy], dim=-1)


def sample_view(equi: Tensor, grid: Tensor, mode: str = "bilinear") -> Tensor:
    """Sample views from an equirect ``1×C×H×W`` (or ``B×C×H×W`` with ``B`` = views) at ``grid``.

    ``grid`` is ``N×h×w×2`` in equirect coordinates (``gx = lon/π``, ``gy = −2·lat/π``); returns
    ``N×C×h×w``. Differentiable with respect to ``equi``. Longitude is circular and the poles are
    continuous (:func:`circular_pad`); a 1-image equirect is sampled once for all N views, without
    copying it N times.
    """
    h, w = equi.shape[-2:]
    g = _to_padded(grid, h, w, PAD).to(equi.dtype)
    src = circular_pad(equi, PAD)
    n, gh, gw, _ = g.shape
    if equi.shape[0] == 1 and n > 1:
        out = F.grid_sample(src, g.reshape(1, n * gh, gw, 2), mode=mode, padding_mode="border",
                            align_corners=False)
        return out.reshape(equi.shape[1], n, gh, gw).transpose(0, 1).contiguous()
    return F.grid_sample(src, g, mode=mode, padding_mode="border", align_corners=False)


def resize_equirect(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Antialiased bilinear resize that treats longitude as circular (no seam from edge clamping)."""
    h0, w0 = x.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h0, w0) == (h, w):
        return x
    g = math.gcd(w0, w)
    m_in, m_out = w0 // g, w // g            # a margin of m_in input columns is exactly m_out output ones
    k = max(1, -(-max(8, 2 * -(-w0 // w)) // m_in))
    if k * m_in > w0:                       # no small exact margin: tile the whole image
        k, m_in, m_out = 1, w0, w
    pin, pout = k * m_in, k * m_out
    xp = circular_pad_x(x, pin)
    y = F.interpolate(xp, size=(h, w + 2 * pout), mode="bilinear", align_corners=False, antialias=True)
    return y[..., pout:pout + w]


# -- view sets and weights -------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    yaw: float
    pitch: float
    fov: float
    name: str = ""


FEATHER = 0.15  # outer fraction of a view's half-width over which its weight falls to 0


def overlap_fov(feather: float = FEATHER) -> float:
    """Field of view (degrees) at which a cube face's fully weighted inner part still covers 90°."""
    return 2 * math.degrees(math.atan(1.02 / (1 - feather)))


def view_set(n: int = 6, fov: float | None = None) -> list[View]:
    """Overlapping views covering the sphere: 6 cube faces; 10 adds 4 equatorial diagonals (yaw
    45°+k·90°); 14 adds 8 views at the cube corners (yaw 45°+k·90°, pitch ±35.26°); 18 adds both."""
    if n not in (6, 10, 14, 18):
        raise ValueError(f"views must be 6, 10, 14 or 18 (got {n})")
    fov = overlap_fov() if fov is None else fov
    views = [View(y, p, fov, name) for name, (y, p) in CUBE_FACES.items()]
    if n in (10, 18):
        views += [View(45.0 + 90 * k, 0.0, fov, f"eq{k}") for k in range(4)]
    if n in (14, 18):
        views += [View(45.0 + 90 * k, s * _CORNER_PITCH, fov, f"{'n' if s > 0 else 's'}{k}")
                  for s in (1, -1) for k in range(4)]
    return views


def cube_views(fov: float = 90.0) -> list[View]:
    return [View(y, p, fov, name) for name, (y, p) in CUBE_FACES.items()]


def default_face_size(width: int, fov: float, multiple: int = 8) -> int:
    """Face size whose centre pixel density matches the equirect's at the equator (no gradient holes)."""
    s = width * math.tan(math.radians(fov) / 2) / math.pi
    return max(multiple, int(math.ceil(s / multiple)) * multiple)


def _smooth(t: Tensor) -> Tensor:
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


def feather(u: Tensor, v: Tensor, margin: float = FEATHER) -> Tensor:
    """Weight of view-plane points: 1 inside, smoothly 0 at the border (outer ``margin``), 0 outside."""
    m = torch.maximum(u.abs(), v.abs())
    if margin <= 0:
        return (m <= 1).to(u.dtype)
    return _smooth((1 - m) / margin)


def project(d: Tensor, view: View) -> tuple[Tensor, Tensor, Tensor]:
    """View-plane coordinates ``u, v`` of world directions ``…×3`` and whether they are in front."""
    r = rotation(view.yaw, view.pitch).to(d.device, d.dtype)
    c = d @ r                                   # world → camera (R is orthogonal)
    t = math.tan(math.radians(view.fov) / 2)
    z = c[..., 2]
    front = z > 1e-9
    zs = torch.where(front, z, torch.ones_like(z))
    u = c[..., 0] / (zs * t)
    v = -c[..., 1] / (zs * t)
    big = torch.full_like(u, 1e3)
    return torch.where(front, u, big), torch.where(front, v, big), front


def coverage(d: Tensor, views: Sequence[View], margin: float = FEATHER) -> Tensor:
    """Sum over views of their feather weight at directions ``…×3``."""
    total = torch.zeros(d.shape[:-1], dtype=d.dtype, device=d.device)
    for v in views:
        u, vv, _ = project(d, v)
        total = total + feather(u, vv, margin)
    return total


def pixel_solid_angle(size: int | Sequence[int], fov: float, device=None) -> Tensor:
    """Solid angle (steradians) of each pixel of a square-pixel perspective view, ``H×W`` float64."""
    h, w = _size2(size)
    t = math.tan(math.radians(fov) / 2)
    u, v = view_uv((h, w), device)
    a, b = u * t, v * t * h / w
    du = 2 * t / w
    return du * du / (1 + a * a + b * b).pow(1.5)


def view_weights(views: Sequence[View], size: int, margin: float = FEATHER, device=None) -> Tensor:
    """Per-pixel weights ``N×1×S×S``: solid angle × own feather ÷ coverage of that direction.

    Summed over all views and pixels they give the sphere's 4π, every direction counted once, so a
    weighted statistic over the views is a statistic over the sphere (poles count by their area).
    """
    out = []
    u, v = view_uv(size, device)
    for view in views:
        d = view_dirs(view.yaw, view.pitch, view.fov, size, device)
        own = feather(*torch.broadcast_tensors(u, v), margin)
        cov = coverage(d, views, margin).clamp_min(1e-6)
        out.append(pixel_solid_angle(size, view.fov, device) * own / cov)
    return torch.stack(out).unsqueeze(1).float()


def views_lonlat(views: Sequence[View], size: int, device=None) -> tuple[Tensor, Tensor]:
    """Longitude and latitude ``N×S×S`` (float32) of every view pixel."""
    lons, lats = [], []
    for v in views:
        lon, lat = dirs_to_lonlat(view_dirs(v.yaw, v.pitch, v.fov, size, device))
        lons.append(lon)
        lats.append(lat)
    return torch.stack(lons).float(), torch.stack(lats).float()


# -- latitude-adaptive sampling ------------------------------------------------------------------
def row_widths(h: int, w: int, face_size: int, fov: float) -> Tensor:
    """Equirect pixels per view pixel along each row (≥ 1): near the poles many equirect pixels of a
    row fall between two samples of the views that see them."""
    _, lat = equirect_lonlat(h, w, dtype=torch.float64)
    view_step = 2 * math.tan(math.radians(fov) / 2) / face_size          # radians per view pixel (centre)
    eq_step = 2 * math.pi / w * torch.cos(lat.view(-1)).clamp_min(1e-9)  # radians per equirect pixel
    return (view_step / eq_step).clamp(1.0, float(w))


class LatitudeGrid:
    """An equirect whose rows near the poles hold fewer samples: row ``i`` keeps ``W / 2^k`` of them,
    ``2^k ≤`` its :func:`row_widths` (no finer than the views that see it), and is expanded to ``W``
    columns by circular linear interpolation.

    The 360 optimizer's variable lives in this packed form (``1×C×N``): one sample near a pole moves
    the picture as much as one at the equator does, so L-BFGS is as well conditioned at the poles as
    elsewhere, and the picture it makes has no detail along the polar rows that the views cannot see
    (such detail would show as radial streaks in a viewer).
    """

    def __init__(self, h: int, w: int, widths: Tensor):
        self.h, self.w = h, w
        k = torch.floor(torch.log2(widths.double().clamp_min(1.0))).long().clamp(0, max(0, int(math.log2(w))))
        self.levels = []                                            # (row indices, samples per row)
        order = []
        for level in sorted(set(k.tolist())):
            rows = torch.nonzero(k == level).view(-1)
            self.levels.append((rows, max(1, round(w / 2 ** level))))
            order.append(rows)
        order = torch.cat(order)
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(h)
        self.size = sum(len(r) * n for r, n in self.levels)
        self._indices: dict[str, tuple[Tensor, list[Tensor]]] = {}

    def indices(self, device: torch.device) -> tuple[Tensor, list[Tensor]]:
        """``inverse`` and each level's rows on ``device``, moved there once (a copy to the GPU in
        every iteration would wait for it each time)."""
        key = str(device)
        if key not in self._indices:
            self._indices[key] = (self.inverse.to(device), [rows.to(device) for rows, _ in self.levels])
        return self._indices[key]

    @classmethod
    def for_views(cls, h: int, w: int, face_size: int, fov: float) -> "LatitudeGrid":
        return cls(h, w, row_widths(h, w, face_size, fov))

    def pack(self, x: Tensor) -> Tensor:
        """``B×C×H×W`` → ``B×C×N`` (polar rows resampled, antialiased, to fewer samples).

        Set-up only (the initial picture, the content), so on CUDA it runs on the CPU: CUDA's
        antialiased resize fails on the polar rows' shrink of a picture 896 px wide or more (``Too
        much shared memory required``, measured on an H100 at 256:1)."""
        device = x.device
        if device.type == "cuda":
            x = x.cpu()
        _, rows_on = self.indices(x.device)
        parts = []
        for rows, (_, n) in zip(rows_on, self.levels):
            band = x.index_select(-2, rows)
            parts.append(resize_equirect(band, (len(rows), n)).flatten(-2))
        return torch.cat(parts, dim=-1).contiguous().to(device)

    def unpack(self, y: Tensor) -> Tensor:
        """``B×C×N`` → ``B×C×H×W`` (differentiable)."""
        bands, off = [], 0
        for rows, n in self.levels:
            m = len(rows) * n
            band = y[..., off:off + m].reshape(*y.shape[:-1], len(rows), n)
            bands.append(resize_equirect(band, (len(rows), self.w)))
            off += m
        return torch.cat(bands, dim=-2).index_select(-2, self.indices(y.device)[0])

    def project(self, x: Tensor) -> Tensor:
        """The nearest picture this grid can hold: ``unpack(pack(x))``."""
        return self.unpack(self.pack(x))


# -- export / round trip ---------------------------------------------------------------------------
def equirect_to_views(equi: Tensor, views: Sequence[View], size: int) -> Tensor:
    """Sample ``N×C×S×S`` views from a ``1×C×H×W`` equirect."""
    lon, lat = views_lonlat(views, size, equi.device)
    return sample_view(equi, lonlat_to_grid(lon, lat))


def equirect_to_cubemap(equi: Tensor, size: int | None = None) -> dict[str, Tensor]:
    """Six 90° faces ``1×C×S×S`` (front, right, back, left, up, down)."""
    size = size or default_face_size(equi.shape[-1], 90.0)
    faces = equirect_to_views(equi, cube_views(), size)
    return {name: faces[i:i + 1] for i, name in enumerate(CUBE_FACES)}


def equirect_from_views(views_img: Tensor, views: Sequence[View], h: int, w: int,
                        margin: float = FEATHER) -> Tensor:
    """Blend ``N×C×S×S`` perspective views back into a ``1×C×H×W`` equirect (feathered average;
    ``margin=0``: a plain average of the views that see each direction)."""
    lon, lat = equirect_lonlat(h, w, views_img.device, torch.float64)
    d = lonlat_to_dirs(lon, lat)                                   # H×W×3
    acc = torch.zeros(1, views_img.shape[1], h, w, device=views_img.device)
    wsum = torch.zeros(1, 1, h, w, device=views_img.device)
    for i, v in enumerate(views):
        u, vv, _ = project(d, v)
        wt = feather(u, vv, margin) if margin > 0 else ((u.abs() <= 1) & (vv.abs() <= 1)).double()
        grid = torch.stack([u, vv], dim=-1).clamp(-1.5, 1.5).float().unsqueeze(0)
        img = F.grid_sample(views_img[i:i + 1], grid, mode="bilinear", padding_mode="border", align_corners=False)
        acc = acc + img * wt.float()
        wsum = wsum + wt.float()
    return acc / wsum.clamp_min(1e-8)


def cubemap_to_equirect(faces: dict[str, Tensor] | Tensor, h: int, w: int) -> Tensor:
    """Equirect ``1×C×H×W`` from six 90° faces (dict by name, or ``6×C×S×S`` in CUBE_FACES order)."""
    if isinstance(faces, dict):
        faces = torch.cat([faces[n] for n in CUBE_FACES], dim=0)
    return equirect_from_views(faces, cube_views(), h, w, margin=0.0)


# -- measurement -----------------------------------------------------------------------------------
def seam_ratio(img) -> float:
    """Mean |column 0 − column W−1| ÷ mean |column j − column j+1| over the interior (DESIGN.md).

    ``img``: uint8/float ``H×W×C`` array or ``H×W``, or a ``1×C×H×W`` tensor. ~0.8 on real panoramas,
    ≫ 1 where left and right edges do not meet.
    """
    if isinstance(img, Tensor):
        a = img.detach().double().cpu()
        a = a[0] if a.dim() == 4 else a
        a = a.permute(1, 2, 0) if a.dim() == 3 else a            # → H×W×C
    else:
        a = torch.from_numpy(np.asarray(img, dtype=np.float64))
    if a.dim() == 2:
        a = a.unsqueeze(-1)
    seam = (a[:, 0] - a[:, -1]).abs().mean()
    interior = (a[:, 1:] - a[:, :-1]).abs().mean()
    return float(seam / interior.clamp_min(1e-12))


__all__ = [
    "CUBE_FACES", "View", "is_equirect_shape", "equirect_lonlat", "lonlat_to_dirs", "dirs_to_lonlat",
    "lonlat_to_grid", "rotation", "view_dirs", "perspective_grid", "circular_pad_x", "pole_pad_y",
    "circular_pad", "sample_view", "resize_equirect", "view_set", "cube_views", "overlap_fov",
    "default_face_size", "feather", "project", "coverage", "pixel_solid_angle", "view_weights",
    "views_lonlat", "row_widths", "LatitudeGrid", "equirect_to_views", "equirect_to_cubemap",
    "equirect_from_views", "cubemap_to_equirect", "seam_ratio",
]
