"""Sphere math: projections, circular padding, weights, the seam ratio (synthetic spheres only)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylevid import sphere as S


def texture(d: torch.Tensor) -> torch.Tensor:
    """A smooth colour texture defined on directions ``…×3`` → ``3×…`` (seamless by construction)."""
    x, y, z = d.unbind(-1)
    return torch.stack([0.5 + 0.4 * torch.sin(3 * x + 1) * torch.cos(2 * y), 0.5 + 0.4 * torch.sin(4 * y + z),
                        0.5 + 0.4 * torch.cos(3 * z - 2 * x)], 0).float()


def sphere_equirect(h: int = 48, w: int = 96) -> torch.Tensor:
    lon, lat = S.equirect_lonlat(h, w, dtype=torch.float64)
    return texture(S.lonlat_to_dirs(lon, lat)).unsqueeze(0)


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (180, 0), (-170, 20), (90, -45), (0, 90), (33, -89)])
def test_perspective_view_matches_the_sphere(yaw, pitch):
    eq = sphere_equirect(64, 128)
    view = S.sample_view(eq, S.perspective_grid(yaw, pitch, 90, 32))
    truth = texture(S.view_dirs(yaw, pitch, 90, 32)).unsqueeze(0)
    assert view.shape == (1, 3, 32, 32)
    assert (view - truth).abs().mean() < 0.005          # across the ±180° seam and the poles too


def test_cubemap_round_trip():
    eq = sphere_equirect(48, 96)
    faces = S.equirect_to_cubemap(eq, 48)
    assert list(faces) == ["front", "right", "back", "left", "up", "down"]
    back = S.cubemap_to_equirect(faces, 48, 96)
    err = (back - eq).abs()
    assert err.mean() < 0.003 and err.max() < 0.03
    # overlapping feathered views also blend back to the sphere
    views = S.view_set(14)
    imgs = S.equirect_to_views(eq, views, 40)
    assert (S.equirect_from_views(imgs, views, 48, 96) - eq).abs().mean() < 0.005


def test_view_directions_and_conventions():
    d = S.view_dirs(0, 0, 90, 3)
    assert torch.allclose(d[1, 1], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    assert d[1, 2, 0] > 0 and d[0, 1, 1] > 0                    # right is +x, up is +y
    assert torch.allclose(S.view_dirs(90, 0, 90, 1)[0, 0], torch.tensor([1.0, 0, 0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(S.view_dirs(0, 90, 90, 1)[0, 0], torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)
    lon, lat = S.dirs_to_lonlat(S.lonlat_to_dirs(torch.tensor([0.3, -2.0]), torch.tensor([0.1, -1.2])))
    assert torch.allclose(lon, torch.tensor([0.3, -2.0]), atol=1e-6) and torch.allclose(lat, torch.tensor([0.1, -1.2]), atol=1e-6)


def test_circular_pad_x():
    x = torch.arange(10.0).view(1, 1, 1, 10)
    p = S.circular_pad_x(x, 3)
    assert p.flatten().tolist() == [7, 8, 9, *range(10), 0, 1, 2]
    big = S.circular_pad_x(x, 13)                                  # more than the width
    assert big.shape[-1] == 36 and big.flatten().tolist() == [(j - 13) % 10 for j in range(36)]
    # padding then a convolution equals a circular convolution
    img = torch.rand(1, 3, 5, 12)
    k = torch.rand(3, 1, 1, 3)
    ours = F.conv2d(S.circular_pad_x(img, 1), k, groups=3)
    ref = F.conv2d(F.pad(img, (1, 1, 0, 0), mode="circular"), k, groups=3)
    assert torch.allclose(ours, ref)


def test_pole_padding_is_the_row_across_the_pole():
    x = torch.rand(1, 2, 6, 8)
    p = S.pole_pad_y(x, 2)
    assert p.shape == (1, 2, 10, 8)
    assert torch.equal(p[..., 1, :], x[..., 0, :].roll(4, -1))      # the row just beyond the north pole
    assert torch.equal(p[..., 0, :], x[..., 1, :].roll(4, -1))
    assert torch.equal(p[..., -1, :], x[..., -2, :].roll(4, -1))


def test_sampling_wraps_across_the_seam_and_is_differentiable():
    w = 16
    eq = torch.arange(float(w)).view(1, 1, 1, w).expand(1, 1, 8, w).clone().requires_grad_(True)
    # longitude exactly ±π lies halfway between column W−1 and column 0
    grid = torch.tensor([[[[1.0, 0.0], [-1.0, 0.0], [1.0 - 1.0 / w, 0.0]]]])
    out = S.sample_view(eq, grid)
    assert torch.allclose(out.flatten(), torch.tensor([(w - 1) / 2, (w - 1) / 2, w - 1.0]))
    out.sum().backward()
    assert eq.grad[0, 0, :, 0].abs().sum() > 0 and eq.grad[0, 0, :, -1].abs().sum() > 0


def test_seam_ratio():
    periodic = (sphere_equirect(48, 96)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert 0.5 < S.seam_ratio(periodic) < 1.3
    assert 0.5 < S.seam_ratio(np.roll(periodic, 48, axis=1)) < 1.3
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 96)[None, :, None] + rng.normal(0, 2, (48, 96, 3))
    flat = np.clip(ramp, 0, 255).astype(np.uint8)                 # a flat picture: its edges do not meet
    assert S.seam_ratio(flat) > 3
    assert S.seam_ratio(np.roll(flat, 48, axis=1)) < 1.5          # the jump moved inside; the new edges meet
    t = torch.from_numpy(flat).permute(2, 0, 1)[None].float()
    assert S.seam_ratio(t) == pytest.approx(S.seam_ratio(flat))


def test_is_equirect_shape():
    assert S.is_equirect_shape(4096, 2048) and S.is_equirect_shape(2000, 1000) and S.is_equirect_shape(1921, 960)
    assert not S.is_equirect_shape(1920, 1080) and not S.is_equirect_shape(1024, 768)


def test_resize_equirect_is_circular():
    eq = sphere_equirect(48, 96)
    for size in [(24, 48), (33, 67), (96, 192)]:
        r = S.resize_equirect(eq, size)
        tiled = torch.cat([eq, eq, eq], -1)
        ref = F.interpolate(tiled, size=(size[0], 3 * size[1]), mode="bilinear", align_corners=False,
                            antialias=True)[..., size[1]:2 * size[1]]
        assert r.shape[-2:] == size and torch.allclose(r, ref, atol=1e-5)


def test_view_weights_cover_the_sphere_once():
    for n in (6, 14):
        views = S.view_set(n)
        w = S.view_weights(views, 24)
        assert w.shape == (n, 1, 24, 24)
        assert float(w.sum()) == pytest.approx(4 * math.pi, rel=0.01)
        assert w.min() >= 0
    # 6 faces: each view stands for a sixth of the sphere
    share = S.view_weights(S.view_set(6), 24).sum((1, 2, 3))
    assert torch.allclose(share / share.sum(), torch.full((6,), 1 / 6), atol=0.01)
    assert float(S.pixel_solid_angle(64, 90).sum()) == pytest.approx(4 * math.pi / 6, rel=0.01)


def test_latitude_grid_packs_polar_rows():
    widths = S.row_widths(48, 96, 40, 100)
    assert widths[0] > widths[12] > widths[24] and float(widths.min()) >= 1.0
    g = S.LatitudeGrid(48, 96, widths)
    counts = {int(r): n for rows, n in g.levels for r in rows}
    assert counts[24] == 96 and counts[0] < counts[5] < 96 and counts[47] == counts[0]
    assert g.size == sum(counts.values()) < 48 * 96
    eq = sphere_equirect(48, 96)
    y = g.pack(eq)
    assert y.shape == (1, 3, g.size)
    back = g.unpack(y)
    assert back.shape == eq.shape
    assert torch.equal(back[..., 20:28, :], eq[..., 20:28, :])       # full rows near the equator
    assert (back - eq).abs().mean() < 0.01                           # smooth texture: little lost
    const_rows = torch.rand(1, 3, 48, 1).expand(1, 3, 48, 96)
    assert torch.allclose(g.project(const_rows), const_rows, atol=1e-6)
    # differentiable: a view of the pole reaches the packed polar samples
    leaf = y.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(S.sample_view(g.unpack(leaf), S.perspective_grid(0, 90, 90, 24)).sum(), leaf)
    first = g.levels[-1][1] * len(g.levels[-1][0])                    # the most reduced rows come last
    assert grad[..., -first:].abs().sum() > 0
