"""360 video: a 2:1 clip switches the video pipeline to the panorama stylizer with wrap-around flow."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stylevid.config import StyleConfig, VideoConfig
from stylevid.errors import BadInput
from stylevid.pipelines.video import stylize_video
from tests.clips import make_clip

TINY = StyleConfig(scales=1, iterations=2)
V = VideoConfig(first_iterations=2, iterations=1, reveal_iterations=1)


def pano_clip(path, n=3, h=32, w=64):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return make_clip(path, [np.roll(base, 2 * i, axis=1) for i in range(n)], fps=10)


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    from PIL import Image

    p = tmp_path_factory.mktemp("s") / "style.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(p)
    return p


@pytest.mark.parametrize("projection, expected", [("auto", True), ("flat", False)])
def test_projection_detection(tmp_path, style, projection, expected):
    clip = pano_clip(tmp_path / "pano.mp4", n=2)
    out = stylize_video(clip, style, tmp_path / "o.mp4", TINY, V, projection=projection)
    meta = json.loads((tmp_path / "o.mp4.json").read_text())
    assert meta["wrap_x"] is expected
    assert meta["frames"] == 2 and out.is_file()


def test_unknown_projection_refused(tmp_path, style):
    clip = pano_clip(tmp_path / "pano.mp4", n=2)
    with pytest.raises(BadInput, match="projection"):
        stylize_video(clip, style, tmp_path / "o.mp4", TINY, V, projection="cube")
