"""GIF and animated WebP output (video/animated.py, through assemble and write_frames): frame
times kept to the format's ticks, at most 50 frames a second, pictures close to the painted ones,
nothing else of the input carried (and said so)."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from stylevid.events import Message
from stylevid.video import assemble, read_frames, write_frames
from stylevid.video.animated import MIN_FRAME, keep_times, read_back
from stylevid.video.writer import check_codec, video_suffix
from tests.clips import make_clip, moving_square
from tests.cli_helpers import SAMPLES

from .conftest import VFR_PTS


def warnings(events):
    return [e.text for e in events if isinstance(e, Message) and e.level == "warning"]


def gif_delays(path) -> list[int]:
    """Each frame's delay in 1/100 s, from the GIF's own graphic control blocks (via Pillow)."""
    im = Image.open(path)
    out = []
    for k in range(im.n_frames):
        im.seek(k)
        out.append(im.info["duration"] // 10)
    return out


def webp_pictures(path) -> tuple[list[np.ndarray], list[int]]:
    im = Image.open(path)
    pics, durations = [], []
    for k in range(im.n_frames):
        im.seek(k)
        pics.append(np.array(im.convert("RGB")).astype(int))
        durations.append(im.info["duration"])
    return pics, durations


def colourful(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Smooth frames with many colours (a palette of 256 must dither them), each one different."""
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([(x * 4 + 9 * i) % 256, (y * 5 + 3 * i) % 256, ((x + y) * 2 + 40) % 256], -1).astype(np.uint8)
            for i in range(n)]


def test_keep_times_drops_frames_closer_than_20_ms_and_keeps_the_total():
    thirty = [Fraction(i, 30) for i in range(30)]
    s = keep_times(thirty, Fraction(1), "gif")
    assert [i for i, _, _ in s] == list(range(30))              # 33 ms apart: all kept
    assert sum(d for _, _, d in s) == 100 and min(d for _, _, d in s) >= 3
    sixty = [Fraction(i, 60) for i in range(60)]
    for fmt, tick in (("gif", 100), ("webp", 1000)):
        s = keep_times(sixty, Fraction(1), fmt)
        assert [i for i, _, _ in s] == list(range(0, 60, 2))     # 17 ms apart: every other one
        assert sum(d for _, _, d in s) == tick                   # still one second
        assert min(d for _, _, d in s) >= MIN_FRAME * tick
    # Times that do not start at 0 (an MPEG-TS clip) count from the first frame.
    s = keep_times([Fraction(14, 10) + Fraction(i, 10) for i in range(3)], Fraction(17, 10), "webp")
    assert s == [(0, 0, 100), (1, 100, 100), (2, 200, 100)]


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_vfr_clip_keeps_its_frame_times_and_names_what_is_left_out(clips, tmp_path, ext):
    src, out = clips["vfr"], tmp_path / f"out.{ext}"
    frames = [f.image for f in read_frames(src, as_shown=True)]
    painted = [255 - f for f in frames]
    events = []
    w = assemble(src, lambda i: painted[i], out, expected=len(frames), on_event=events.append, as_shown=True)
    assert w.frames == 12 and w.audio == ("dropped",)
    gaps = np.diff(VFR_PTS).tolist()          # ms
    if ext == "gif":
        assert gif_delays(out)[:-1] == [g // 10 for g in gaps]
        back = [f.image.astype(int) for f in read_frames(out)]
    else:
        back, durations = webp_pictures(out)
        assert durations[:-1] == gaps
    assert len(back) == 12 and back[0].shape == painted[0].shape    # as shown: turned upright (48x64 → 64x48)
    for b, p in zip(back, painted):
        assert np.abs(b - p).mean() < 4
    (said,) = warnings(events)
    assert "holds only pictures" in said and "1 (audio)" in said and "2 (subtitle)" in said


def blurred(a: np.ndarray) -> np.ndarray:
    """3×3 box blur: what the eye averages a dither into."""
    p = np.pad(a.astype(float), ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(p[y:y + a.shape[0], x:x + a.shape[1]] for y in range(3) for x in range(3)) / 9


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_a_photo_comes_back_close_with_one_palette_for_the_clip(tmp_path, ext):
    im = Image.open(SAMPLES / "chelsea.jpg").convert("RGB")
    im.thumbnail((96, 96))
    pics = [np.roll(np.asarray(im), 2 * i, axis=1) for i in range(6)]
    w = write_frames(lambda i: pics[i], 6, tmp_path / f"z.{ext}", fps=25)
    assert w.frames == 6 and read_back(w.path, ext) == (6, 24 if ext == "gif" else 240)
    back = [f.image.astype(int) for f in read_frames(w.path)] if ext == "gif" else webp_pictures(w.path)[0]
    web = np.asarray(im.convert("P", palette=Image.Palette.WEB).convert("RGB"))   # a fixed 216-colour palette
    fixed = np.abs(blurred(web) - blurred(pics[0])).mean()                         # 2.7
    for b, p in zip(back, pics):
        assert np.abs(b - p).mean() < 4                                            # 2.2 (GIF), 2.5 (WebP)
        assert np.abs(blurred(b) - blurred(p)).mean() < fixed / 2                  # 0.8, 1.3
    if ext == "gif":                              # dithered, not posterised: a channel keeps its many levels
        assert len(np.unique(back[0][..., 0])) > 100


def test_60_fps_becomes_50_at_most_and_keeps_its_length(tmp_path):
    src = make_clip(tmp_path / "fast.mp4", moving_square(12, 32, 48), fps=60)
    events = []
    w = assemble(src, lambda i: np.full((32, 48, 3), 20 * i, np.uint8), tmp_path / "fast.gif", on_event=events.append)
    assert w.frames == 6
    assert gif_delays(w.path) == [3, 4, 3, 3, 4, 3]              # every other frame; 0.2 s in all
    assert any("6 of 12 frames left out" in e.text for e in events if isinstance(e, Message))


def test_webp_keeps_the_length_when_libwebp_merges_equal_frames(tmp_path):
    pics = colourful(3)
    order = [0, 1, 1, 2]
    w = write_frames(lambda i: pics[order[i]], 4, tmp_path / "m.webp", fps=10)
    frames, ms = read_back(w.path, "webp")
    assert w.frames == 4 and frames == 3 and ms == 400
    assert webp_pictures(w.path)[1] == [100, 200, 100]           # the last frame keeps its own 100 ms


def test_gif_output_rules(clips, tmp_path):
    assert video_suffix("h264", "cat.GIF") == ".gif" and video_suffix("h264", "a.mp4") == ".mp4"
    assert video_suffix("prores", "cat.gif") == ".mov"
    events = []
    check_codec(tmp_path / "a.gif", "h264", 23, events.append)
    assert warnings(events) == ["--crf 23: GIF output has no crf; ignored"]
    # A GIF input painted into a GIF: FFmpeg reads GIFs (as bgra; they are opaque here).
    gif = tmp_path / "in.gif"
    pics = [Image.fromarray(p) for p in colourful(4, 32, 40)]
    pics[0].save(gif, save_all=True, append_images=pics[1:], duration=[70, 30, 50, 120], loop=0)
    events = []
    w = assemble(gif, lambda i: 255 - np.asarray(pics[i]), tmp_path / "out.gif", on_event=events.append)
    assert gif_delays(w.path) == [7, 3, 5, 12] and warnings(events) == []
    with av.open(str(w.path)) as c:
        assert c.streams.video[0].codec_context.name == "gif"


def test_write_lossless_keeps_every_pixel_and_time(tmp_path):
    from stylevid.video import probe
    from stylevid.video.animated import write_lossless

    pics = colourful(4, 30, 41)                     # odd sides: RGB, no chroma subsampling
    assert write_lossless(zip(pics, [40, 100, 130, 25]), tmp_path / "a.mov") == 4
    back = list(read_frames(tmp_path / "a.mov"))
    assert [round(f.time * 1000) for f in back] == [0, 40, 140, 270]
    assert all(np.array_equal(f.image, p) for f, p in zip(back, pics))
    assert probe(tmp_path / "a.mov").duration == pytest.approx(0.295)
    # A constant rate that milliseconds cannot hold (an image sequence at 24000/1001 fps).
    tb = Fraction(1001, 24000)
    write_lossless(zip(pics, [1, 1, 1, 1]), tmp_path / "b.mov", tb)
    with av.open(str(tmp_path / "b.mov")) as c:
        s = c.streams.video[0]
        assert [f.pts * s.time_base for f in c.decode(s)] == [i * tb for i in range(4)]     # exactly
