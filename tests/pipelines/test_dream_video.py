"""Video dream: frame count, timestamps and audio survive; warm frames start from the warped dream."""
from __future__ import annotations

import json

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


def test_stereo_360_dream_is_dreamed_eye_by_eye(tmp_path):
    """A top-bottom stereo 360 clip with identical eyes: the right eye starts from the left eye's
    dream warped by the disparity flow, so the eyes stay alike; dreamed as one picture they differ."""
    from stylevid.events import Message
    from stylevid.video import probe, read_frames
    from stylevid.video.spherical import add_spherical

    rng = np.random.default_rng(0)
    eye = np.repeat(np.repeat(rng.integers(0, 255, (8, 16, 3), dtype=np.uint8), 4, 0), 4, 1)   # 32x64, 2:1
    clip = make_clip(tmp_path / "in.mp4", [np.concatenate([np.roll(eye, 2 * i, 1)] * 2, 0) for i in range(3)],
                     fps=10)
    cfg, v = DreamConfig(octaves=1, steps=4, size=0, step_size=0.02), VideoConfig(size=0, first_iterations=4,
                                                                                   iterations=2)
    one = dream_video(clip, tmp_path / "one.mp4", cfg, v, projection="equirect", stereo="none")
    add_spherical(clip, "top-bottom")
    events = []
    out = dream_video(clip, tmp_path / "out.mp4", cfg, v, on_event=events.append)
    info = probe(out)
    assert info.spherical and info.stereo == "top-bottom"
    assert any(isinstance(e, Message) and "each eye is dreamed on its own" in e.text for e in events)
    assert not [e for e in events if isinstance(e, Message) and e.level == "warning"]

    def eyes_apart(path):
        return [np.abs(np.subtract(*np.split(f.image.astype(float), 2, axis=0))).mean() for f in read_frames(path)]

    stereo, mono = eyes_apart(out), eyes_apart(one)
    assert max(stereo) < 0.5 * min(mono), (stereo, mono)      # measured 4.3-6.0 vs 17.4-23.1


def test_a_mask_drawn_over_a_whole_stereo_frame_is_split_into_its_eyes():
    from stylevid.pipelines.dream import eye_mask

    m = np.zeros((64, 64), np.float32)
    m[:32, :16] = 1                                          # drawn over the stacked frame, top eye
    assert eye_mask(m, "top-bottom", 1280, 1280).shape == (32, 64)
    assert eye_mask(m[:32], "top-bottom", 1280, 1280).shape == (32, 64)      # drawn for one eye: as is
    assert eye_mask(np.zeros((32, 128)), "left-right", 2560, 640).shape == (32, 64)


def test_stereo_option_for_a_video_without_metadata(tmp_path):
    """--stereo names the layout of a video whose metadata does not (most stereo files carry none);
    none dreams it as one picture."""
    from stylevid.events import Message
    from stylevid.pipelines.dream import dream

    clip = make_clip(tmp_path / "in.mp4", moving_square(2, 48, 64, shift=3), fps=10)
    for stereo in ("top-bottom", "none"):
        said = []
        out = dream(clip, tmp_path / f"{stereo}.mp4", DreamConfig(octaves=1, steps=1, size=64),
                    VideoConfig(size=64, first_iterations=1, iterations=1), stereo=stereo, on_event=said.append)
        assert json.loads(out.with_name(out.name + ".json").read_text())["stereo"] == ("" if stereo == "none" else stereo)
        eye_by_eye = [e.text for e in said if isinstance(e, Message) and "each eye is dreamed on its own" in e.text]
        assert eye_by_eye == (["in.mp4: stereo (top-bottom: --stereo top-bottom): each eye is dreamed on its own, "
                               "the right eye from the left one warped by the disparity flow between them"]
                              if stereo != "none" else [])


def test_an_animated_gif_is_dreamed_as_a_video_and_a_still_one_as_a_photo(tmp_path, monkeypatch):
    from PIL import Image

    from stylevid.pipelines.dream import dream, is_video

    pics = [Image.fromarray(f) for f in moving_square(3, 48, 64, shift=3)]
    pics[0].save(tmp_path / "a.gif", save_all=True, append_images=pics[1:], duration=[100, 50, 100], loop=0)
    pics[0].save(tmp_path / "still.gif")
    assert is_video(tmp_path / "a.gif") and not is_video(tmp_path / "still.gif")
    (tmp_path / "render").mkdir()
    assert is_video(tmp_path / "render") and is_video(tmp_path / "render" / "f_%04d.png")   # image sequences
    monkeypatch.chdir(tmp_path)
    out = dream(tmp_path / "a.gif", None, DreamConfig(octaves=1, steps=2, size=64),
                VideoConfig(size=64, first_iterations=2, iterations=1))
    assert out.name == "a_dream.gif" and Image.open(out).n_frames == 3
