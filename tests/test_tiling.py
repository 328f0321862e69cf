"""Tiled loss evaluation (tiling.py): tiles own every feature once, whole-picture statistics, and
the gradient of the whole-picture loss; no seams at tile borders (real encoder)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from stylevid.config import StyleConfig
from stylevid.encoders.base import Encoder, LayerInfo
from stylevid.losses import ContentLoss, StyleLoss, gram
from stylevid.tiling import ALIGN, TiledLoss, owned, tile_grid, tiled_features, tiled_grams


class Toy(Encoder):
    """Two stride-2 convolutions: a receptive field of 15 px, well inside a 32 px halo."""

    name = "toy"

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = nn.Conv2d(3, 8, 3, 2, 1)
        self.b = nn.Conv2d(8, 16, 3, 2, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.taps = {"a": LayerInfo("a", 8, 2, "toy"), "b": LayerInfo("b", 16, 4, "toy")}
        self.freeze()

    def _run(self, x, wanted):
        a = torch.relu(self.a(x))
        return {"a": a, "b": torch.relu(self.b(a))}


STRIDES = {"a": 2, "b": 4}


def picture(h, w, seed=1):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h,w,offset", [(96, 96, (0, 0)), (100, 70, (32, 0)), (64, 160, (32, 64)), (20, 30, (0, 0))])
def test_cores_cover_every_pixel_once_and_crops_hold_the_halo(h, w, offset):
    tiles = tile_grid(h, w, 64, 32, offset)
    cover = np.zeros((h, w), int)
    for t in tiles:
        cover[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.cy0 == max(0, t.y0 - 32) and t.cy1 == min(h, t.y1 + 32)
        assert t.y0 % ALIGN == 0 and t.x0 % ALIGN == 0
    assert (cover == 1).all()


def test_grid_parameters_must_line_up_with_the_strides():
    with pytest.raises(ValueError):
        tile_grid(64, 64, 48, 32)
    with pytest.raises(ValueError):
        tile_grid(64, 64, 64, 16)


@pytest.mark.parametrize("h,w", [(96, 128), (90, 110)])
def test_owned_features_tile_the_feature_map_exactly(h, w):
    enc, x = Toy(), picture(h, w)
    full = enc(x, ["a", "b"])
    for offset in [(0, 0), (32, 32)]:
        tiles = tile_grid(h, w, 32, 32, offset)
        assembled = tiled_features(enc, x, ["a", "b"], STRIDES, tiles)
        for k in ("a", "b"):
            assert assembled[k].shape == full[k].shape
            assert torch.allclose(assembled[k], full[k], atol=1e-5), k
        n = sum(owned(enc(x[..., t.cy0:t.cy1, t.cx0:t.cx1], ["b"])["b"], t, 4, h, w)[0, 0].numel() for t in tiles)
        assert n == math.ceil(h / 4) * math.ceil(w / 4)


def test_tiled_grams_equal_the_whole_picture_grams():
    enc, x = Toy(), picture(96, 128)
    whole = {k: gram(f) for k, f in enc(x, ["a", "b"]).items()}
    tiled = tiled_grams(enc, x, ["a", "b"], STRIDES, tile_grid(96, 128, 32, 32, (32, 0)))
    for k in whole:
        assert torch.allclose(tiled[k], whole[k], rtol=1e-4, atol=1e-6)


def test_tiled_loss_and_gradient_equal_the_whole_picture_ones():
    enc = Toy()
    x, content, style_pic = picture(96, 96, 1), picture(96, 96, 2), picture(64, 64, 3)
    style = StyleLoss(StyleLoss.target_grams([enc(style_pic, ["a", "b"])], [1.0], ["a", "b"]), {"a": 2.0})
    cont_feats = {"b": enc(content, ["b"])["b"]}   # the toy returns every tap
    xw = x.clone().requires_grad_(True)
    feats = enc(xw, ["a", "b"])
    whole = 1.5 * style(feats) + 0.3 * ContentLoss(cont_feats)(feats)
    whole.backward()

    targets = tiled_features(enc, content, ["b"], STRIDES, tile_grid(96, 96, 32, 32))
    loss = TiledLoss(enc, STRIDES, style, 1.5, targets, 0.3, core=32, halo=32,
                     gen=torch.Generator().manual_seed(0))
    for _ in range(3):                          # three different grid offsets, same answer
        value, grad = loss(x)
        assert value.item() == pytest.approx(whole.item(), rel=1e-4)
        assert torch.allclose(grad, xw.grad, rtol=1e-3, atol=1e-6 * xw.grad.abs().max().item())


def test_lite0_tiled_statistics_agree_with_untiled_ones():
    """The real encoder: layers whose receptive field fits in the halo agree exactly; the deep ones
    (block10 sees ~250 px) come closer as the halo grows (measured at 1024x768: halo 64 -> 1.5 %,
    halo 128 -> 0.04 % on block10)."""
    from PIL import Image
    from pathlib import Path

    from stylevid.config import ENCODER_LAYERS
    from stylevid.encoders import load_encoder

    enc = load_encoder("lite0")
    layers = list(ENCODER_LAYERS["lite0"]["style"])
    strides = {k: enc.taps[k].stride for k in layers}
    im = Image.open(Path(__file__).resolve().parents[1] / "samples" / "chelsea.jpg").convert("RGB").resize((96, 64))
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = {k: gram(f) for k, f in enc(x, layers).items()}

    def error(halo):
        tiled = tiled_grams(enc, x, layers, strides, tile_grid(64, 96, 32, halo))
        return {k: ((tiled[k] - whole[k]).norm() / whole[k].norm()).item() for k in layers}

    narrow, wide = error(32), error(64)
    for k in ("stem", "block0", "block2", "block4"):
        assert narrow[k] < 1e-3, (k, narrow[k])
    assert wide["block10"] < 1e-3 < narrow["block10"], (narrow, wide)


def test_tiled_stylization_shows_no_seams_at_tile_borders():
    """A picture forced into 32 px tiles (grid moving between iterations): the steps between the
    columns and rows at tile borders are no larger than elsewhere (the 360 seam ratio's idea)."""
    from pathlib import Path
    from PIL import Image

    from stylevid.pipelines.still import Stylizer

    samples = Path(__file__).resolve().parents[1] / "samples"
    content = np.array(Image.open(samples / "chelsea.jpg").convert("RGB").resize((96, 64)))
    style = np.array(Image.open(samples / "swirls.jpg").convert("RGB").resize((64, 64)))
    cfg = StyleConfig(size=96, scales=1, iterations=20, device="cpu", tile_above=64, tile=64, tile_halo=32,
                      init="noise")
    st = Stylizer(cfg, [style])
    assert st.tiled(64, 96)
    out, _ = st.stylize(content)
    assert seam_ratio(out.astype(float)) < 1.2
    # The measure sees seams: the same tiles painted one by one (each its own loss) score 1.5-1.9.
    alone = Stylizer(StyleConfig(size=32, scales=1, iterations=20, device="cpu", tile_above=0, init="noise"),
                     [style])
    naive = np.zeros_like(content)
    for y in range(0, 64, 32):
        for x in range(0, 96, 32):
            naive[y:y + 32, x:x + 32] = alone.stylize(np.ascontiguousarray(content[y:y + 32, x:x + 32]))[0]
    assert seam_ratio(naive.astype(float)) > 1.3


def seam_ratio(y: np.ndarray) -> float:
    """Mean step across the lines where tile borders can lie (multiples of 32) over the mean step
    elsewhere, columns and rows together."""
    steps, at = [], []
    for axis in (0, 1):
        d = np.abs(np.diff(y, axis=axis)).mean(axis=(1 - axis, 2))   # step between line j and j+1
        j = np.arange(len(d))
        steps.append(d), at.append((j + 1) % ALIGN == 0)
    d, b = np.concatenate(steps), np.concatenate(at)
    return float(d[b].mean() / d[~b].mean())


def test_flat_pictures_and_360_views_have_their_own_tile_threshold():
    """``tile_above`` decides for flat pictures (and video frames), ``view_tile_above`` for 360
    views; 0 never tiles. The defaults send a 1920×1080 frame whole and a 1280 px view in tiles."""
    from stylevid.pipelines.still import Stylizer

    style = np.zeros((32, 32, 3), np.uint8)
    st = Stylizer(StyleConfig(device="cpu"), [style])
    assert not st.tiled(1080, 1920) and not st.tiled(1280, 1920) and st.tiled(1920, 3840)
    assert st.tiled(1280, 1280, view=True) and not st.tiled(1024, 1024, view=True)
    st = Stylizer(StyleConfig(device="cpu", tile_above=0, view_tile_above=100), [style])
    assert not st.tiled(8192, 8192) and st.tiled(101, 100, view=True) and not st.tiled(100, 100, view=True)
