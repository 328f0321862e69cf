"""Zoom dream: a photo becomes a video whose frames move in and keep dreaming; resumable."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from stylevid.config import DreamConfig, VideoConfig, replace
from stylevid.errors import BadInput, Interrupted
from stylevid.pipelines import video as V
from stylevid.pipelines.dream import dream, dream_zoom, validate, zoom_frame
from tests.cli_helpers import packets
from tests.clips import make_clip, make_sound, moving_square

TINY = DreamConfig(size=64, octaves=2, steps=4, step_size=0.01, jitter=4, device="cpu", zoom_frames=4,
                   zoom=1.2, zoom_steps=1, zoom_fps=10)


def decoded(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(f.pts * s.time_base, f.to_ndarray(format="rgb24")) for f in c.decode(s)]


def kept_frames(folder: Path, out: Path) -> list[np.ndarray]:
    work = next((folder / ".stylevid-work").glob(f"{out.name}-*"))
    return [np.array(Image.open(f)) for f in sorted((work / "frames").glob("*.png"))]


def test_a_zoom_video_moves_in_frame_by_frame(photo, tmp_path):
    out = dream_zoom(photo, tmp_path / "z.mp4", TINY, keep_work=True)
    frames = decoded(out)
    assert [t for t, _ in frames] == [Fraction(k, 10) for k in range(4)]      # 4 frames at 10 fps
    assert frames[0][1].shape == (42, 64, 3)                                  # 80x53 at long edge 64
    kept = kept_frames(tmp_path, out)
    assert len(kept) == 4
    # Each frame is the one before magnified (and dreamed a little): it is much closer to the zoomed
    # previous frame than to the previous frame as it was.
    for a, b in zip(kept, kept[1:]):
        zoomed = zoom_frame(a, TINY).astype(int)
        to_zoom, to_still = np.abs(b - zoomed).mean(), np.abs(b - a.astype(int)).mean()
        assert to_zoom < 0.6 * to_still, (to_zoom, to_still)
    # ... and the dream keeps working: frame k is not just the zoom of frame k-1.
    assert np.abs(kept[1].astype(int) - zoom_frame(kept[0], TINY)).mean() > 1.0
    rec = json.loads((tmp_path / "z.mp4.json").read_text())
    assert rec["frames"] == 4 and rec["fps"] == 10 and rec["config"]["zoom"] == 1.2


def test_zoom_frame_magnifies_about_the_centre():
    a = np.zeros((41, 41, 3), np.uint8)
    a[20, 25] = 255                                        # 5 px right of the centre
    b = zoom_frame(a, DreamConfig(zoom=2.0))
    y, x = np.unravel_index(b[..., 0].argmax(), b.shape[:2])
    assert (y, x) == (20, 30)                              # now 10 px right
    c = zoom_frame(a, DreamConfig(zoom=1.0, zoom_rotate=90.0))
    assert np.unravel_index(c[..., 0].argmax(), c.shape[:2]) == (15, 20)   # turned up (counter-clockwise)


def test_a_stopped_zoom_resumes_to_the_same_video(photo, tmp_path, monkeypatch, stop_after):
    stop_after(2)
    a = tmp_path / "a.mp4"
    with pytest.raises(Interrupted, match="2 finished frames") as e:
        dream_zoom(photo, a, TINY)
    assert e.value.code == 130 and not a.exists()
    monkeypatch.undo()
    redone = []
    save = V.WorkFolder.save
    monkeypatch.setattr(V.WorkFolder, "save", lambda self, t, im: (redone.append(t), save(self, t, im))[1])
    dream_zoom(photo, a, TINY)
    assert redone == [2, 3]
    b = dream_zoom(photo, tmp_path / "b.mp4", TINY)
    assert [f.tobytes() for _, f in decoded(a)] == [f.tobytes() for _, f in decoded(b)]
    assert not (tmp_path / ".stylevid-work").exists()


def test_zoom_refuses_what_it_cannot_make(photo, tmp_path):
    with pytest.raises(BadInput, match="makes a video"):
        dream_zoom(photo, tmp_path / "z.png", TINY)
    Image.fromarray(np.full((40, 80, 3), 90, np.uint8)).save(tmp_path / "pano.png")
    with pytest.raises(BadInput, match="360 picture"):
        dream_zoom(tmp_path / "pano.png", tmp_path / "p.mp4", TINY)
    clip = make_clip(tmp_path / "v.mp4", moving_square(2))
    with pytest.raises(BadInput, match="video already"):
        dream(clip, tmp_path / "o.mp4", TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pano.png", "v.mp4"]


@pytest.mark.parametrize("field, value, words", [
    ("zoom_frames", -1, "--zoom-frames"), ("zoom", 0.2, "--zoom"), ("zoom", float("nan"), "--zoom"),
    ("zoom_rotate", 90.0, "--zoom-rotate"), ("zoom_steps", -1, "--zoom-steps"), ("zoom_fps", 0, "--fps")])
def test_bad_zoom_options_are_refused(field, value, words):
    with pytest.raises(BadInput, match=words):
        validate(replace(DreamConfig(), **{field: value}))


def test_cli_zoom(photo, tmp_path):
    from typer.testing import CliRunner

    from stylevid.cli import app

    out = tmp_path / "c.mp4"
    res = CliRunner().invoke(app, ["dream", str(photo), "-o", str(out), "--zoom-frames", "3", "--size", "48",
                                   "--octaves", "1", "--steps", "1", "--zoom-steps", "1", "--fps", "12",
                                   "--zoom-rotate", "3", "-q", "--audio", str(make_sound(tmp_path / "m.mp3", 2.0, "libmp3lame"))])
    assert res.exit_code == 0, res.output
    assert [t for t, _ in decoded(out)] == [Fraction(k, 12) for k in range(3)]
    # Music under the zoom, cut with its frames (3 at 12 fps: 0.25 s).
    from stylevid.video import probe
    assert [a.codec for a in probe(out).audio] == ["mp3"]
    assert 0.2 < packets(out, "audio")[-1][1] < 0.25
    res = CliRunner().invoke(app, ["dream", str(photo), "-o", str(tmp_path / "d.mp4"), "--zoom-frames", "3",
                                   "--zoom", "9"])
    assert res.exit_code == 2 and "--zoom" in res.output


def test_video_options_for_a_zoom_are_said_to_be_ignored(photo, tmp_path):
    said = []
    dream(photo, tmp_path / "z.mp4", replace(TINY, zoom_frames=1), VideoConfig(start=1.0), on_event=said.append)
    assert any("--start" in getattr(e, "text", "") for e in said)


def test_a_longer_zoom_continues_a_kept_one(photo, tmp_path, monkeypatch):
    dream_zoom(photo, tmp_path / "z.mp4", replace(TINY, zoom_frames=2), keep_work=True)
    save = V.WorkFolder.save
    painted = []
    monkeypatch.setattr(V.WorkFolder, "save", lambda self, t, im: (painted.append(t), save(self, t, im))[1])
    out = dream_zoom(photo, tmp_path / "z.mp4", replace(TINY, zoom_frames=4), overwrite=True)
    assert painted == [2, 3] and len(decoded(out)) == 4


def test_a_zoom_in_prores_goes_in_a_mov(photo, tmp_path, monkeypatch):
    from stylevid.video import probe

    monkeypatch.chdir(tmp_path)
    out = dream_zoom(photo, None, replace(TINY, zoom_frames=2), codec="prores")
    assert out.suffix == ".mov" and probe(out).codec == "prores"
    with pytest.raises(BadInput, match="ProRes goes in a .mov or .mkv file"):
        dream_zoom(photo, tmp_path / "z.mp4", replace(TINY, zoom_frames=2), codec="prores")


def test_a_zoom_as_numbered_pictures_is_the_zoom_video_frame_for_frame(photo, tmp_path):
    (tmp_path / "zoom").mkdir()
    out = dream_zoom(photo, tmp_path / "zoom" / "z_%03d.png", TINY, keep_work=True)
    assert sorted(p.name for p in (tmp_path / "zoom").iterdir() if p.name != ".stylevid-work") == [
        "z.json", "z_001.png", "z_002.png", "z_003.png", "z_004.png"]
    kept = kept_frames(tmp_path / "zoom", out)
    pictures = [np.array(Image.open(tmp_path / "zoom" / f"z_{k:03d}.png")) for k in range(1, 5)]
    assert all(np.array_equal(a, b) for a, b in zip(kept, pictures))       # the frames themselves, lossless
    assert json.loads((tmp_path / "zoom" / "z.json").read_text())["frames"] == 4
    with pytest.raises(Exception, match="pictures of this pattern exist"):
        dream_zoom(photo, tmp_path / "zoom" / "z_%03d.png", TINY)
