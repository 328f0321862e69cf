"""Video dream: frame count, timestamps and audio survive; warm frames start from the warped dream."""
from __future__ import annotations

import av
import numpy as np

from stylevid.config import DreamConfig, VideoConfig
from stylevid.pipelines.dream import dream_video
from tests.clips import make_clip, moving_square


def packets(path, kind):
    with av.open(str(path)) as c:
        s = c.streams.audio[0] if kind == "audio" else c.streams.video[0]
        return [(p.pts, bytes(p)) for p in c.demux(s) if p.dts is not None]


def frame_pts(path):
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def test_video_dream_keeps_frames_timestamps_audio(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", moving_square(6, 48, 64, shift=3), fps=10, audio=True)
    out = tmp_path / "out.mp4"
    cfg = DreamConfig(octaves=2, steps=2, size=64)
    dream_video(clip, out, cfg, VideoConfig(size=64, first_iterations=4, iterations=2))
    assert frame_pts(out) == frame_pts(clip)
    assert [b for _, b in packets(out, "audio")] == [b for _, b in packets(clip, "audio")]
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(clip)) as c:
        src = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    # Dreamed: the frames differ from the input, yet stay pictures of it.
    diff = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, src)]
    assert all(d > 1.0 for d in diff)
    assert all(d < 60 for d in diff)


def test_video_dream_resume_is_identical(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", moving_square(5, 48, 64, shift=2), fps=10)
    cfg = DreamConfig(octaves=2, steps=2, size=64)
    v = VideoConfig(size=64, first_iterations=4, iterations=2)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    dream_video(clip, a, cfg, v, keep_work=True)
    # Remove the last two finished frames from the kept work folder: a rerun redoes only those.
    work = next((tmp_path / ".stylevid-work").glob("a.mp4-*"))
    for f in sorted((work / "frames").glob("*.png"))[-2:]:
        f.unlink()
    a.unlink()
    dream_video(clip, a, cfg, v)
    dream_video(clip, b, cfg, v)
    assert a.read_bytes() == b.read_bytes() or _decoded(a) == _decoded(b)


def _decoded(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").tobytes() for f in c.decode(video=0)]


def test_stereo_360_dream_keeps_its_metadata_and_says_the_eyes_differ(tmp_path):
    from stylevid.events import Message
    from stylevid.video import probe
    from stylevid.video.spherical import add_spherical

    clip = make_clip(tmp_path / "in.mp4", moving_square(2, 64, 64, shift=3), fps=10)
    add_spherical(clip, "top-bottom")
    events = []
    out = dream_video(clip, tmp_path / "out.mp4", DreamConfig(octaves=1, steps=1, size=64),
                      VideoConfig(size=64, first_iterations=2, iterations=1), on_event=events.append)
    info = probe(out)
    assert info.spherical and info.stereo == "top-bottom"
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and "stereo 360 (top-bottom)" in warnings[0]
