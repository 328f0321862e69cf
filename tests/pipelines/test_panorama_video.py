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


def test_a_360_input_gives_a_360_output(tmp_path, style):
    """The input's spherical metadata is written into the output (MP4/MOV), so players show it as
    360° too; where stylevid cannot write it (MKV), a warning says how to add it."""
    from stylevid.events import Message
    from stylevid.video import probe
    from stylevid.video.spherical import add_spherical

    clip = pano_clip(tmp_path / "pano.mp4", n=2, h=32, w=48)      # not 2:1: only the metadata says 360
    add_spherical(clip)
    events = []
    out = stylize_video(clip, style, tmp_path / "o.mp4", TINY, V, on_event=events.append)
    assert json.loads((tmp_path / "o.mp4.json").read_text())["wrap_x"] is True
    assert probe(out).spherical
    assert not [e for e in events if isinstance(e, Message) and e.level == "warning"]

    events.clear()
    out = stylize_video(clip, style, tmp_path / "o.mkv", TINY, V, on_event=events.append)
    assert not probe(out).spherical
    hints = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(hints) == 1 and "MP4 and MOV only" in hints[0] and "spatialmedia" in hints[0]


def test_a_stereo_360_input_keeps_its_layout_and_says_the_eyes_differ(tmp_path, style):
    from stylevid.events import Message
    from stylevid.video import probe
    from stylevid.video.spherical import add_spherical

    clip = pano_clip(tmp_path / "tb.mp4", n=2, h=64, w=64)     # two 64x32 eyes, one above the other
    add_spherical(clip, "top-bottom")
    events = []
    out = stylize_video(clip, style, tmp_path / "o.mp4", TINY, V, on_event=events.append)
    info = probe(out)
    assert info.spherical and info.stereo == "top-bottom"
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and "stereo 360 (top-bottom)" in warnings[0]
