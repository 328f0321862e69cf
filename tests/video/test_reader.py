from __future__ import annotations

import av
import numpy as np
import pytest

from stylevid.errors import BadInput, InvalidMedia
from stylevid.events import Message
from stylevid.video import count_frames, read_frames
from tests.clips import make_clip, moving_square, truncate
from tests.video.conftest import VFR_PTS


def test_read_native(clips):
    frames = list(read_frames(clips["cfr"]))
    assert len(frames) == 20
    assert [f.index for f in frames] == list(range(20))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert frames[3].time == pytest.approx(0.3)
    # The picture is the one encoded: the white square moves right 2 px a frame.
    ref = moving_square(20, 48, 64)
    assert np.abs(frames[5].image.astype(int) - ref[5]).mean() < 6


def test_read_resized_keeps_aspect(clips):
    frames = list(read_frames(clips["cfr"], size=32))
    assert frames[0].image.shape == (24, 32, 3)


def test_rotation_not_applied(clips):
    # The vfr clip carries rotation 90: pixels stay in coded orientation (64 wide, 48 high).
    frames = list(read_frames(clips["vfr"]))
    assert frames[0].image.shape == (48, 64, 3)


def test_upright_frames_are_turned_as_displayed(clips):
    """Rotation 90 (counter-clockwise to display): upright, the coded frame's right column is the top row."""
    from stylevid.video.reader import to_coded, to_upright, turns

    assert [turns(r) for r in (0, 90, -90, 180, -180, 270, 360)] == [0, 1, 3, 2, 2, 3, 0]
    coded = list(read_frames(clips["vfr"], size=32))
    up = list(read_frames(clips["vfr"], size=32, as_shown=True))
    assert up[0].image.shape == (32, 24, 3)
    assert np.array_equal(up[0].image[0], coded[0].image[:, -1])
    assert [f.pts for f in up] == [f.pts for f in coded]
    for r in (0, 90, -90, 180):
        assert np.array_equal(to_coded(to_upright(coded[0].image, r), r), coded[0].image)


def test_vfr_pts_and_times(clips):
    frames = list(read_frames(clips["vfr"]))
    assert [round(f.time * 1000) for f in frames] == VFR_PTS
    with av.open(str(clips["vfr"])) as c:
        assert [f.pts for f in frames] == [fr.pts for fr in c.decode(video=0)]


def test_window(clips):
    frames = list(read_frames(clips["vfr"], start=0.3, duration=0.4))
    assert [round(f.time * 1000) for f in frames] == [300, 340, 500, 520]   # [0.3, 0.7): 0.3 included
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert count_frames(clips["vfr"], start=0.3, duration=0.4) == 4
    assert count_frames(clips["vfr"]) == 12
    tail = list(read_frames(clips["cfr"], start=1.55))
    assert [round(f.time, 2) for f in tail] == [1.6, 1.7, 1.8, 1.9]


def test_window_past_the_end(clips):
    with pytest.raises(BadInput, match="no frame"):
        list(read_frames(clips["cfr"], start=30))


@pytest.mark.parametrize("kw", [dict(size=-1), dict(start=-1.0), dict(duration=0), dict(start=float("nan"))])
def test_bad_options(clips, kw):
    with pytest.raises(BadInput):
        list(read_frames(clips["cfr"], **kw))


def test_truncated_file_warns_and_yields(clips, tmp_path):
    # Index in front (faststart), data cut short: FFmpeg decodes short *without any error*.
    # Noise does not compress: each frame holds a fair share of the bytes.
    noise = np.random.default_rng(0).integers(0, 256, (20, 48, 64, 3), dtype=np.uint8)
    src = make_clip(tmp_path / "full.mp4", noise, faststart=True)
    cut = truncate(src, tmp_path / "cut.mp4", 0.6)
    events = []
    frames = list(read_frames(cut, on_event=events.append))
    assert 0 < len(frames) < 20
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1
    assert f"decoded {len(frames)} frames" in warnings[0] and "declares 20" in warnings[0]


def test_zero_frames(tmp_path):
    # A valid header and no picture data.
    p = tmp_path / "empty.y4m"
    p.write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\0" * 16)
    with pytest.raises(InvalidMedia, match="no frame decodes"):
        list(read_frames(p))


def test_odd_size(clips):
    frames = list(read_frames(clips["odd"]))
    assert len(frames) == 6 and frames[0].image.shape == (31, 45, 3)


@pytest.mark.parametrize("w, h, size, want", [
    (640, 272, 360, (360, 152)),        # 153 exactly: an even neighbour, so that H.264 stores 4:2:0
    (272, 640, 360, (152, 360)),        # portrait alike
    (1920, 1080, 360, (360, 202)),      # 202.5
    (2048, 1024, 360, (360, 180)),      # a 360 picture stays 2:1
    (45, 31, 60, (60, 42)),             # upscaled alike (41.3)
    (45, 31, 45, (45, 31)),             # the native size stays, odd or not
    (45, 31, 0, (45, 31)),
    (400, 1, 100, (100, 1)),            # a one-pixel side is not made 2
])
def test_scaled_sizes_are_even(w, h, size, want):
    from stylevid.video import scaled_size

    assert scaled_size(w, h, size) == want


def test_an_odd_video_read_scaled_has_even_sides(clips):
    frames = list(read_frames(clips["odd"], size=40))     # 45x31 -> 40x27.6
    assert frames[0].image.shape == (28, 40, 3)


def test_window_in_mpegts_without_index(tmp_path):
    # MPEG-TS has no index: a seek lands on any frame, here never a keyframe (one per 250 frames).
    src = make_clip(tmp_path / "clip.ts", moving_square(20, 48, 64), fps=10)
    frames = list(read_frames(src, start=1.0, duration=0.5))
    assert [round(f.time, 2) for f in frames] == [1.0, 1.1, 1.2, 1.3, 1.4]
    assert count_frames(src, start=1.0, duration=0.5) == 5
    assert len(list(read_frames(src))) == 20


def combed(n: int = 6, h: int = 64, w: int = 96) -> list[np.ndarray]:
    """Interlaced frames of a white bar moving 4 px a frame: the odd lines (the later field) see it
    2 px further on, so a frame read whole shows comb teeth along its vertical edges."""
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 40, np.uint8)
        f[::2, 10 + 4 * i:34 + 4 * i] = 230
        f[1::2, 12 + 4 * i:36 + 4 * i] = 230
        frames.append(f)
    return frames


def comb(image: np.ndarray) -> float:
    """Mean difference between neighbouring lines (0 for the bar drawn whole)."""
    return float(np.abs(np.diff(image.astype(float), axis=0)).mean())


def test_interlaced_video_is_deinterlaced(tmp_path):
    from stylevid.video import probe

    clip = make_clip(tmp_path / "i.mp4", combed(), fps=25, codec_options={"x264-params": "tff=1"})
    assert probe(clip).interlaced
    with av.open(str(clip)) as c:
        raw = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    frames = list(read_frames(clip))
    assert [f.pts for f in frames] == [p for p, _ in raw]                 # one picture per frame, same timestamps
    assert min(comb(r) for _, r in raw) > 6                               # measured 7.9-8.4 (as drawn: 7.9)
    assert max(comb(f.image) for f in frames) < 1, [comb(f.image) for f in frames]   # measured 0.01-0.54
    # A window: the same pictures as in the whole read.
    window = list(read_frames(clip, start=0.08, duration=0.08))
    assert [f.pts for f in window] == [f.pts for f in frames[2:4]]
    assert max(comb(f.image) for f in window) < 1
    # Progressive video goes through untouched.
    plain = make_clip(tmp_path / "p.mp4", combed())
    assert not probe(plain).interlaced
    assert min(comb(f.image) for f in read_frames(plain)) > 6


def test_as_shown_frames_have_square_pixels(tmp_path):
    from fractions import Fraction

    clip = make_clip(tmp_path / "a.mp4", moving_square(2, 32, 32), sar=Fraction(2, 1))
    assert [f.image.shape for f in read_frames(clip, as_shown=True)] == [(32, 64, 3)] * 2
    assert [f.image.shape for f in read_frames(clip, size=32, as_shown=True)] == [(16, 32, 3)] * 2
    assert [f.image.shape for f in read_frames(clip)] == [(32, 32, 3)] * 2
