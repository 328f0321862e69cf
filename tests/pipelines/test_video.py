"""The video pipeline end to end (``stylevid video``): what goes in comes out (frames, timestamps,
rotation, audio), resuming after a stop gives the very same video, the lock, shot cuts, flicker.

Tiny clips (≤ 48 px, ≤ 7 frames) and 2-3 iterations: the machines are small and shared.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylevid.files import exclusive
from stylevid.pipelines import video as V
from stylevid.pipelines.flicker import flicker
from stylevid.video import probe
from tests.cli_helpers import (FAST_VIDEO, decoded, finished_frames, invoke, leftovers, one_error_line, packets,
                               fill, sha256, small_style, spawn, tiny_disk, video_times, wait_for, work_folders)
from tests.clips import make_clip, make_sound, moving_square

VFR_PTS = [0, 40, 100, 130, 300, 340]   # milliseconds: variable frame rate
N = len(VFR_PTS)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """A 6-frame VFR clip with AAC audio and rotation 90, and one uninterrupted run on it."""
    d = tmp_path_factory.mktemp("video")
    clip = make_clip(d / "clip.mp4", moving_square(N, 32, 48, shift=2), pts=VFR_PTS, audio=0.6, rotation=90)
    style = small_style(d / "style.png")
    out = d / "ref.mp4"
    r = invoke("video", clip, "-s", style, "-o", out, "--preview", "--keep-work", *FAST_VIDEO)
    assert r.exit_code == 0, r.stderr
    return {"dir": d, "clip": clip, "style": style, "out": out, "result": r,
            "frames": decoded(out), "sha": sha256(out)}


def run(ref, out, *extra):
    return invoke("video", ref["clip"], "-s", ref["style"], "-o", out, *FAST_VIDEO, *extra)


def reuse_frames(ref, out):
    """Give ``out`` the reference run's finished frames (same input, styles and settings, so the
    same work-folder key): a run on ``out`` then goes straight to the final mux."""
    src = work_folders(ref["out"])[0]
    shutil.copytree(src, out.parent / ".stylevid-work" / (out.name + src.name[len(ref["out"].name):]))


def lock_files(folder):
    return sorted(Path(folder).rglob("*.lock"))


def pix_fmt(path) -> str:
    import av

    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.pix_fmt


# -- what goes in comes out ------------------------------------------------------------------------

def test_cli_prints_only_the_output_path(ref):
    assert ref["result"].stdout == f"{ref['out']}\n"


def test_frame_count_and_timestamps_kept(ref):
    assert len(ref["frames"]) == N
    assert video_times(ref["out"]) == video_times(ref["clip"]) == [Fraction(p, 1000) for p in VFR_PTS]


def test_audio_packets_copied_bit_exact(ref):
    src = packets(ref["clip"], "audio")
    assert src and packets(ref["out"], "audio") == src


def test_rotation_kept(ref):
    assert probe(ref["out"]).rotation == probe(ref["clip"]).rotation == 90


def test_frames_are_stylized_at_the_working_size(ref):
    first = ref["frames"][0]
    assert first.shape == (32, 48, 3)
    content = moving_square(1, 32, 48, shift=2)[0].astype(int)
    assert np.abs(first.astype(int) - content).mean() > 3      # painted, not copied


def test_sidecar_and_preview(ref):
    side = json.loads(ref["out"].with_name("ref.mp4.json").read_text())
    assert side["frames"] == N and side["shots"] == [0]
    assert side["audio"] == ["copy"] and side["rotation"] == 90
    assert side["video"]["iterations"] == 2 and side["video"]["first_iterations"] == 3
    sheet = Image.open(ref["out"].with_suffix(".preview.png"))
    assert sheet.size[1] == 2 * 48 and sheet.size[0] % 32 == 0    # inputs above, outputs below, upright


def test_the_work_folder_keeps_no_flows_of_finished_frames(ref):
    # They were 1.7 MB a frame at 640x360 (the painted PNG: 0.25 MB): 88 % of a work folder.
    folder = work_folders(ref["out"])[0]
    assert (folder / "flows").is_dir() and not list(folder.rglob("flow_*.npz"))


def test_too_little_disk_for_the_work_folder_is_said_before_painting(ref, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5000, 5000))
    r = run(ref, tmp_path / "o.mp4", "--duration", "0.05")
    assert r.exit_code == 0, r.stderr
    assert "the work folder takes about 50 kB (2 painted frames of 32x48 kept until the video is written), " \
           "but 5 kB are free there" in " ".join(r.stderr.split())
    monkeypatch.undo()
    r = run(ref, tmp_path / "o2.mp4", "--duration", "0.05")
    assert "the work folder takes" not in r.stderr


def test_keep_work_keeps_every_finished_frame(ref):
    assert len(finished_frames(ref["out"])) == N


def test_even_size_is_encoded_yuv420p(ref):
    assert pix_fmt(ref["out"]) == "yuv420p"


def test_odd_size_and_time_window(tmp_path, ref):
    clip = make_clip(tmp_path / "odd.mp4", moving_square(8, 31, 45), fps=10, audio=0.8)   # mpeg4, odd sides
    out = tmp_path / "odd_out.mp4"
    verbose = [a for a in FAST_VIDEO if a != "--quiet"]
    r = invoke("video", clip, "-s", ref["style"], "-o", out, "--start", "0.2", "--duration", "0.4",
               *verbose, "--size", "0", "--keep-work")
    assert r.exit_code == 0, r.stderr
    frames = decoded(out)
    assert len(frames) == 4                                         # frames at 0.2, 0.3, 0.4, 0.5 s
    assert frames[0].shape[:2] == (31, 45)                          # the input's exact size
    assert pix_fmt(out) == "yuv444p"                                # H.264 4:2:0 cannot store odd sides
    said = [ln for ln in r.stderr.splitlines() if "4:4:4" in ln]
    assert len(said) == 1 and "45x31" in said[0] and "yuv420p" in said[0]      # the trade-off, said once
    painted = [np.array(Image.open(f)) for f in finished_frames(out)]
    assert all(np.abs(a.astype(int) - b).mean() < 3 for a, b in zip(frames, painted))   # not shifted or cut
    assert video_times(out) == [Fraction(k, 10) for k in range(4)]  # the window starts at 0
    shift = Fraction(2, 10)
    kept = [(b, t - shift) for b, t in packets(clip, "audio") if shift <= t < Fraction(6, 10)]
    assert kept and packets(out, "audio") == kept                   # audio cut to match, same bytes


# -- stop and resume -------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                                (signal.SIGHUP, 129, "SIGHUP")])
def test_signal_stops_at_a_frame_boundary_with_a_resume_hint(ref, tmp_path, stop_after, signum, code, name):
    out = tmp_path / "stopped.mp4"
    stop_after(2, signum)
    check_stopped(run(ref, out), out, code, 2, name)


def check_stopped(r, out: Path, code: int, frames: int, *words) -> None:
    """A stopped run: its exit code, one error line with the resume hint, no output and no temporary
    file, ``frames`` finished frames kept, and no lock file (it goes with the run)."""
    assert r.exit_code == code, r.stderr
    one_error_line(r.stderr, out, *words, f"{frames} finished frames", "run the same command again to resume")
    assert not out.exists() and not leftovers(out.parent, out.name)
    assert len(finished_frames(out)) == frames and not lock_files(out.parent)


def test_resume_gives_the_same_video_as_an_uninterrupted_run(ref, tmp_path, stop_after, monkeypatch):
    out = tmp_path / "resumed.mp4"
    stop_after(3)
    assert run(ref, out).exit_code == 130
    monkeypatch.undo()
    done = []
    save = V.WorkFolder.save
    monkeypatch.setattr(V.WorkFolder, "save", lambda self, t, im: (done.append(t), save(self, t, im))[1])
    r = run(ref, out)
    assert r.exit_code == 0, r.stderr
    assert done == list(range(3, N))                    # frames 0-2 were not redone
    assert sha256(out) == ref["sha"]               # bit-identical file
    assert all(np.array_equal(a, b) for a, b in zip(decoded(out), ref["frames"]))
    assert not work_folders(out)                   # cleaned after success
    assert not (tmp_path / ".stylevid-work").exists()   # lock file and folder too


def test_second_ctrl_c_stops_at_once_and_keeps_checkpoints(ref, tmp_path, stop_after, monkeypatch):
    out = tmp_path / "twice.mp4"
    stop_after(2, signal.SIGINT, times=2)
    r = run(ref, out)
    assert r.exit_code == 130, r.stderr
    one_error_line(r.stderr, out, "stopped at once by a second Ctrl-C", "2 finished frames",
                   "run the same command again to resume")
    assert len(finished_frames(out)) == 2
    assert not out.exists() and not leftovers(tmp_path, out.name) and not lock_files(tmp_path)
    monkeypatch.undo()
    assert run(ref, out).exit_code == 0
    assert sha256(out) == ref["sha"]


def test_restart_discards_finished_frames(ref, tmp_path, stop_after, monkeypatch):
    out = tmp_path / "restart.mp4"
    stop_after(2)
    assert run(ref, out).exit_code == 130
    monkeypatch.undo()
    done = []
    save = V.WorkFolder.save
    monkeypatch.setattr(V.WorkFolder, "save", lambda self, t, im: (done.append(t), save(self, t, im))[1])
    r = run(ref, out, "--restart")
    assert r.exit_code == 0, r.stderr
    assert done == list(range(N))
    assert sha256(out) == ref["sha"]


def test_a_corrupted_finished_frame_is_redone(ref, tmp_path, stop_after, monkeypatch):
    out = tmp_path / "corrupt.mp4"
    stop_after(3)
    assert run(ref, out).exit_code == 130
    frame1 = finished_frames(out)[1]
    frame1.write_bytes(frame1.read_bytes()[:50])          # a truncated frame file
    monkeypatch.undo()
    assert run(ref, out).exit_code == 0
    # Frame 1 alone is painted again (frame 2 is intact), its flows computed again (a finished
    # frame's are not kept), on a thread whose DIS object other tests used at other sizes first.
    assert sha256(out) == ref["sha"]


def test_input_changed_between_a_run_and_its_resume_starts_over(ref, tmp_path, stop_after, monkeypatch):
    clip = make_clip(tmp_path / "changing.mp4", moving_square(N, 32, 48, shift=2), fps=10)
    out = tmp_path / "changing_out.mp4"
    args = ("video", clip, "-s", ref["style"], "-o", out, *FAST_VIDEO)
    stop_after(2)
    assert invoke(*args).exit_code == 130
    monkeypatch.undo()
    make_clip(clip, moving_square(N, 32, 48, shift=3), fps=10)        # the input is replaced
    done = []
    save = V.WorkFolder.save
    monkeypatch.setattr(V.WorkFolder, "save", lambda self, t, im: (done.append(t), save(self, t, im))[1])
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    assert done == list(range(N))                                       # nothing of the old input reused
    warning = [ln for ln in r.stderr.splitlines() if "changed since an earlier run" in ln]
    assert len(warning) == 1 and "2 finished frames" in warning[0]
    assert not work_folders(out)


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                                (signal.SIGHUP, 129, "SIGHUP")])
def test_signal_during_the_final_mux_stops_it_at_once(ref, tmp_path, monkeypatch, signum, code, name):
    import stylevid.video.writer as W

    out = tmp_path / "mux.mp4"
    reuse_frames(ref, out)
    to_frame, encoded = W._to_frame, []

    def encoding(*a):
        encoded.append(1)
        if len(encoded) == 2:
            os.kill(os.getpid(), signum)                 # the signal lands inside the mux, at frame 2
        return to_frame(*a)

    monkeypatch.setattr(W, "_to_frame", encoding)
    check_stopped(run(ref, out), out, code, N, name, "during the final mux")   # its temporary file removed
    assert len(encoded) == 2                             # not one frame more was encoded
    monkeypatch.undo()
    r = run(ref, out)
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == ref["sha"]


def test_no_lock_file_is_left_after_success_or_an_error(ref, tmp_path, monkeypatch):
    from stylevid.errors import WriteFailed

    assert not lock_files(ref["dir"]) and work_folders(ref["out"])      # success (--keep-work: frames kept)
    out = tmp_path / "failing.mp4"
    save = V.WorkFolder.save

    def failing(self, t, image):
        if t == 1:
            raise WriteFailed(f"{self.path(t)}: disk full")
        return save(self, t, image)

    monkeypatch.setattr(V.WorkFolder, "save", failing)
    r = run(ref, out)
    assert r.exit_code == 7, r.stderr
    assert not lock_files(tmp_path) and len(finished_frames(out)) == 1


def test_a_second_run_on_the_same_output_is_refused(ref, tmp_path):
    out = tmp_path / "locked.mp4"
    (tmp_path / ".stylevid-work").mkdir()
    with exclusive(tmp_path / ".stylevid-work" / "locked.mp4.lock", str(out)):   # what a running job holds
        r = run(ref, out)
    assert r.exit_code == 6
    one_error_line(r.stderr, out, "another stylevid run")
    assert not out.exists()


def test_default_output_name(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("video", ref["clip"], "-s", ref["style"], *FAST_VIDEO, "--duration", "0.05")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "clip_style.mp4\n" and (tmp_path / "clip_style.mp4").is_file()


def test_a_gif_is_painted_into_a_gif_with_its_frame_delays(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pics = [Image.fromarray(f) for f in moving_square(4, 32, 40, shift=3)]
    pics[0].save(tmp_path / "cat.gif", save_all=True, append_images=pics[1:], duration=[80, 40, 120, 60], loop=0)
    r = invoke("video", tmp_path / "cat.gif", "-s", ref["style"], *FAST_VIDEO)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "cat_style.gif\n"
    out = Image.open(tmp_path / "cat_style.gif")
    delays = []
    for k in range(out.n_frames):
        out.seek(k)
        delays.append(out.info["duration"])
    assert delays == [80, 40, 120, 60] and out.size == (40, 32)
    # The same clip as a looping WebP, asked for by name, with the clip's audio named as left out.
    r = invoke("video", ref["clip"], "-s", ref["style"], "-o", tmp_path / "clip.webp", *FAST_VIDEO[:-1])
    assert r.exit_code == 0, r.stderr
    assert "holds only pictures: input 1 (audio) not copied" in r.stderr
    assert Image.open(tmp_path / "clip.webp").n_frames == N


def test_an_animated_webp_is_read_through_pillow_and_stays_a_webp(ref, tmp_path, monkeypatch):
    """FFmpeg's WebP decoder reads only still pictures: an animated one is decoded by Pillow."""
    monkeypatch.chdir(tmp_path)
    pics = [Image.fromarray(f) for f in moving_square(4, 32, 40, shift=3)]
    pics[0].save(tmp_path / "cat.webp", save_all=True, append_images=pics[1:], duration=[80, 40, 120, 60],
                 loop=0, lossless=True)
    r = invoke("video", tmp_path / "cat.webp", "-s", ref["style"], *FAST_VIDEO[:-1], "--keep-work")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "cat_style.webp\n" and "an animated WebP of 4 frames" in r.stderr
    out = Image.open(tmp_path / "cat_style.webp")
    assert out.n_frames == 4 and out.size == (40, 32)
    from stylevid.video.animated import read_back
    assert read_back(tmp_path / "cat_style.webp", "webp") == (4, 300)
    # Painted from the animation's frames: each follows its own picture's square.
    painted = []
    for k in range(4):
        out.seek(k)
        painted.append(np.asarray(out.convert("RGB")).astype(int))
    assert all(np.abs(painted[k] - painted[k + 1]).mean() > 1 for k in range(3))
    # stylevid flicker reads both WebPs the same way.
    assert 0 < flicker(tmp_path / "cat_style.webp", tmp_path / "cat.webp")["mean"] < 1
    # Run again: the work folder is keyed by the WebP itself, not by its temporary copy.
    r = invoke("video", tmp_path / "cat.webp", "-s", ref["style"], *FAST_VIDEO[:-1], "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert "resuming: 4 finished frames found" in r.stderr


def test_an_image_sequence_is_a_video_at_its_fps(ref, tmp_path, monkeypatch):
    """A folder of numbered pictures (or a frame_%04d.png pattern), as renderers and the old
    research scripts write them: painted in number order at --fps, resumable, measurable."""
    monkeypatch.chdir(tmp_path)
    render = tmp_path / "render"
    render.mkdir()
    pics = moving_square(5, 32, 40, shift=3)
    for n, pic in zip((1, 2, 3, 9, 10), pics):             # 4-8 missing; 10 after 9, not after 1
        Image.fromarray(pic).save(render / f"frame_{n}.png")
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO[:-1], "--fps", "12.5", "--keep-work")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "render_style.mp4\n"
    assert "5 pictures (frame_1.png to frame_10.png) at 12.5 fps" in r.stderr
    assert "pictures numbered 4-8 are missing" in r.stderr
    assert video_times(tmp_path / "render_style.mp4") == [Fraction(k, 25) * 2 for k in range(5)]
    # Read in number order (frame_10 last, not after frame_1), every pixel as it was.
    from stylevid.video import read_frames
    with V.readable(render, fps=12.5) as src:
        got = [f.image for f in read_frames(src)]
    assert len(got) == 5 and all(np.array_equal(g, p) for g, p in zip(got, pics))
    # Keyed by the pictures and the rate: the same command resumes; another --fps starts over.
    r = invoke("video", render / "frame_%d.png", "-s", ref["style"], *FAST_VIDEO[:-1], "--fps", "12.5",
               "-o", "render_style.mp4", "--overwrite")
    assert r.exit_code == 0 and "resuming: 5 finished frames found" in r.stderr
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO[:-1], "--fps", "25", "--overwrite")
    assert r.exit_code == 0 and "resuming" not in r.stderr
    # stylevid flicker takes the folder as the reference (at the rate in the output's sidecar).
    assert 0 < flicker(tmp_path / "render_style.mp4", render)["mean"] < 1
    # Pictures of two sizes are refused, naming both.
    Image.fromarray(pics[0][:30]).save(render / "frame_11.png")
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO, "--overwrite")
    assert r.exit_code == 2 and "frame_11.png: 40x30, but frame_1.png is 40x32" in r.stderr


def test_an_image_sequence_gets_its_soundtrack(ref, tmp_path, monkeypatch):
    """--audio: a render's pictures and its mixdown, laid out from time 0 together, come out as one
    video in sync (from --start on too); outputs that hold no sound are refused before painting."""
    monkeypatch.chdir(tmp_path)
    render = tmp_path / "render"
    render.mkdir()
    for n, pic in enumerate(moving_square(6, 32, 40, shift=3), 1):
        Image.fromarray(pic).save(render / f"f_{n:04d}.png")
    song = make_sound(tmp_path / "mix.flac", 2.0, codec="flac")
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO[:-1], "--fps", "10", "--start", "0.2",
               "--audio", song, "-o", "painted.mkv", "--keep-work")
    assert r.exit_code == 0, r.stderr
    assert video_times(tmp_path / "painted.mkv") == [Fraction(k, 10) for k in range(4)]
    got = packets(tmp_path / "painted.mkv", "audio")
    src = [(b, t - Fraction(1, 5)) for b, t in packets(song, "audio") if t >= Fraction(1, 5)]
    assert got and [b for b, _ in got] == [b for b, _ in src[:len(got)]]
    assert all(abs(t - u) < 0.002 for (_, t), (_, u) in zip(got, src))
    assert got[-1][1] < Fraction(2, 5) <= src[len(got)][1]          # cut with the last frame (0.3 + 0.1 s)
    side = json.loads((tmp_path / "painted.mkv.json").read_text())
    assert side["soundtrack"] == str(song) and side["audio"] == ["copy"]
    # The soundtrack does not key the work folder: another one only muxes again.
    other = make_sound(tmp_path / "other.wav", 1.0)
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO[:-1], "--fps", "10", "--start", "0.2",
               "--audio", other, "-o", "painted.mkv", "--overwrite")
    assert r.exit_code == 0 and "resuming: 4 finished frames found" in r.stderr
    # Refused in one line, before a frame is painted: pictures or a GIF hold no sound; a file without sound.
    (tmp_path / "pics").mkdir()
    for out, audio, why in (("pics/f_%04d.png", song, "numbered pictures hold no sound"),
                            ("p.gif", song, "a GIF holds no sound"),
                            ("p.mp4", render / "f_0001.png", "holds no audio stream")):
        r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO, "--audio", audio, "-o", out)
        assert r.exit_code == 2, r.stderr
        one_error_line(r.stderr, why)
    assert not list(tmp_path.glob("p.*")) and not list((tmp_path / "pics").iterdir())
    assert len(work_folders(tmp_path / "painted.mkv")) == 0


def test_frames_out_as_numbered_pictures(ref, tmp_path, monkeypatch):
    """-o painted/f_%04d.png: the painted frames as pictures, numbered like the input sequence's
    (in the window) or from 1; sound named as not kept; existing pictures need --overwrite."""
    monkeypatch.chdir(tmp_path)
    render = tmp_path / "render"
    render.mkdir()
    for n, pic in zip(range(7, 12), moving_square(5, 32, 40, shift=3)):
        Image.fromarray(pic).save(render / f"in_{n:03d}.png")
    (tmp_path / "painted").mkdir()
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO, "--fps", "10", "--start", "0.2",
               "-o", "painted/f_%04d.png")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "painted/f_%04d.png\n"
    assert sorted(p.name for p in (tmp_path / "painted").iterdir()) == ["f.json", "f_0009.png", "f_0010.png",
                                                                        "f_0011.png"]
    assert Image.open(tmp_path / "painted" / "f_0009.png").size == (40, 32)
    # The window's frames: the same pictures as the video of that window.
    r = invoke("video", render, "-s", ref["style"], *FAST_VIDEO, "--fps", "10", "--start", "0.2", "-o", "w.mp4")
    assert r.exit_code == 0, r.stderr
    video = decoded(tmp_path / "w.mp4")
    assert np.abs(video[0].astype(int) - np.asarray(Image.open(tmp_path / "painted" / "f_0009.png"))).mean() < 4
    # A clip with sound: numbered from 1, the sound named; then refused without --overwrite.
    r = invoke("video", ref["clip"], "-s", ref["style"], "-o", "painted/f_%04d.png", *FAST_VIDEO[:-1], "--overwrite")
    assert r.exit_code == 0 and "pictures hold no sound" in r.stderr
    assert "older pictures of this pattern are left as they were (numbers 9 to 11)" in r.stderr
    assert (tmp_path / "painted" / "f_0001.png").is_file() and (tmp_path / "painted" / f"f_{N:04d}.png").is_file()
    r = run(ref, Path("painted/f_%04d.png"))
    assert r.exit_code == 6 and "pictures of this pattern exist" in r.stderr


def test_existing_output_is_refused_and_kept(ref, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    r = run(ref, out)
    assert r.exit_code == 6
    one_error_line(r.stderr, out, "--overwrite")
    assert out.read_bytes() == b"keep me"


# -- temporal consistency ----------------------------------------------------------------------------

def test_temporal_run_flickers_less_than_independent_frames(ref, tmp_path):
    # From noise (Gatys' own start), each independent frame grows its own texture: the baseline
    # flickers; the temporal run starts from the previous output warped by flow.
    means = {}
    for name, extra in (("temporal", ()), ("independent", ("--temporal-weight", "0", "--no-warm-start"))):
        out = tmp_path / f"{name}.mp4"
        r = run(ref, out, "--init", "noise", *extra)
        assert r.exit_code == 0, r.stderr
        means[name] = flicker(out, ref["clip"])["mean"]
    assert means["temporal"] < means["independent"] / 4, means


def test_a_scene_cut_starts_a_new_shot(ref, tmp_path):
    a = moving_square(4, 32, 48, shift=2)
    rng = np.random.default_rng(1)
    blocks = (rng.random((4, 6, 3)) * 255).astype(np.uint8)
    other = np.kron(blocks, np.ones((8, 8, 1), np.uint8))               # a different shot: coloured blocks
    b = [np.roll(other, k, axis=1) for k in range(3)]
    clip = make_clip(tmp_path / "cut.mp4", a + b, fps=10)
    out = tmp_path / "cut_out.mp4"
    r = invoke("video", clip, "-s", ref["style"], "-o", out, *FAST_VIDEO)
    assert r.exit_code == 0, r.stderr
    side = json.loads(out.with_name("cut_out.mp4.json").read_text())
    assert side["shots"] == [0, 4]


# -- the flicker command -------------------------------------------------------------------------------

def test_flicker_cli_prints_a_number_and_writes_csv_and_png(ref, tmp_path):
    csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    r = invoke("flicker", ref["out"], "--reference", ref["clip"], "--csv", csv, "--plot", png, "-q")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert float(lines[0]) >= 0 and lines[1:] == [str(csv), str(png)]
    rows = csv.read_text().splitlines()
    assert rows[0] == "pair,warping_error" and len(rows) == N
    assert abs(np.mean([float(x.split(",")[1]) for x in rows[1:]]) - float(lines[0])) < 1e-5
    assert Image.open(png).format == "PNG"


# -- faults: kill -9, real signals, disk full ------------------------------------------------------------

# In a real process, slow the final mux down (0.3 s a frame) so that a kill lands inside it, or
# the frames (1 s pause after each is saved) so that a signal or a second run lands among them.
SLOW_MUX = ("import time, stylevid.video.writer as w\n_f = w._to_frame\n"
            "w._to_frame = lambda *a: (time.sleep(0.3), _f(*a))[1]\n")
SLOW_FRAMES = ("import time, stylevid.pipelines.video as v\n_s = v.WorkFolder.save\n"
               "v.WorkFolder.save = lambda *a: (_s(*a), time.sleep(1))[0]\n")


def test_kill_9_during_frames_and_during_the_final_mux_then_rerun_is_bit_identical(ref, tmp_path):
    out = tmp_path / "killed.mp4"
    args = ("video", ref["clip"], "-s", ref["style"], "-o", out, *FAST_VIDEO)
    # 1. kill -9 while frames are being painted, after two are finished. Meanwhile a second run
    #    on the same output is refused by the lock and the first one goes on.
    p = spawn(*args, prelude=SLOW_FRAMES)
    try:
        wait_for(lambda: len(finished_frames(out)) >= 2, p)
        r = invoke(*args)
        assert r.exit_code == 6 and "another stylevid run" in r.stderr
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
    assert not out.exists()
    # 2. the same command, killed -9 in the middle of the final mux (a temporary file exists).
    p = spawn(*args, prelude=SLOW_MUX)
    try:
        wait_for(lambda: leftovers(tmp_path, out.name), p)
        time.sleep(0.3)
    finally:
        p.kill()
        p.wait()
    assert not out.exists()
    assert len(finished_frames(out)) == N
    # 3. the same command again: every frame once, bit-identical to the uninterrupted run.
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    assert video_times(out) == video_times(ref["clip"])
    assert sha256(out) == ref["sha"]
    assert not leftovers(tmp_path, out.name) and not work_folders(out)


def test_real_ctrl_c_exits_130_with_a_resume_hint(ref, tmp_path):
    out = tmp_path / "ctrlc.mp4"
    args = ("video", ref["clip"], "-s", ref["style"], "-o", out, *FAST_VIDEO)
    p = spawn(*args, prelude=SLOW_FRAMES)
    try:
        wait_for(lambda: len(finished_frames(out)) >= 1, p)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    one_error_line(stderr, out, "Ctrl-C", "run the same command again to resume")
    assert stdout == "" and not out.exists()
    kept = len(finished_frames(out))
    assert kept >= 1
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == ref["sha"]


def test_real_sigterm_during_the_final_mux_exits_143_then_rerun_is_bit_identical(ref, tmp_path):
    out = tmp_path / "muxterm.mp4"
    reuse_frames(ref, out)
    args = ("video", ref["clip"], "-s", ref["style"], "-o", out, *FAST_VIDEO)
    p = spawn(*args, prelude=SLOW_MUX)
    try:
        wait_for(lambda: leftovers(tmp_path, out.name), p)        # the mux has begun its temporary file
        p.send_signal(signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 143, stderr
    one_error_line(stderr, out, "SIGTERM", "during the final mux", "run the same command again to resume")
    assert stdout == "" and not out.exists() and not leftovers(tmp_path, out.name)
    assert len(finished_frames(out)) == N and not lock_files(tmp_path)
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == ref["sha"]


# The first Ctrl-C asks for a stop at the next check; a long pause after frame 0 leaves it pending,
# so only the second one can end the process soon.
PAUSE_AFTER_FRAME_0 = ("import time, stylevid.pipelines.video as v\n_s = v.WorkFolder.save\n"
                       "v.WorkFolder.save = lambda self, t, im: (_s(self, t, im), time.sleep(60 if t == 0 else 0))[0]\n")


def test_real_second_ctrl_c_stops_at_once_with_a_resume_hint(ref, tmp_path):
    out = tmp_path / "twice_real.mp4"
    args = ("video", ref["clip"], "-s", ref["style"], "-o", out, *FAST_VIDEO)
    p = spawn(*args, prelude=PAUSE_AFTER_FRAME_0)
    try:
        wait_for(lambda: len(finished_frames(out)) >= 1, p)
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)                                             # two signals, not one coalesced
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
        waited = time.monotonic() - sent
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    one_error_line(stderr, out, "stopped at once by a second Ctrl-C", "1 finished frame",
                   "run the same command again to resume")
    assert waited < 30                                              # not the 60 s pause
    assert stdout == "" and not out.exists() and not leftovers(tmp_path, out.name)
    assert len(finished_frames(out)) == 1 and not lock_files(tmp_path)
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == ref["sha"]


@pytest.fixture
def small_disk(tmp_path):
    with tiny_disk(tmp_path / "disk") as d:
        yield d


def test_disk_full_while_painting_frames_exits_7_and_keeps_finished_frames(ref, small_disk, monkeypatch):
    out = small_disk / "full.mp4"
    save = V.WorkFolder.save

    def saving(self, t, image):
        result = save(self, t, image)
        if t == 1:
            fill(small_disk)
        return result

    monkeypatch.setattr(V.WorkFolder, "save", saving)
    r = run(ref, out)
    assert r.exit_code == 7, r.stderr
    one_error_line(r.stderr, "disk full")
    assert not out.exists() and not leftovers(small_disk, out.name)
    frames = finished_frames(out)
    # Frames 0 and 1 at least (the flows of a finished frame are deleted: that space may take one more).
    assert 2 <= len(frames) < N and not list(small_disk.rglob(".*part*"))
    monkeypatch.undo()
    (small_disk / "filler").unlink()
    r = run(ref, out)
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == ref["sha"]


def test_disk_full_during_the_final_mux_exits_7_with_nothing_under_the_final_name(ref, small_disk, monkeypatch):
    import stylevid.video.writer as W

    out = small_disk / "fullmux.mp4"
    to_frame = W._to_frame
    state = {"filled": False}

    def filling(*a):
        if not state["filled"]:
            fill(small_disk)
            state["filled"] = True
        return to_frame(*a)

    monkeypatch.setattr(W, "_to_frame", filling)
    r = run(ref, out)
    assert r.exit_code == 7, r.stderr
    one_error_line(r.stderr, out, "disk full")
    assert not out.exists() and not leftovers(small_disk, out.name)
    assert len(finished_frames(out)) == N                     # every frame kept for the rerun
    monkeypatch.undo()
    (small_disk / "filler").unlink()
    r = run(ref, out)
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == ref["sha"]


def test_regions_revealed_by_a_pan_are_painted_like_the_rest(tmp_path):
    """A pan reveals a strip at the right edge in every frame. A warm frame starts such regions
    from the content, and its few iterations leave them half painted (the picture fades towards
    the photo as the camera moves); the half-size reveal pass paints them first."""
    from stylevid.config import StyleConfig, VideoConfig

    samples = Path(__file__).resolve().parents[2] / "samples"
    photo = np.asarray(Image.open(samples / "chelsea.jpg").convert("RGB").resize((128, 96)))
    step, n, h, w = 6, 5, 48, 64
    clip = make_clip(tmp_path / "pan.mp4", [np.ascontiguousarray(photo[24:24 + h, i * step:i * step + w])
                                            for i in range(n)])
    style = small_style(tmp_path / "style.png", 64)
    cfg = StyleConfig(scales=1, device="cpu")
    ratio = {}
    for reveal in (0, 30):
        out = V.stylize_video(clip, style, tmp_path / f"out{reveal}.mp4", cfg,
                              VideoConfig(size=w, first_iterations=40, iterations=10, reveal_iterations=reveal))
        last, content = (decoded(p)[-1].astype(float) for p in (out, clip))
        away = np.abs(last - content).mean(axis=(0, 2))          # per column: how far from the photo
        k = (n - 1) * step                                        # columns revealed after frame 0
        ratio[reveal] = away[w - k:].mean() / away[:w - k].mean()
        meta = json.loads(Path(str(out) + ".json").read_text())
        assert meta["warm_iterations"] == [10 + reveal] * (n - 1)   # the pass ran on every warm frame
    assert ratio[0] < 0.8 and ratio[30] > 0.9, ratio     # measured 0.60 and 1.48


def test_a_pan_does_not_carry_the_frame_edge_line_inward(tmp_path):
    """The encoder pads at a picture's edge, so a painted frame has a line along its right edge
    (the photo has none there). A pan warps that line inward, where the temporal loss keeps it as
    a seam across the picture; paint from the edge band is not carried inward (``edge_band``)."""
    from stylevid.config import StyleConfig, VideoConfig

    samples = Path(__file__).resolve().parents[2] / "samples"
    step, n, h, w = 8, 3, 64, 96
    photo = np.asarray(Image.open(samples / "chelsea.jpg").convert("RGB").resize((w + n * step, h + 20)))
    clip = make_clip(tmp_path / "pan.mp4", [np.ascontiguousarray(photo[10:10 + h, i * step:i * step + w])
                                            for i in range(n)])
    cfg = StyleConfig(scales=1, device="cpu")
    ins = [f.astype(float) for f in decoded(clip)]

    def extra_edges(out, frame):          # per column: horizontal contrast the photo does not have
        o, i = out[frame], ins[frame]
        return np.abs(np.diff(o, axis=1)).mean(axis=(0, 2)) - np.abs(np.diff(i, axis=1)).mean(axis=(0, 2))

    seam = {}
    for band in (0, 12):
        path = V.stylize_video(clip, samples / "swirls.jpg", tmp_path / f"out{band}.mp4", cfg,
                               VideoConfig(size=w, first_iterations=30, iterations=8, reveal_iterations=0,
                                           edge_band=band))
        out = [f.astype(float) for f in decoded(path)]
        k = (n - 1) * step
        assert extra_edges(out, 0)[-4:].mean() > 5            # frame 0 has its edge line
        seam[band] = extra_edges(out, n - 1)[w - 1 - k - 8:w - 1 - k].mean()   # where the pan put it
    assert seam[0] > 5 and seam[12] < 0.5 * seam[0], seam


def test_an_interlaced_video_is_painted_from_deinterlaced_frames(tmp_path):
    from stylevid.config import StyleConfig, VideoConfig
    from stylevid.events import Message
    from tests.video.test_reader import combed

    clip = make_clip(tmp_path / "i.mp4", combed(3), fps=25, codec_options={"x264-params": "tff=1"})
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    events = []
    out = V.stylize_video(clip, tmp_path / "s.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=2),
                          VideoConfig(first_iterations=2, iterations=1, reveal_iterations=0), on_event=events.append)
    assert "i.mp4: interlaced: each frame is deinterlaced (FFmpeg's bwdif) as it is read; the output is " \
           "progressive at the same frame rate" in [e.text for e in events if isinstance(e, Message)]
    assert json.loads(out.with_name(out.name + ".json").read_text())["deinterlaced"] is True
    assert not probe(out).interlaced and len(decoded(out)) == 3


def test_flicker_compares_with_the_window_the_output_was_made_from(tmp_path):
    from stylevid.config import StyleConfig, VideoConfig
    from stylevid.errors import BadInput
    from stylevid.events import Message

    clip = make_clip(tmp_path / "c.mp4", moving_square(8, 32, 48), fps=10)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    out = V.stylize_video(clip, tmp_path / "s.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=2),
                          VideoConfig(start=0.2, duration=0.4, first_iterations=2, iterations=1, reveal_iterations=0))
    events = []
    mean = flicker(out, clip, on_event=events.append)["mean"]
    assert "c.mp4: compared from 0.2 s to 0.6 s, the window o.mp4 was made from (its sidecar; --start / --duration " \
           "to choose)" in [e.text for e in events if isinstance(e, Message)]
    assert flicker(out, clip, start=0.2, duration=0.4)["mean"] == mean
    (tmp_path / "o.mp4.json").unlink()
    with pytest.raises(BadInput, match="4 frames but the reference .* has 8"):
        flicker(out, clip)
    assert flicker(out, clip, start=0.2, duration=0.4)["mean"] == mean


def test_a_portrait_phone_video_is_painted_upright(tmp_path):
    """A phone codes a portrait video sideways (rotation -90): the painting sees it as it is shown
    (taller than wide, its top up), and the output goes back to the coded orientation with the same
    rotation, so it shows like the input."""
    from stylevid.config import StyleConfig, VideoConfig

    yy, xx = np.mgrid[0:32, 0:48]
    coded = np.stack([xx * 5, xx * 5, xx * 5], -1).astype(np.uint8)         # dark left → bright right, coded
    clip = make_clip(tmp_path / "p.mp4", [coded, coded], fps=10, rotation=-90)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    out = V.stylize_video(clip, tmp_path / "s.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=3),
                          VideoConfig(first_iterations=3, iterations=1, reveal_iterations=0), keep_work=True)
    work = sorted(Path(tmp_path / ".stylevid-work").rglob("*.png"))
    assert work and all(np.asarray(Image.open(p)).shape[:2] == (48, 32) for p in work)   # painted upright
    first = np.asarray(Image.open(work[0])).astype(float).mean(axis=(1, 2))
    assert first[-8:].mean() > first[:8].mean() + 40          # -90: the coded right side is shown at the bottom
    meta = probe(out)
    assert (meta.width, meta.height, meta.rotation) == (48, 32, -90)
    got = decoded(out)[0].astype(float).mean(axis=(0, 2))
    assert got[-8:].mean() > got[:8].mean() + 40              # back in coded orientation: bright right


def test_transparency_that_the_output_cannot_hold_is_named(tmp_path):
    import av

    from stylevid.config import StyleConfig, VideoConfig
    from stylevid.events import Message

    with av.open(str(tmp_path / "a.mov"), "w") as out:          # PNG frames with alpha, as an editor exports
        s = out.add_stream("png", rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, "rgba"
        for i in range(2):
            a = np.zeros((32, 48, 4), np.uint8)
            a[..., :3], a[:, :24, 3] = 100 + 40 * i, 255
            f = av.VideoFrame.from_ndarray(a, format="rgba")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    assert probe(tmp_path / "a.mov").alpha
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    events = []
    V.stylize_video(tmp_path / "a.mov", tmp_path / "s.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=2),
                    VideoConfig(first_iterations=2, iterations=1, reveal_iterations=0), on_event=events.append)
    assert [e.text for e in events if isinstance(e, Message) and e.level == "warning"] == [
        "a.mov: its frames carry transparency (rgba); the output (H.264) has none: transparent areas are painted "
        "as the colour under them decodes"]
    assert not probe(tmp_path / "o.mp4").alpha


def test_an_anamorphic_video_is_painted_with_square_pixels(tmp_path):
    """HDV and DV store frames squeezed (sample aspect ratio above 1): painted as shown, 2:1 here, so
    the strokes are not stretched on screen; the output has square pixels at that size."""
    from stylevid.config import StyleConfig, VideoConfig

    clip = make_clip(tmp_path / "a.mp4", moving_square(2, 32, 32), fps=10, sar=Fraction(2, 1))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    out = V.stylize_video(clip, tmp_path / "s.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=2),
                          VideoConfig(first_iterations=2, iterations=1, reveal_iterations=0), keep_work=True)
    work = sorted(Path(tmp_path / ".stylevid-work").rglob("*.png"))
    assert work and all(np.asarray(Image.open(p)).shape[:2] == (32, 64) for p in work)
    meta = probe(out)
    assert (meta.width, meta.height, meta.sar) == (64, 32, 1)


def test_an_animated_gif_is_a_video_with_its_own_timing(tmp_path):
    """FFmpeg decodes GIFs as bgra: an opaque one is not taken for transparent (no warning), and its
    frame delays (100, 100, 200, 100 ms) are the output's timestamps."""
    from stylevid.config import StyleConfig, VideoConfig
    from stylevid.events import Message
    from stylevid.video import read_frames

    frames = [Image.fromarray(f) for f in moving_square(4, 32, 48)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=[100, 100, 200, 100])
    assert not probe(tmp_path / "a.gif").alpha
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    events = []
    out = V.stylize_video(tmp_path / "a.gif", tmp_path / "s.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=2),
                          VideoConfig(first_iterations=2, iterations=1, reveal_iterations=0), on_event=events.append)
    assert [e.text for e in events if isinstance(e, Message) and e.level == "warning"] == []
    assert [round(f.time, 2) for f in read_frames(out)] == [0.0, 0.1, 0.2, 0.4]


def test_morph_weights():
    assert [V.morph_weights(t, 5, 2) for t in (0, 2, 4)] == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    assert V.morph_weights(2, 5, 3) == [0.0, 1.0, 0.0] and V.morph_weights(1, 5, 3) == [0.5, 0.5, 0.0]
    assert V.morph_weights(0, 1, 2) == [1.0, 0.0]


def test_style_morph_goes_from_the_first_style_to_the_last(ref, tmp_path, monkeypatch):
    """--style-morph with a red and a blue painting: the first frame is painted in the red one's
    colours, the last in the blue one's, the frames between in turn."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        strokes = np.clip(np.array(colour) + rng.normal(0, 40, (48, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(strokes).save(tmp_path / f"{name}.png")
    clip = make_clip(tmp_path / "sq.mp4", [f // 2 + 64 for f in moving_square(12, 32, 48, shift=1)], fps=10)
    r = invoke("video", clip, "-s", "red.png", "-s", "blue.png", "--style-morph", "-o", "m.mp4", *FAST_VIDEO[:-1],
               "--first-iterations", "40", "--iterations", "20")
    assert r.exit_code == 0, r.stderr
    redness = [float(f[..., 0].mean() - f[..., 2].mean()) for f in decoded(tmp_path / "m.mp4")]
    # Measured: 7 at the first frame, -13 at the last (the temporal loss lags a little behind).
    assert redness[0] > 4 and redness[-1] < -8 and redness[0] - redness[-1] > 15
    assert redness[-1] < redness[8] < redness[4]
    # One style, or a fixed blend besides: refused in one line.
    r = invoke("video", clip, "-s", "red.png", "--style-morph", "-o", "n.mp4", *FAST_VIDEO)
    assert r.exit_code == 2 and "give two or more" in one_error_line(r.stderr)
    r = invoke("video", clip, "-s", "red.png", "-s", "blue.png", "--style-morph", "--style-blend", "1,1",
               "-o", "n.mp4", *FAST_VIDEO)
    assert r.exit_code == 2 and "drop --style-blend" in one_error_line(r.stderr)


def test_raft_runs_on_the_paintings_device(monkeypatch):
    """--flow raft gets the weights file and the device the frames are painted on (with --device
    cpu on a GPU machine RAFT stays on the CPU); DIS and Farneback take no options."""
    from stylevid.config import VideoConfig

    monkeypatch.setattr(V, "raft_file", lambda offline: f"raft.pth offline={offline}")
    import torch

    cpu = torch.device("cpu")
    assert V.flow_options(VideoConfig(flow="raft"), True, cpu) == {"weights_path": "raft.pth offline=True", "device": cpu}
    assert V.flow_options(VideoConfig(), False, cpu) == {}
    assert V.flow_options(VideoConfig(flow="farneback"), False, cpu) == {}
