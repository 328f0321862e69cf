"""Loss math on known tensors (losses.py)."""
from __future__ import annotations

import pytest
import torch

from stylevid.losses import (ContentLoss, StyleLoss, TotalVariation, content_loss, gram, positions, style_loss, temporal_loss,
                             total_variation, weighted_gram)


def test_gram_of_known_matrix():
    # One picture, 2 channels, 1x3 pixels: F = [[1, 2, 3], [0, 1, -1]].
    f = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).reshape(1, 2, 1, 3)
    # F Fᵀ = [[1+4+9, 0+2-3], [0+2-3, 0+1+1]] = [[14, -1], [-1, 2]], divided by H·W = 3.
    expected = torch.tensor([[[14.0, -1.0], [-1.0, 2.0]]]) / 3
    assert torch.allclose(gram(f), expected)


def test_gram_is_symmetric_batched_and_size_independent():
    torch.manual_seed(0)
    f = torch.rand(2, 4, 5, 6)
    g = gram(f)
    assert g.shape == (2, 4, 4)
    assert torch.allclose(g, g.transpose(1, 2))
    # Tiling the same features 2x2 keeps the Gram (it is divided by H·W).
    assert torch.allclose(gram(f.repeat(1, 1, 2, 2)), g, atol=1e-6)


def test_positions_is_a_view_in_both_layouts_and_gram_agrees():
    torch.manual_seed(0)
    f = torch.rand(2, 4, 5, 6)
    cl = f.contiguous(memory_format=torch.channels_last)
    for t in (f, cl):
        p = positions(t)
        assert p.shape == (2, 4, 30) and p.data_ptr() == t.data_ptr()  # no copy
        assert torch.equal(p, f.reshape(2, 4, 30))
    assert torch.allclose(gram(cl), gram(f), atol=1e-6)
    crop = cl[..., 1:4, 2:5]  # a tile's crop: neither layout is contiguous; still right
    assert torch.equal(positions(crop), f[..., 1:4, 2:5].reshape(2, 4, 9))


def test_gram_gradient_in_both_layouts():
    """The hand-written backward equals autograd's through ``F Fᵀ / N`` and keeps the layout."""
    torch.manual_seed(0)
    f = torch.rand(2, 5, 4, 3, dtype=torch.float64)
    weight = torch.rand(2, 5, 5, dtype=torch.float64)
    for t in (f, f.contiguous(memory_format=torch.channels_last)):
        t = t.detach().requires_grad_(True)
        torch.autograd.gradcheck(gram, (t,))
        (weight * gram(t)).sum().backward()
        plain = f.detach().reshape(2, 5, 12).requires_grad_(True)
        (weight * (plain @ plain.transpose(1, 2) / 12)).sum().backward()
        assert torch.allclose(t.grad, plain.grad.reshape(2, 5, 4, 3))
        assert t.grad.stride() == t.stride()


def test_weighted_gram_value_and_gradient_in_both_layouts():
    """``Σ_p w_p f_p f_pᵀ`` with fixed weights: the value and the one-product backward equal
    autograd's through the plain formula, for contiguous, channels-last and cropped features."""
    torch.manual_seed(0)
    f = torch.rand(2, 5, 6, 5, dtype=torch.float64)
    wmap = torch.rand(2, 1, 4, 3, dtype=torch.float64)
    outer = torch.rand(2, 5, 5, dtype=torch.float64)
    for t in (f, f.contiguous(memory_format=torch.channels_last)):
        t = t[..., 1:5, 1:4].detach().requires_grad_(True)       # a crop: strided in either layout
        torch.autograd.gradcheck(lambda a: weighted_gram(a, wmap), (t,))
        g = weighted_gram(t, wmap)
        (outer * g).sum().backward()
        plain = f[..., 1:5, 1:4].detach().reshape(2, 5, 12).requires_grad_(True)
        ref = (plain * wmap.reshape(2, 1, 12)) @ plain.transpose(1, 2)
        (outer * ref).sum().backward()
        assert torch.allclose(g, ref)
        assert torch.allclose(t.grad, plain.grad.reshape(2, 5, 4, 3))
    # Uniform weights 1/N give losses.gram.
    assert torch.allclose(weighted_gram(f, torch.full((2, 1, 6, 5), 1 / 30, dtype=torch.float64)), gram(f))


def test_zero_losses_on_equal_inputs():
    torch.manual_seed(0)
    f = torch.rand(1, 8, 6, 7)
    assert content_loss(f, f.clone()).item() == 0
    g = gram(f)
    assert style_loss(g, g.clone()).item() == 0
    flat = torch.full((1, 3, 9, 11), 0.4)
    assert total_variation(flat).item() == 0
    assert total_variation(flat, wrap_x=True).item() == 0
    x = torch.rand(1, 3, 9, 11)
    assert temporal_loss(x, x.clone(), torch.ones(1, 1, 9, 11)).item() == 0


def test_content_loss_is_relative_to_target():
    torch.manual_seed(0)
    t = torch.rand(1, 4, 5, 5) + 0.5
    x = t + 0.1
    k = 7.0
    assert content_loss(x, t).item() > 0
    assert content_loss(k * x, k * t).item() == pytest.approx(content_loss(x, t).item(), rel=1e-5)


def test_style_loss_normalization_is_scale_invariant():
    torch.manual_seed(0)
    f, h = torch.rand(1, 6, 8, 8), torch.rand(1, 6, 8, 8)
    for k in (0.01, 1.0, 50.0):
        # Equal Grams give 0 at any feature scale ...
        assert style_loss(gram(k * f), gram(k * f)).item() == 0
        # ... and the normalized loss does not change when both features are scaled by k.
        assert style_loss(gram(k * f), gram(k * h)).item() == pytest.approx(
            style_loss(gram(f), gram(h)).item(), rel=1e-4)


def test_total_variation_known_values_and_wrap_x():
    # A horizontal ramp 0, 1, 2, 3 (one row repeated): dx = 1 everywhere, dy = 0.
    x = torch.arange(4.0).repeat(1, 1, 3, 1)
    assert total_variation(x).item() == pytest.approx(1.0)
    # Circular in x: the wrap from 3 back to 0 adds |3 - 0| once over 4 differences: (1+1+1+3)/4.
    assert total_variation(x, wrap_x=True).item() == pytest.approx(6 / 4)
    # A picture that is seamless in x (a full period) is not penalized by the wrap.
    t = torch.sin(torch.linspace(0, 2 * torch.pi, 33)[:-1]).repeat(1, 1, 2, 1)
    assert total_variation(t, wrap_x=True).item() == pytest.approx(total_variation(t).item(), rel=0.1)
    assert TotalVariation(wrap_x=True)(x).item() == pytest.approx(6 / 4)


def test_temporal_loss_weight():
    torch.manual_seed(0)
    x, w = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    assert temporal_loss(x, w, torch.zeros(1, 1, 6, 6)).item() == 0
    assert temporal_loss(x, w, torch.ones(1, 1, 6, 6)).item() == pytest.approx((x - w).pow(2).mean().item())
    # Half the pixels unreliable: only the reliable half counts.
    m = torch.zeros(1, 1, 6, 6)
    m[..., :3] = 1
    assert temporal_loss(x, w, m).item() == pytest.approx((x - w)[..., :3].pow(2).mean().item() / 2, rel=1e-5)


def test_target_grams_blend():
    torch.manual_seed(0)
    a = {"l1": torch.rand(1, 3, 4, 4), "l2": torch.rand(1, 5, 2, 2)}
    b = {"l1": torch.rand(1, 3, 4, 4), "l2": torch.rand(1, 5, 2, 2)}
    # Weights are normalized: 3:1 is 0.75 / 0.25.
    t = StyleLoss.target_grams([a, b], [3.0, 1.0], ["l1", "l2"])
    for k in ("l1", "l2"):
        assert torch.allclose(t[k], 0.75 * gram(a[k]) + 0.25 * gram(b[k]))
    only_a = StyleLoss.target_grams([a, b], [1.0, 0.0], ["l1"])
    assert set(only_a) == {"l1"}
    assert torch.allclose(only_a["l1"], gram(a["l1"]))


def test_style_loss_module_layer_weights():
    torch.manual_seed(0)
    t = {"a": torch.rand(1, 3, 4, 4), "b": torch.rand(1, 3, 4, 4)}
    x = {"a": torch.rand(1, 3, 4, 4), "b": t["b"]}  # only layer a differs
    grams = {k: gram(v) for k, v in t.items()}
    la = style_loss(gram(x["a"]), grams["a"]).item()
    assert StyleLoss(grams)(t).item() == 0
    assert StyleLoss(grams)(x).item() == pytest.approx(la / 2, rel=1e-5)             # mean over layers
    assert StyleLoss(grams, {"a": 3.0})(x).item() == pytest.approx(la * 3 / 4, rel=1e-5)  # weighted mean
    assert StyleLoss(grams, {"a": 0.0})(x).item() == 0


def test_content_loss_module_and_detached_targets():
    f = torch.rand(1, 4, 3, 3, requires_grad=True)
    m = ContentLoss({"c": f * 2})
    assert not m.targets["c"].requires_grad
    assert m({"c": f * 2}).item() == 0
    loss = m({"c": f})
    loss.backward()
    assert f.grad is not None and f.grad.abs().sum() > 0
