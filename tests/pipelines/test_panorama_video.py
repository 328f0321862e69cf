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
    """The input's spherical metadata is written into the output (MP4/MOV: Spherical Video V1;
    MKV/WebM: the Projection element), so players show it as 360° too."""
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

    for ext in (".mkv", ".webm"):
        events.clear()
        out = stylize_video(clip, style, tmp_path / f"o{ext}", TINY, V, on_event=events.append)
        assert probe(out).spherical, ext
        assert not [e for e in events if isinstance(e, Message) and e.level == "warning"], ext


@pytest.mark.parametrize("layout", ["top-bottom", "left-right"])
def test_stereo_360_eyes_are_painted_to_match(tmp_path, style, layout):
    """Both eyes of a top-bottom stereo 360 clip are painted eye by eye, the right one from the
    left one warped by the disparity flow: identical eyes in, (nearly) identical paint out, where
    painting the stacked picture as one gives each eye its own brush strokes. Without metadata the
    layout is found from the halves; with it, the metadata says it (and is kept)."""
    from stylevid.events import Message
    from stylevid.video import probe, read_frames
    from stylevid.video.spherical import add_spherical

    rng = np.random.default_rng(0)
    eye = np.repeat(np.repeat(rng.integers(0, 255, (8, 16, 3), dtype=np.uint8), 4, 0), 4, 1)   # 32x64, 2:1
    axis = 0 if layout == "top-bottom" else 1
    frames = [np.concatenate([np.roll(eye, 2 * i, 1)] * 2, axis=axis) for i in range(3)]
    clip = make_clip(tmp_path / "s.mp4", frames, fps=10)
    one = stylize_video(clip, style, tmp_path / "one.mp4", TINY, V, projection="equirect", stereo="none")
    events = []
    found = stylize_video(clip, style, tmp_path / "found.mp4", TINY, V, on_event=events.append)
    said = [e.text for e in events if isinstance(e, Message)]
    assert f"s.mp4: stereo ({layout}: its halves match as two eyes (1.00)): each eye is painted on its own, the " \
           "right eye from the left one warped by the disparity flow between them; --stereo none paints both eyes " \
           "as one picture" in said, said
    assert any("360 mode (equirectangular: 64x32 is 2:1 (each eye))" in t for t in said), said
    add_spherical(clip, layout)
    events = []
    out = stylize_video(clip, style, tmp_path / "o.mp4", TINY, V, on_event=events.append)
    info = probe(out)
    assert info.spherical and info.stereo == layout
    assert json.loads((tmp_path / "o.mp4.json").read_text())["stereo"] == layout
    assert any(isinstance(e, Message) and "each eye is painted on its own" in e.text for e in events)

    def eyes_apart(path):
        return [np.abs(np.subtract(*np.split(f.image.astype(float), 2, axis=axis))).mean() for f in read_frames(path)]

    stereo, mono = eyes_apart(out), eyes_apart(one)
    assert len(stereo) == 3 and max(stereo) < 5, stereo           # measured 3.3-3.9
    assert eyes_apart(found) == pytest.approx(stereo, abs=1e-9)   # the same job: only the reason differs
    if layout == "top-bottom":      # (side by side, the two halves of one 360 picture are painted alike)
        assert max(stereo) < 0.5 * min(mono), (stereo, mono)      # measured 15.6-19.6


def test_stereo_layouts_painted_eye_by_eye_need_two_equal_eyes():
    from pathlib import Path
    from types import SimpleNamespace as NS

    from stylevid.pipelines.video import stereo_layout

    def layout(stereo, width, height, vcfg=VideoConfig(size=0), mode="auto", *args):
        return stereo_layout(Path("c.mp4"), NS(stereo=stereo, width=width, height=height), mode, vcfg, *args)

    assert layout("top-bottom", 64, 64) == "top-bottom"
    assert layout("top-bottom", 64, 65) == ""   # one picture, a warning
    assert layout("left-right", 128, 32) == "left-right"
    assert layout("left-right", 127, 32) == ""
    assert layout("top-bottom", 64, 64, mode="none") == ""
    assert layout("", 128, 32, mode="left-right") == "left-right"
    # At the working size: 1920x1080 at --size 256 is 256x144; at --size 250 250x140 (the short side of
    # a scaled frame is rounded even, not 141); an odd --size is the long side as asked: 255 wide.
    assert layout("top-bottom", 1920, 1080, VideoConfig(size=256)) == "top-bottom"
    assert layout("top-bottom", 1920, 1080, VideoConfig(size=250)) == "top-bottom"
    assert layout("left-right", 1920, 1080, VideoConfig(size=255)) == ""
    said = []
    layout("top-bottom", 64, 65, VideoConfig(size=0), "auto", said.append, "dreamed")
    assert [(e.level, e.text) for e in said] == [
        ("warning", "c.mp4: stereo (top-bottom: its metadata) with an odd side at 64x65: both eyes are dreamed as "
                    "one picture, so they will not match")]
    with pytest.raises(BadInput, match="--stereo 'sideways'"):
        layout("", 64, 64, mode="sideways")


def test_stereo_references_follow_each_eye_around_its_own_seam():
    """Side by side, each eye of a 360 stereo frame wraps around by itself: a pixel leaving the left
    eye's right edge comes back at the left eye's left edge, not in the right eye. The references
    (earlier output warped by flow) are made eye by eye; across the whole frame, the columns at the
    eyes' seams were pulled from the other eye."""
    from stylevid.flow import FlowPrefetcher
    from stylevid.pipelines.video import _references
    from stylevid.stereo import Eyes

    rng = np.random.default_rng(3)
    left, right = (np.repeat(np.repeat(rng.integers(0, 255, (8, 16, 3), dtype=np.uint8), 4, 0), 4, 1)
                   for _ in range(2))                                   # two different 32x64 eyes
    eyes = Eyes("left-right")
    frame = lambda i: eyes.join(np.roll(left, 3 * i, 1), np.roll(right, 3 * i, 1))   # noqa: E731
    contents, history = {0: frame(0)}, {0: frame(0)}                    # "painted" = the frame itself
    v = VideoConfig(long_term=(1,), edge_band=0)
    seams = np.r_[0:4, 60:68, 124:128]                                  # the columns by each eye's seam

    def seam_error(picks):
        with FlowPrefetcher("dis", True) as pre:
            refs = [_references(v, 1, frame(1), contents, history, pre, True, {}, "cpu", pick) for pick in picks]
        warped = refs[0][0][0] if len(refs) == 1 else eyes.join(refs[0][0][0], refs[1][0][0])
        out = (warped[0].permute(1, 2, 0).numpy() * 255)
        return float(np.abs(out - frame(1))[:, seams].mean())

    per_eye = seam_error([lambda x: eyes.split(x)[0], lambda x: eyes.split(x)[1]])
    whole = seam_error([lambda x: x])
    assert per_eye < 0.25 * whole, (per_eye, whole)                   # measured 0.33 vs 27.5
