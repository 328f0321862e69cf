"""stereo.py: splitting stereo frames, and telling a stereo pair from one picture by its halves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stylevid.errors import BadInput
from stylevid.stereo import Eyes, choose, detect, halves_match

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured picture (blocks of 2 px of random colour, smoothed a little)."""
    rng = np.random.default_rng(seed)
    t = torch.from_numpy(rng.random((1, 3, h // 2, w // 2)).astype(np.float32))
    t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return (t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def pair(layout: str, h: int = 64, w: int = 128, disparity: int = 3, seed: int = 0) -> np.ndarray:
    """Both eyes of one scene, the right one seeing it ``disparity`` px further left."""
    left = scene(h, w, seed)
    return Eyes(layout).join(left, np.roll(left, disparity, axis=1))


@pytest.mark.parametrize("layout", ["top-bottom", "left-right"])
def test_a_stereo_pair_is_found_from_its_halves(layout):
    found, score = detect([pair(layout)])
    assert found == layout and score > 0.9, (found, score)
    other = "left-right" if layout == "top-bottom" else "top-bottom"
    assert not halves_match(pair(layout), other).stereo


def test_one_picture_is_not_a_stereo_pair():
    found, best = detect([scene(128, 128)])
    assert found == "" and best < 0.2, best
    assert detect([scene(64, 256, seed=3)])[0] == ""


def test_a_smooth_picture_cannot_tell():
    """A plain wall lit from one side: its halves correlate as a whole (the gradient) but hold no
    detail to compare, so it stays one picture."""
    x = np.linspace(120, 200, 256)[None, :, None] + np.linspace(0, 10, 256)[:, None, None]
    wall = np.repeat(x, 3, axis=2).round().astype(np.uint8)
    m = halves_match(wall, "top-bottom")
    assert m.detail < 2 and not m.stereo
    assert detect([wall])[0] == ""


def test_a_pattern_that_repeats_vertically_is_not_a_pair():
    """Vertical stripes: the top and bottom halves are the same, but so is any vertical shift of
    them, which two eyes would not be (the control)."""
    stripes = np.repeat(scene(2, 256)[:1], 128, axis=0)
    m = halves_match(stripes, "top-bottom")
    assert m.score > 0.99 and m.score - m.control < 0.01 and not m.stereo


def test_every_frame_with_detail_must_agree():
    flat = np.full((64, 128, 3), 90, np.uint8)
    assert detect([pair("top-bottom"), flat])[0] == "top-bottom"         # a black frame cannot tell
    assert detect([pair("top-bottom"), scene(128, 128, seed=5)])[0] == ""
    assert detect([])[0] == ""


def test_an_odd_side_loses_its_last_line():
    p = pair("top-bottom")
    odd = np.concatenate([p, p[-1:]], axis=0)
    assert halves_match(odd, "top-bottom").stereo


def test_choose():
    calls = []

    def frames():
        calls.append(1)
        yield pair("left-right")

    assert choose("none", frames(), "top-bottom") == ("", "--stereo none")
    assert choose("top-bottom", frames()) == ("top-bottom", "--stereo top-bottom")
    assert choose("auto", frames(), "top-bottom") == ("top-bottom", "its metadata")
    assert calls == []                               # the frames are read only when they must be
    layout, why = choose("auto", frames())
    assert layout == "left-right" and why.startswith("its halves match as two eyes (") and calls == [1]
    assert choose("auto", iter([scene(64, 64)])) == ("", "")
    assert choose("auto") == ("", "")
    with pytest.raises(BadInput, match="--stereo 'sideways': choose one of auto, none, top-bottom, left-right"):
        choose("sideways")


def test_eyes_split_and_join_arrays_and_tensors():
    a = np.arange(4 * 6 * 3).reshape(4, 6, 3)
    for layout, eye in (("top-bottom", (2, 6)), ("left-right", (4, 3))):
        e = Eyes(layout)
        left, right = e.split(a)
        assert left.shape[:2] == eye and (e.join(left, right) == a).all()
        t = torch.from_numpy(a).permute(2, 0, 1)[None]
        tl, tr = e.split(t)
        assert tl.shape[-2:] == eye and torch.equal(e.join(tl, tr), t)
        assert e.eye_size(6, 4) == eye[::-1]
    assert Eyes("top-bottom").splits_evenly(5, 4) and not Eyes("top-bottom").splits_evenly(4, 5)
    assert Eyes("left-right").splits_evenly(4, 5) and not Eyes("left-right").splits_evenly(5, 4)


@pytest.mark.skipif(not MEDIA.is_dir(), reason="needs ../shared/media")
def test_real_pictures():
    """A real stereo 360 photo is found top-bottom; a real photo and a real mono 360 photo are not."""
    from stylevid.images import load_image

    assert detect([load_image(MEDIA / "pano" / "gvr_andes_stereoTB_2048x2048.jpg")])[0] == "top-bottom"
    assert detect([load_image(MEDIA / "photo" / "tubingen.jpg")])[0] == ""
    assert detect([load_image(MEDIA / "pano" / "egjs_veste_oberhaus_2000x1000.jpg")])[0] == ""


def test_detection_passes_over_a_fade_and_reads_no_more_than_it_needs():
    read = []

    def frames():
        for i in range(20):
            read.append(i)
            yield np.zeros((64, 128, 3), np.uint8) if i < 5 else pair("top-bottom", seed=i)

    assert detect(frames())[0] == "top-bottom"
    assert read == list(range(8))                  # 5 black frames, then the 3 it compares


def test_a_stereo_video_that_fades_in_is_found(tmp_path):
    from pathlib import Path as P

    from stylevid.config import VideoConfig
    from stylevid.pipelines.video import stereo_layout
    from stylevid.video import probe
    from tests.clips import make_clip

    frames = [np.zeros((64, 64, 3), np.uint8)] * 25 + [pair("top-bottom", 32, 64, seed=i) for i in range(20)]
    clip = make_clip(tmp_path / "fade.mp4", frames, fps=25)
    assert stereo_layout(P(clip), probe(clip), "auto", VideoConfig()) == "top-bottom"


def test_a_tiled_texture_is_not_a_pair():
    """Tiles of 32 px: both halves are the same picture, and an eighth of the height (16 px) is no
    whole tile, so the vertical control alone would call it stereo; a sideways shift of one tile
    (within 8-25 % of the width) matches as well, which two eyes would not."""
    tile = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    texture = np.tile(tile, (8, 8, 1))
    m = halves_match(texture, "top-bottom")
    assert m.score > 0.99 and m.control > 0.99 and not m.stereo
    assert detect([texture])[0] == ""
