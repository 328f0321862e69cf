import math

import torch

from stylevid.warp import carried_from_edge, out_of_frame_mask, reliability, warp, warping_error, warping_errors

H, W = 32, 48


def pattern(shift_x=0.0, shift_y=0.0, h=H, w=W):
    """Smooth analytic RGB pattern evaluated at (x - shift_x, y - shift_y)."""
    y = torch.arange(h, dtype=torch.float32).view(h, 1) - shift_y
    x = torch.arange(w, dtype=torch.float32).view(1, w) - shift_x
    r = 0.5 + 0.4 * torch.sin(x / 5.0) * torch.cos(y / 7.0)
    g = 0.5 + 0.4 * torch.cos(x / 6.0 + y / 9.0)
    b = 0.5 + 0.4 * torch.sin((x + y) / 8.0)
    return torch.stack([r, g, b]).unsqueeze(0)


def const_flow(dx, dy, h=H, w=W):
    f = torch.zeros(1, 2, h, w)
    f[:, 0], f[:, 1] = dx, dy
    return f


def test_identity_flow_is_identity():
    img = torch.rand(2, 3, H, W)
    assert torch.allclose(warp(img, torch.zeros(1, 2, H, W)), img, atol=1e-5)
    assert torch.allclose(warp(img, torch.zeros(2, 2, H, W), wrap_x=True), img, atol=1e-5)


def test_shifted_pattern_is_recovered():
    a = pattern()
    b = pattern(2.5, -1.25)           # b(p) = a(p - s), so a(p) = b(p + s)
    out = warp(b, const_flow(2.5, -1.25))
    err = (out - a)[..., 4:-4, 4:-4].abs().max()
    assert err < 5e-3
    # integer shift: exact in the interior
    b = pattern(3, 2)
    out = warp(b, const_flow(3, 2))
    assert (out - pattern())[..., :-2, :-3].abs().max() < 1e-5


def test_wrap_x_across_seam_is_exact():
    img = torch.rand(1, 3, H, W)
    for s in (5, -7, W + 3):
        shifted = img.roll(s % W, dims=-1)          # shifted(x) = img(x - s)
        out = warp(shifted, const_flow(s, 0), wrap_x=True)
        assert torch.allclose(out, img, atol=1e-5), s
    # half-pixel shift of a periodic image: column W-1 blends with column 0
    out = warp(img, const_flow(0.5, 0), wrap_x=True)
    expect = 0.5 * (img + img.roll(-1, dims=-1))
    assert torch.allclose(out, expect, atol=1e-5)


def test_gradient_flows_through_warp():
    img = torch.rand(1, 3, H, W, requires_grad=True)
    flow = (torch.rand(1, 2, H, W) * 2).requires_grad_(True)
    warp(img, flow).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert flow.grad is not None and flow.grad.abs().sum() > 0


def test_out_of_frame_mask():
    m = out_of_frame_mask(const_flow(3, 0))
    assert m[..., :, -3:].eq(1).all() and m[..., :, :-3].eq(0).all()
    assert out_of_frame_mask(const_flow(3, 0), wrap_x=True).eq(0).all()
    assert out_of_frame_mask(const_flow(0, -2), wrap_x=True)[..., :2, :].eq(1).all()


def test_paint_from_the_edge_band_is_not_carried_inward():
    # A pan: frame t's pixel p shows what frame t-1 had at p + 3 (the picture moves left).
    m = carried_from_edge(const_flow(3, 0), band=4)
    assert m.shape == (1, 1, H, W)
    # Sources under 4 px from the right edge (p + 3 > W - 5) that land 4 px or more inside.
    cols = m[0, 0].amax(0).nonzero().flatten().tolist()
    assert cols == [W - 7, W - 6, W - 5]
    assert m[0, 0, :, W - 7].eq(1).all()
    # Paint staying in the band (a still camera, or the left band fed from inside) is kept.
    assert carried_from_edge(const_flow(0, 0), band=4).eq(0).all()
    assert m[..., :4].eq(0).all()
    # A camera shaking by a fraction of a pixel keeps the paint at the band's inner edge too (it
    # was excluded there, painted afresh each frame, and drew a line `band` px in).
    assert carried_from_edge(const_flow(0.3, 0), band=4).eq(0).all()
    assert carried_from_edge(const_flow(0.6, 0), band=4)[0, 0].amax(0).nonzero().flatten().tolist() == [W - 5]
    # Rows too: a tilt carries the bottom band upwards.
    rows = carried_from_edge(const_flow(0, 2.5), band=4)[0, 0].amax(1).nonzero().flatten().tolist()
    assert rows == [H - 7, H - 6, H - 5]
    assert carried_from_edge(const_flow(3, 0), band=0).eq(0).all()
    assert carried_from_edge(const_flow(3, 2), band=4, wrap_x=True).eq(0).all()   # 360: no edges


def test_reliability_global_shift():
    fwd, bwd = const_flow(3, 1), const_flow(-3, -1)
    m = reliability(fwd, bwd)
    assert m.shape == (1, 1, H, W)
    assert m[..., 1:, 3:].eq(1).all()               # interior reliable
    assert m[..., :1, :].eq(0).all() and m[..., :, :3].eq(0).all()   # mapped outside the frame
    assert reliability(fwd, bwd, wrap_x=True)[..., 1:, :].eq(1).all()


def test_reliability_occluding_square():
    # Static background; a square at x0..x0+S at t-1 moves right by d at t.
    d, x0, y0, S = 6, 10, 8, 12
    fwd = torch.zeros(1, 2, H, W)                    # t-1 -> t, on pixels of t-1
    fwd[:, 0, y0:y0 + S, x0:x0 + S] = d
    bwd = torch.zeros(1, 2, H, W)                    # t -> t-1, on pixels of t
    bwd[:, 0, y0:y0 + S, x0 + d:x0 + d + S] = -d
    m = reliability(fwd, bwd)[0, 0]
    # disocclusion: background at t that the square covered at t-1
    assert m[y0 + 2:y0 + S - 2, x0:x0 + d].eq(0).all()
    # motion boundary of the square at t
    assert m[y0 + 2:y0 + S - 2, x0 + d + S - 1].eq(0).all()
    assert m[y0 - 1, x0 + d + 4].eq(0)
    # square interior and far background are reliable
    assert m[y0 + 2:y0 + S - 2, x0 + d + 2:x0 + d + S - 2].eq(1).all()
    assert m[:, W - 10:].eq(1).all() and m[:y0 - 2].eq(1).all()


def test_warping_error_static_vs_flicker():
    frame = torch.rand(1, 3, H, W)
    static = torch.cat([frame] * 4)
    flows = torch.zeros(3, 2, H, W)
    assert warping_error(static, flows).item() < 1e-10
    g = torch.Generator().manual_seed(0)
    flicker = (static + 0.1 * torch.randn(4, 3, H, W, generator=g)).clamp(0, 1)
    e = warping_error(flicker, flows, torch.ones(3, 1, H, W))
    assert e.item() > 0.01
    # uniform brightness step d in all channels: 3 d^2 per pair (channel-summed), list input
    frames = [frame * 0.5, frame * 0.5 + 0.1, frame * 0.5]
    errs = warping_errors(frames, [torch.zeros(2, H, W)] * 2)
    assert torch.allclose(errs, torch.full((2,), 3 * 0.01), atol=1e-6)
    # a moving sequence with its true flow has ~0 error where reliable
    seq = torch.cat([pattern(0), pattern(2), pattern(4)])
    f = const_flow(2, 0).expand(2, -1, -1, -1)         # frame t -> t+1
    masks = reliability(-f, f)
    assert warping_error(seq, f, masks).item() < 1e-8
    assert math.isfinite(warping_error(seq, f, torch.zeros(2, 1, H, W)).item())


def test_zoom_flow_moves_pixels_like_a_camera():
    from stylevid.warp import zoom_flow

    assert zoom_flow(7, 9).abs().max() == 0                      # scale 1, no turn, no shift: still
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 6] = 1.0                                          # 2 px right of the centre
    at = lambda f: tuple((warp(x, f)[0, 0] > 0.5).nonzero()[0].tolist())
    assert at(zoom_flow(9, 9, 1.0, 90.0)) == (2, 4)              # counter-clockwise on screen: now above
    assert at(zoom_flow(9, 9, 1.0, 0.0, (1.0, 2.0))) == (6, 7)   # shifted right 1, down 2
    y = warp(x, zoom_flow(9, 9, 2.0))                            # magnified: 4 px right, spread out
    assert y[0, 0, 4, 8] > 0.2 and y[0, 0, 4, 6] == 0
