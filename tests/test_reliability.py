"""Issue 8, bad input: every command refuses it with one line naming the file, a documented exit
code (errors.py), nothing written and the inputs untouched. Driven through the CLI, in process.

Exit codes: 2 bad usage or input · 3 not found · 4 invalid or truncated media · 5 over a size limit ·
6 output refused · 7 write error · 8 weights problem.
"""
from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.cli_helpers import (FAST_IMAGE, check_refused, fill, invoke, leftovers, one_error_line, small_photo,
                               small_style, snapshot, tiny_disk)
from tests.clips import make_clip, moving_square, truncate

FAST_VIDEO = ["--size", "32", "--first-iterations", "1", "--iterations", "1", "--reveal-iterations", "1", "--scales", "1", "--device", "cpu",
              "-q"]


def png_bomb(path: Path, w: int, h: int) -> Path:
    """A valid greyscale PNG declaring w×h pixels, a few hundred KB compressed."""
    row = b"\0" * (w + 1)
    data = zlib.compress(row * h, 9)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """One folder with good and bad inputs of every kind."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(8)
    make_clip(d / "clip.mp4", moving_square(4, 32, 48), fps=10, audio=0.4)
    small_style(d / "style.png")
    small_photo(d / "photo.png")
    (d / "dir").mkdir()
    os.mkfifo(d / "fifo")
    (d / "empty.mp4").write_bytes(b"")
    (d / "empty.png").write_bytes(b"")
    (d / "random.mp4").write_bytes(rng.bytes(6000))
    (d / "random.png").write_bytes(rng.bytes(6000))
    (d / "png.mp4").write_bytes((d / "photo.png").read_bytes())          # a PNG renamed .mp4
    truncate(d / "clip.mp4", d / "header.mp4", 0.004)                    # cut inside the header
    # An MP4 whose index (in front) is whole but whose media data is gone: frames declared, none decode.
    fs = make_clip(d / "fs.mp4", moving_square(6, 32, 48), fps=10, faststart=True)
    data = fs.read_bytes()
    (d / "nomedia.mp4").write_bytes(data[:data.find(b"mdat") + 8])
    with av.open(str(d / "audio.m4a"), "w") as o:                       # audio only
        s = o.add_stream("aac", rate=22050)
        s.layout = "mono"
        for i in range(0, 22050, 1024):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 22050, i
            o.mux(s.encode(f))
        o.mux(s.encode())
    # A video header declaring 16400x16000 (YUV4MPEG2 is plain text), and a PNG bomb (20000x20000).
    (d / "huge.y4m").write_bytes(b"YUV4MPEG2 W16400 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\0" * 1000)
    png_bomb(d / "bomb.png", 20000, 20000)
    Image.new("RGB", (8, 8), "red").save(d / "tiny.png")
    make_clip(d / "tinyv.mp4", moving_square(3, 8, 8, shift=1, side=2), fps=10)
    truncate(d / "photo.png", d / "truncated.png", 0.5)
    (d / "corrupt.pth").write_bytes(rng.bytes(4000))
    # Matroska (B-frames without dts, PCM audio, SubRip) and two damaged codec ids.
    mkv = make_clip(d / "clip.mkv", moving_square(4, 32, 48), fps=10, audio=0.4, audio_codec="pcm_u8",
                    subtitles=[(0.1, 0.3, "cue")])
    data = mkv.read_bytes()
    (d / "unknown_video.mkv").write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_MPEGX/ISO/AVC"))
    (d / "unknown_audio.mkv").write_bytes(data.replace(b"A_PCM/INT/LIT", b"A_PCX/INT/LIT"))
    return d


def shown(name: str) -> str:
    """How a file name appears in messages (the CLI takes paths: ``http://x`` becomes ``http:/x``)."""
    return str(Path(name))


# -- bad input files: video and flicker (the same reader) -----------------------------------------------

MEDIA = [  # (id, file name, exit code)
    ("missing", "nope.mp4", 3),
    ("directory", "dir", 2),
    ("fifo", "fifo", 2),
    ("concat_protocol", "concat:clip.mp4|clip.mp4", 2),
    ("url", "http://example.com/clip.mp4", 2),     # (the line shows it as the shell's Path does)
    ("empty", "empty.mp4", 2),
    ("random_bytes", "random.mp4", 4),
    ("png_renamed_mp4", "png.mp4", 4),
    ("mp4_truncated_in_header", "header.mp4", 4),
    ("zero_decodable_frames", "nomedia.mp4", 4),
    ("audio_only", "audio.m4a", 4),
    ("absurd_dimensions", "huge.y4m", 5),
    ("unknown_video_codec", "unknown_video.mkv", 4),
]


@pytest.mark.parametrize("name, code", [m[1:] for m in MEDIA], ids=[m[0] for m in MEDIA])
def test_video_refuses_bad_input(d, name, code):
    path = name if ":" in name else d / name
    check_refused(d, ["video", path, "-s", d / "style.png", "-o", d / "out.mp4", *FAST_VIDEO], code, shown(name))


@pytest.mark.parametrize("name, code", [m[1:] for m in MEDIA], ids=[m[0] for m in MEDIA])
def test_flicker_refuses_bad_input(d, name, code):
    path = name if ":" in name else d / name
    check_refused(d, ["flicker", path, "--reference", d / "clip.mp4", "--csv", d / "f.csv"], code, shown(name))


@pytest.mark.parametrize("name, code", [("nope.mp4", 3), ("random.mp4", 4), ("audio.m4a", 4)])
def test_flicker_refuses_a_bad_reference(d, name, code):
    check_refused(d, ["flicker", d / "clip.mp4", "--reference", d / name], code, name)


def test_flicker_counts_the_reordered_frames_of_matroska(d):
    # Matroska stores no dts for B-frames: counting by dts found 2 of 4 frames and refused this.
    r = invoke("flicker", d / "clip.mp4", "--reference", d / "clip.mkv")
    assert r.exit_code == 0, r.stderr
    assert float(r.stdout.splitlines()[0]) >= 0


def test_flicker_refuses_videos_of_different_lengths(d):
    check_refused(d, ["flicker", d / "clip.mp4", "--reference", d / "tinyv.mp4"], 2, "clip.mp4", "tinyv.mp4")


# -- bad input files: image ---------------------------------------------------------------------------------

IMAGES = [
    ("missing", "nope.png", 3),
    ("directory", "dir", 2),
    ("fifo", "fifo", 2),
    ("concat_protocol", "concat:photo.png", 2),
    ("empty", "empty.png", 2),
    ("random_bytes", "random.png", 4),
    ("truncated_png", "truncated.png", 4),
    ("video_as_image", "clip.mp4", 4),
    ("decompression_bomb", "bomb.png", 5),
    ("too_small", "tiny.png", 2),
]


@pytest.mark.parametrize("name, code", [m[1:] for m in IMAGES], ids=[m[0] for m in IMAGES])
def test_image_refuses_bad_content(d, name, code):
    path = name if ":" in name else d / name
    check_refused(d, ["image", path, "-s", d / "style.png", "-o", d / "out.png", *FAST_IMAGE], code, name)


@pytest.mark.parametrize("name, code", [m[1:] for m in IMAGES], ids=[m[0] for m in IMAGES])
def test_image_refuses_bad_style(d, name, code):
    path = name if ":" in name else d / name
    check_refused(d, ["image", d / "photo.png", "-s", path, "-o", d / "out.png", *FAST_IMAGE], code, name)


@pytest.mark.parametrize("name, code", [("nope.png", 3), ("clip.mp4", 4), ("bomb.png", 5), ("tiny.png", 2),
                                        ("random.png", 4)],
                         ids=["missing", "video_as_style", "decompression_bomb", "too_small", "random_bytes"])
def test_video_refuses_a_bad_style(d, name, code):
    check_refused(d, ["video", d / "clip.mp4", "-s", d / name, "-o", d / "out.mp4", *FAST_VIDEO], code, name)


def test_video_with_frames_too_small_to_paint(d):
    check_refused(d, ["video", d / "tinyv.mp4", "-s", d / "style.png", "-o", d / "out.mp4", *FAST_VIDEO],
                  2, "tinyv.mp4", "8x8")


# -- option values ----------------------------------------------------------------------------------------------

VIDEO_OPTIONS = [["--flow", "xyz"], ["--crf", "99"], ["--size", "-1"], ["--size", "8"], ["--start", "-1"],
                 ["--start", "nan"], ["--duration", "0"], ["--long-term", "2,1"], ["--long-term", "x"],
                 ["--cut-threshold", "1.5"], ["--iterations", "0"], ["--reveal-iterations", "-1"], ["--edge-band", "-1"], ["--edge-band", "nan"], ["--temporal-weight", "-1"], ["--stereo-weight", "-1"], ["--stereo-weight", "nan"],
                 ["--stereo", "sideways"], ["--codec", "av1"], ["--codec", "prores"], ["--encoder", "foo"], ["--device", "tpu"], ["--style-blend", "1,2"], ["--start", "99"],
                 ["--tile-halo", "-32"], ["--precision", "fp64"], ["--precision", "fp16"]]   # fp16: CPU here


@pytest.mark.parametrize("opt", VIDEO_OPTIONS, ids=[" ".join(o) for o in VIDEO_OPTIONS])
def test_video_refuses_bad_option_values(d, opt):
    args = ["video", d / "clip.mp4", "-s", d / "style.png", "-o", d / "out.mp4", *FAST_VIDEO, *opt]
    check_refused(d, args, 2)


IMAGE_OPTIONS = [["--init", "xyz"], ["--size", "5"], ["--scales", "9"], ["--optimizer", "sgd"], ["--lr", "0"],
                 ["--style-weight", "-1"], ["--style-blend", "1,x"], ["--layer-weight", "stem:x"],
                 ["--style-layers", "nope"], ["--projection", "cube"], ["--tile", "10"], ["--tile-above", "10"], ["--view-tile-above", "63"], ["--tile-halo", "20"],
                 ["--lbfgs-memory", "0"], ["--precision", "half"], ["--precision", "fp16"], ["--stereo", "sideways"]]


@pytest.mark.parametrize("opt", IMAGE_OPTIONS, ids=[" ".join(o) for o in IMAGE_OPTIONS])
def test_image_refuses_bad_option_values(d, opt):
    args = ["image", d / "photo.png", "-s", d / "style.png", "-o", d / "out.png", *FAST_IMAGE, *opt]
    check_refused(d, args, 2)


def test_flicker_refuses_an_unknown_flow_method(d):
    check_refused(d, ["flicker", d / "clip.mp4", "--reference", d / "clip.mp4", "--flow", "xyz"], 2, "xyz")


@pytest.mark.parametrize("cmd", ["video", "image", "flicker"])
def test_option_of_the_wrong_type_is_a_usage_error(d, cmd):
    before = snapshot(d)
    extra = {"video": ["--size", "abc"], "image": ["--iterations", "1.5"], "flicker": ["--csv"]}[cmd]
    first = d / ("photo.png" if cmd == "image" else "clip.mp4")
    args = [cmd, first, *(["--reference", d / "clip.mp4"] if cmd == "flicker" else ["-s", d / "style.png"]), *extra]
    r = invoke(*args)
    assert r.exit_code == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert snapshot(d) == before


# -- outputs refused ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["clip.mp4", "style.png"])
def test_video_output_equal_to_an_input_is_refused(d, target):
    args = ["video", d / "clip.mp4", "-s", d / "style.png", "-o", d / target, "--overwrite", *FAST_VIDEO]
    check_refused(d, args, 6, target, "input")


@pytest.mark.parametrize("target", ["photo.png", "style.png"])
def test_image_output_equal_to_an_input_is_refused(d, target):
    args = ["image", d / "photo.png", "-s", d / "style.png", "-o", d / target, "--overwrite", *FAST_IMAGE]
    check_refused(d, args, 6, target, "input")


@pytest.mark.parametrize("option", ["--csv", "--plot"])
def test_flicker_report_equal_to_an_input_is_refused(d, option):
    check_refused(d, ["flicker", d / "clip.mp4", "--reference", d / "clip.mp4", option, d / "clip.mp4"], 6,
                  "clip.mp4", "input")


@pytest.mark.parametrize("cmd", ["video", "image", "flicker"])
def test_output_folder_that_does_not_exist_is_refused(d, cmd):
    args = {"video": ["video", d / "clip.mp4", "-s", d / "style.png", "-o", d / "nodir" / "x.mp4", *FAST_VIDEO],
            "image": ["image", d / "photo.png", "-s", d / "style.png", "-o", d / "nodir" / "x.png", *FAST_IMAGE],
            "flicker": ["flicker", d / "clip.mp4", "--reference", d / "clip.mp4", "--csv", d / "nodir" / "x.csv"]}
    check_refused(d, args[cmd], 6, "nodir", "does not exist")


def test_video_unsupported_output_type_is_refused_before_any_work(d):
    check_refused(d, ["video", d / "clip.mp4", "-s", d / "style.png", "-o", d / "out.txt", *FAST_VIDEO], 2,
                  "out.txt", ".mp4")


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into (a read-only tmpfs as root, mode 555 otherwise)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                          capture_output=True).returncode:
            pytest.skip("root, and no read-only tmpfs can be mounted here")
        yield ro
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    else:
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)


@pytest.mark.parametrize("cmd", ["video", "image", "flicker"])
def test_read_only_output_folder_is_refused(d, read_only_folder, cmd):
    ro = read_only_folder
    args = {"video": ["video", d / "clip.mp4", "-s", d / "style.png", "-o", ro / "x.mp4", *FAST_VIDEO],
            "image": ["image", d / "photo.png", "-s", d / "style.png", "-o", ro / "x.png", *FAST_IMAGE],
            "flicker": ["flicker", d / "clip.mp4", "--reference", d / "clip.mp4", "--csv", ro / "x.csv"]}
    check_refused(d, args[cmd], 6, "not writable")
    assert list(ro.iterdir()) == []


# -- weights -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["video", "image"])
def test_corrupted_weights_file_exits_8_naming_the_expected_sha256(d, cmd):
    args = {"video": ["video", d / "clip.mp4", "-s", d / "style.png", "-o", d / "out.mp4", *FAST_VIDEO],
            "image": ["image", d / "photo.png", "-s", d / "style.png", "-o", d / "out.png", *FAST_IMAGE]}[cmd]
    line = check_refused(d, [*args, "--weights", d / "corrupt.pth"], 8, "corrupt.pth", "sha256")
    assert "delete it" in line


def test_truncated_weights_file_exits_8(d, tmp_path):
    from stylevid.weights import lite0_file

    cut = tmp_path / "lite0-cut.pth"
    cut.write_bytes(lite0_file().read_bytes()[:200_000])
    check_refused(d, ["image", d / "photo.png", "-s", d / "style.png", "-o", d / "out.png", *FAST_IMAGE,
                      "--weights", cut], 8, "lite0-cut.pth", "sha256")


def test_vgg_weights_with_a_wrong_hash_exit_8(d, tmp_path, monkeypatch):
    # torchvision names carry the sha256 prefix: a corrupted cached file is caught by its hash.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("STYLEVID_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\0" * 5000)
    line = check_refused(d, ["image", d / "photo.png", "-s", d / "style.png", "-o", d / "out.png", *FAST_IMAGE,
                             "--encoder", "vgg19", "--offline"], 8, "vgg19-dcbb9e9d.pth", "dcbb9e9d")
    assert "corrupted" in line


def test_audio_stream_of_an_unknown_codec_is_dropped_with_a_warning(d, tmp_path):
    out = tmp_path / "out.mp4"
    r = invoke("video", d / "unknown_audio.mkv", "-s", d / "style.png", "-o", out, *FAST_VIDEO)
    assert r.exit_code == 0, r.stderr
    assert "audio stream 1 has an unknown codec; dropped" in r.stderr
    with av.open(str(out)) as c:
        assert not c.streams.audio and c.streams.video[0].frames == 4


# -- a truncated video: paint what decodes, warn with the counts --------------------------------------------------------

def test_truncated_video_paints_what_decodes_and_warns_with_counts(tmp_path):
    clip = make_clip(tmp_path / "whole.mp4", moving_square(8, 32, 48), fps=10, faststart=True, audio=0.8)
    cut = truncate(clip, tmp_path / "cut.mp4", 0.5)
    small_style(tmp_path / "style.png")
    with av.open(str(cut)) as c:
        decodable = sum(1 for _ in c.decode(video=0))
    assert 0 < decodable < 8
    before = cut.read_bytes()
    r = invoke("video", cut, "-s", tmp_path / "style.png", "-o", tmp_path / "out.mp4", *FAST_VIDEO)
    assert r.exit_code == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "cut.mp4" in warnings[0]
    assert f"decoded {decodable} frames" in warnings[0] and "declares 8" in warnings[0]
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == decodable
    assert cut.read_bytes() == before


# -- disk full (video: tests/pipelines/test_video.py) ---------------------------------------------------------

def test_image_on_a_full_disk_exits_7_and_leaves_no_partial_file(d, tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        fill(disk)
        before = snapshot(d)
        r = invoke("image", d / "photo.png", "-s", d / "style.png", "-o", disk / "out.png", *FAST_IMAGE)
        assert r.exit_code == 7, r.stderr
        one_error_line(r.stderr, "out.png", "disk full")
        assert not (disk / "out.png").exists() and not leftovers(disk, "out.png")
        assert snapshot(d) == before


def test_flicker_report_on_a_full_disk_exits_7(d, tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        fill(disk)
        r = invoke("flicker", d / "clip.mp4", "--reference", d / "clip.mp4", "--csv", disk / "f.csv")
        assert r.exit_code == 7, r.stderr
        one_error_line(r.stderr, "f.csv", "disk full")
        assert not (disk / "f.csv").exists() and not leftovers(disk, "f.csv")


# -- the output lock (faults: two runs at once) -----------------------------------------------------------

def test_lock_file_is_removed_and_two_holders_never_overlap(tmp_path):
    """``files.exclusive`` removes its lock file when done, yet never lets two holders in at once.

    Removing the file is racy unless a process that gets the lock checks that the file it locked is
    still the one at the path: threads (each ``open`` is its own flock) enter and leave the lock as
    fast as they can and count how many are inside.
    """
    import threading
    import time

    from stylevid.errors import OutputRefused
    from stylevid.files import exclusive

    lock = tmp_path / "w" / "out.mp4.lock"
    lock.parent.mkdir()
    with exclusive(lock, "out.mp4"):
        with pytest.raises(OutputRefused, match="another stylevid run"):
            with exclusive(lock, "out.mp4"):
                pass
        assert lock.exists()
    assert not lock.exists()
    lock.parent.rmdir()                      # a run that ended removed the folder: the next makes it again
    with exclusive(lock, "out.mp4"):
        assert lock.exists()

    state = {"inside": 0, "most": 0, "entries": 0}
    guard = threading.Lock()
    end = time.monotonic() + 1.5

    def worker():
        while time.monotonic() < end:
            try:
                with exclusive(lock, "out.mp4"):
                    with guard:
                        state["inside"] += 1
                        state["entries"] += 1
                        state["most"] = max(state["most"], state["inside"])
                    time.sleep(0.0005)
                    with guard:
                        state["inside"] -= 1
            except OutputRefused:
                pass

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["entries"] > 50
    assert state["most"] == 1, state
    assert not lock.exists()


# -- dream: photo and video ---------------------------------------------------------------------------------------

FAST_DREAM = ["--size", "32", "--octaves", "1", "--steps", "1", "--device", "cpu", "-q"]

DREAM_INPUTS = [  # (id, file name, exit code, words in the line); a video extension is dreamed as a video
    ("missing_photo", "nope.png", 3, "input not found"),
    ("missing_video", "nope.mp4", 3, "input not found"),
    ("directory", "dir", 2, "a folder with no numbered pictures"),   # a folder may be an image sequence
    ("fifo", "fifo", 2, "not a regular file"),
    ("concat_protocol", "concat:clip.mp4|clip.mp4", 2, "not accepted"),
    ("empty_photo", "empty.png", 2, "empty file"),
    ("empty_video", "empty.mp4", 2, "empty file"),
    ("random_bytes_photo", "random.png", 4, "not an image"),
    ("random_bytes_video", "random.mp4", 4, "not a readable video"),
    ("png_renamed_mp4", "png.mp4", 4, "a still image (png), not a video"),
    ("mp4_truncated_in_header", "header.mp4", 4, "not a readable video"),
    ("zero_decodable_frames", "nomedia.mp4", 4, "not a readable video"),
    ("truncated_png", "truncated.png", 4, "truncated"),
    ("decompression_bomb", "bomb.png", 5, ""),
    ("absurd_dimensions", "huge.y4m", 5, "over the limit"),
    ("too_small_photo", "tiny.png", 2, "too small"),
    ("too_small_video", "tinyv.mp4", 2, "under the 16 px minimum"),
]


@pytest.mark.parametrize("name, code, words", [m[1:] for m in DREAM_INPUTS], ids=[m[0] for m in DREAM_INPUTS])
def test_dream_refuses_bad_input(d, name, code, words):
    path = name if ":" in name else d / name
    out = d / ("out.png" if Path(name).suffix in (".png", "") else "out.mp4")
    check_refused(d, ["dream", path, "-o", out, *FAST_DREAM], code, shown(name), words)


@pytest.mark.parametrize("option, name, code", [("--guide", "nope.png", 3), ("--guide", "random.png", 4),
                                                ("--guide", "clip.mp4", 4), ("--mask", "bomb.png", 5),
                                                ("--mask", "dir", 2)])
def test_dream_refuses_a_bad_guide_or_mask(d, option, name, code):
    check_refused(d, ["dream", d / "photo.png", "-o", d / "out.png", *FAST_DREAM, option, d / name], code, name)


DREAM_OPTIONS = [["--octaves", "0"], ["--octave-scale", "1"], ["--octave-scale", "nan"], ["--steps", "-1"],
                 ["--step-size", "0"], ["--jitter", "-1"], ["--size", "8"], ["--layer", "nope"],
                 ["--layer", "block7:x"], ["--channel", "block7:999"], ["--channel", "x"], ["--encoder", "alexnet"],
                 ["--projection", "cube"], ["--device", "tpu"], ["--save-every", "-1"], ["--crf", "99"],
                 ["--flow", "xyz"], ["--start", "-1"], ["--duration", "0"]]


@pytest.mark.parametrize("kind", ["photo", "video"])
@pytest.mark.parametrize("opt", DREAM_OPTIONS, ids=[" ".join(o) for o in DREAM_OPTIONS])
def test_dream_refuses_bad_option_values(d, kind, opt):
    # Video options are checked for a photo too; the device and weights before any work folder is made.
    inp, out = (d / "photo.png", d / "out.png") if kind == "photo" else (d / "clip.mp4", d / "out.mp4")
    line = check_refused(d, ["dream", inp, "-o", out, *FAST_DREAM, *opt], 2)
    assert opt[0] in line


def test_dream_photo_warns_that_video_options_are_ignored(d, tmp_path):
    r = invoke("dream", d / "photo.png", "-o", tmp_path / "o.png", *FAST_DREAM, "--crf", "20", "--start", "1")
    assert r.exit_code == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "--start, --crf" in warnings[0] and "ignored for a photo" in warnings[0]


@pytest.mark.parametrize("inp, target", [("photo.png", "photo.png"), ("photo.png", "style.png"),
                                         ("clip.mp4", "clip.mp4"), ("clip.mp4", "style.png")],
                         ids=["photo_itself", "photo_guide", "video_itself", "video_guide"])
def test_dream_output_equal_to_an_input_is_refused(d, inp, target):
    args = ["dream", d / inp, "-o", d / target, "--guide", d / "style.png", "--overwrite", *FAST_DREAM]
    check_refused(d, args, 6, target, "input")


@pytest.mark.parametrize("inp, out", [("photo.png", "exists.png"), ("clip.mp4", "exists.mp4")])
def test_dream_existing_output_is_refused_and_kept(d, tmp_path, inp, out):
    (tmp_path / out).write_bytes(b"keep me")
    r = invoke("dream", d / inp, "-o", tmp_path / out, *FAST_DREAM)
    assert r.exit_code == 6
    one_error_line(r.stderr, out, "--overwrite")
    assert (tmp_path / out).read_bytes() == b"keep me" and sorted(tmp_path.iterdir()) == [tmp_path / out]


def test_ctrl_c_during_a_dream_video_keeps_frames_and_resumes_to_the_same_video(d, tmp_path, monkeypatch,
                                                                               stop_after):
    from tests.cli_helpers import finished_frames, sha256

    args = lambda out: ("dream", d / "clip.mp4", "-o", out, *FAST_DREAM)   # noqa: E731
    whole = tmp_path / "whole.mp4"
    assert invoke(*args(whole)).exit_code == 0
    out = tmp_path / "stopped.mp4"
    stop_after(2)
    r = invoke(*args(out))
    assert r.exit_code == 130, r.stderr
    one_error_line(r.stderr, out, "Ctrl-C", "2 finished frames", "run the same command again to resume")
    assert not out.exists() and not leftovers(tmp_path, out.name) and len(finished_frames(out)) == 2
    assert not list(tmp_path.rglob("*.lock"))
    monkeypatch.undo()
    r = invoke(*args(out))
    assert r.exit_code == 0, r.stderr
    assert sha256(out) == sha256(whole)
