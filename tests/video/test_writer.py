from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stylevid.errors import BadInput, OutputRefused, WriteFailed
from stylevid.events import Message
from stylevid.video import assemble, probe, read_frames, write_frames

ROOT = Path(__file__).resolve().parents[2]


def stylize(path, **kw):
    """A stand-in for the pipeline: invert the colours of the window's frames."""
    return [255 - f.image for f in read_frames(path, **kw)]


def video_times(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.pts * s.time_base for f in c.decode(s)]


def packets(path, kind):
    """(bytes, time in seconds) of every packet of the streams of one kind, in file order."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [(bytes(p), p.pts * p.time_base) for p in c.demux(streams) if p.size]


def warnings(events):
    return [e.text for e in events if isinstance(e, Message) and e.level == "warning"]


def test_round_trip_vfr_keeps_pts_rotation_audio_subtitles(clips, tmp_path):
    src, out = clips["vfr"], tmp_path / "out.mp4"
    frames = stylize(src)
    events = []
    w = assemble(src, lambda i: frames[i], out, expected=len(frames), on_event=events.append)
    assert w.frames == 12 and (w.width, w.height) == (64, 48)
    assert w.audio == ("copy",) and w.subtitles == 1
    assert warnings(events) == []
    assert video_times(out) == video_times(src)                  # every frame time, exactly
    assert packets(out, "audio") == packets(src, "audio")        # bit-exact, same order and times
    assert packets(out, "subtitle") == packets(src, "subtitle")
    info = probe(out)
    assert info.rotation == 90 and info.frames == 12
    # The pictures are the stylized ones (inverted), not the input's.
    back = [f.image.astype(int) for f in read_frames(out)]
    assert np.abs(back[4] - frames[4]).mean() < 6


def test_window_cuts_audio_and_shifts_everything(clips, tmp_path):
    src, out = clips["vfr"], tmp_path / "cut.mp4"
    start, duration = 0.3, 0.4
    frames = stylize(src, start=start, duration=duration)
    assert len(frames) == 4
    assemble(src, lambda i: frames[i], out, start=start, duration=duration, expected=4)
    # Video: frames at 0.30, 0.34, 0.50, 0.52 s moved back by 0.3 s.
    assert video_times(out) == [Fraction(0), Fraction(4, 100), Fraction(20, 100), Fraction(22, 100)]
    # Audio: exactly the input packets that start inside [0.3, 0.7), same bytes, same shift.
    shift = Fraction(3, 10)
    kept = [(b, t - shift) for b, t in packets(src, "audio") if shift <= t < Fraction(7, 10)]
    assert kept and packets(out, "audio") == kept


def pix_fmt(path) -> str:
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.pix_fmt


def test_odd_input_keeps_its_exact_size_in_yuv444(clips, tmp_path):
    # libx264 refuses 4:2:0 at odd sides; 4:4:4 stores them exactly and decodes back at 45x31.
    src, out = clips["odd"], tmp_path / "odd.mp4"
    frames = stylize(src)
    events = []
    w = assemble(src, lambda i: frames[i], out, on_event=events.append)
    assert (w.width, w.height) == (45, 31) and w.codec == "libx264"
    assert pix_fmt(out) == "yuv444p"
    back = list(read_frames(out))
    assert len(back) == 6 and back[0].image.shape == (31, 45, 3)
    # Nothing shifted or stretched: each frame is the stylized one, edges included.
    for b, f in zip(back, frames):
        assert np.abs(b.image.astype(int) - f).mean() < 3
        assert np.abs(b.image[:, -1].astype(int) - f[:, -1]).mean() < 6
    said = [e.text for e in events if isinstance(e, Message) and e.level == "info"]
    assert len(said) == 1 and "45x31" in said[0] and "4:4:4" in said[0] and "yuv420p" in said[0]


def test_even_sizes_stay_yuv420p(clips, tmp_path):
    src, out = clips["cfr"], tmp_path / "even.mp4"
    frames = stylize(src)
    events = []
    assemble(src, lambda i: frames[i], out, on_event=events.append)
    assert pix_fmt(out) == "yuv420p"
    assert not [e for e in events if isinstance(e, Message)]


def test_mpeg4_keeps_odd_sizes_in_yuv420p(clips, tmp_path):
    src, out = clips["odd"], tmp_path / "odd4.mp4"
    frames = stylize(src)
    w = assemble(src, lambda i: frames[i], out, codec="mpeg4")
    assert (w.width, w.height) == (45, 31) and pix_fmt(out) == "yuv420p"
    assert next(iter(read_frames(out))).image.shape == (31, 45, 3)


def test_check_aborts_the_mux_at_once_and_leaves_nothing(clips, tmp_path):
    src, out = clips["cfr"], tmp_path / "out.mp4"
    frames = stylize(src)
    asked = []

    class Stop(Exception):
        pass

    def get(i):
        asked.append(i)
        return frames[i]

    def check():
        if len(asked) == 5:
            raise Stop

    with pytest.raises(Stop):
        assemble(src, get, out, check=check)
    assert asked == [0, 1, 2, 3, 4]                    # no frame after the stop was asked for
    assert list(tmp_path.iterdir()) == []              # the temporary file is gone, no output


def test_output_size(clips, tmp_path):
    src = clips["cfr"]
    small = stylize(src, size=32)                      # 32x24 stylized frames
    w = assemble(src, lambda i: small[i], tmp_path / "a.mp4")
    assert (w.width, w.height) == (32, 24)
    w = assemble(src, lambda i: small[i], tmp_path / "b.mp4", size=0)   # back to the input's size
    assert (w.width, w.height) == (64, 48)
    w = assemble(src, lambda i: small[i], tmp_path / "c.mp4", size=40)
    assert (w.width, w.height) == (40, 30)


def test_pcm_audio_reencoded_and_subrip_converted_for_mp4(clips, tmp_path):
    """An MKV's PCM audio becomes AAC (with a warning) and its SubRip cue mov_text (MP4's text
    format; an info line): the same words at the same time."""
    src, out = clips["mkv"], tmp_path / "out.mp4"
    frames = stylize(src)
    events = []
    w = assemble(src, lambda i: frames[i], out, on_event=events.append)
    assert w.audio == ("aac",) and w.subtitles == 1
    text = " ".join(warnings(events))
    assert "pcm_u8" in text and "AAC" in text and "subrip" not in text
    said = [e.text for e in events if isinstance(e, Message) and e.level == "info" and "subtitle" in e.text]
    assert len(said) == 1 and "(subrip) converted to mov_text" in said[0]
    info = probe(out)
    assert [a.codec for a in info.audio] == ["aac"] and len(info.subtitles) == 1
    cues = [p for p in packets(out, "subtitle") if p[0] != b"\0\0"]    # (the muxer fills gaps with empty cues)
    assert cues == [(len(b"srt cue").to_bytes(2, "big") + b"srt cue", Fraction(2, 10))]
    assert info.duration == pytest.approx(1.0, abs=0.15)


def test_mkv_output_copies_pcm_and_subrip(clips, tmp_path):
    src, out = clips["mkv"], tmp_path / "out.mkv"
    frames = stylize(src)
    w = assemble(src, lambda i: frames[i], out)
    assert w.audio == ("copy",) and w.subtitles == 1
    assert packets(out, "audio") == packets(src, "audio")
    assert packets(out, "subtitle") == packets(src, "subtitle")
    assert video_times(out) == video_times(src)


def test_mpeg4_encoder(clips, tmp_path):
    src = clips["cfr"]
    frames = stylize(src)
    w = assemble(src, lambda i: frames[i], tmp_path / "m.mp4", codec="mpeg4")
    assert w.codec == "mpeg4" and probe(tmp_path / "m.mp4").frames == 20


def test_failure_leaves_nothing(clips, tmp_path):
    src, out = clips["cfr"], tmp_path / "out.mp4"
    frames = stylize(src)

    def broken(i):
        if i == 7:
            raise RuntimeError("stylizer crashed")
        return frames[i]

    with pytest.raises(RuntimeError, match="crashed"):
        assemble(src, broken, out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BadInput, match="frame 3 is missing"):
        assemble(src, lambda i: frames[i] if i < 3 else {}[i], out)
    with pytest.raises(WriteFailed, match="20 frames but 25 were stylized"):
        assemble(src, lambda i: frames[i], out, expected=25)
    with pytest.raises(BadInput, match="uint8"):
        assemble(src, lambda i: frames[i].astype(np.float32), out)
    assert list(tmp_path.iterdir()) == []


def test_output_checks(clips, tmp_path):
    src = clips["cfr"]
    frames = stylize(src)
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    with pytest.raises(OutputRefused):
        assemble(src, lambda i: frames[i], out)
    assert out.read_bytes() == b"old"
    assemble(src, lambda i: frames[i], out, overwrite=True)
    assert probe(out).frames == 20
    with pytest.raises(OutputRefused):
        assemble(src, lambda i: frames[i], src, overwrite=True)
    with pytest.raises(BadInput, match="unsupported output"):
        assemble(src, lambda i: frames[i], tmp_path / "o.avi")
    with pytest.raises(BadInput, match="crf"):
        assemble(src, lambda i: frames[i], tmp_path / "p.mp4", crf=99)


def test_write_error_is_write_failed(clips, tmp_path):
    # A file-size limit makes writes fail like a full disk would (EFBIG instead of ENOSPC).
    frames = tmp_path / "frames.npy"
    np.save(frames, np.stack(stylize(clips["cfr"])))
    code = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from stylevid.errors import WriteFailed
        from stylevid.video import assemble
        frames = np.load({str(frames)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        try:
            assemble({str(clips['cfr'])!r}, lambda i: frames[i], {str(tmp_path / 'out.mp4')!r})
        except WriteFailed as e:
            print("WriteFailed:", e)
            sys.exit(7)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 7, r.stdout + r.stderr
    assert "out.mp4" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.npy"]


# -- pictures alone (a zoom dream) ----------------------------------------------------------------

def test_write_frames_at_a_constant_rate(tmp_path):
    from stylevid.video import write_frames

    pics = [np.full((31, 45, 3), 20 * k, np.uint8) for k in range(5)]
    w = write_frames(lambda i: pics[i], 5, tmp_path / "p.mp4", fps=25, crf=0)
    assert (w.frames, w.width, w.height) == (5, 45, 31)
    assert video_times(w.path) == [Fraction(k, 25) for k in range(5)]
    with av.open(str(w.path)) as c:
        back = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"       # odd sides kept exactly
    assert all(np.abs(a.astype(int) - b).mean() < 2 for a, b in zip(back, pics))


def test_write_frames_refuses_a_frame_of_another_size_and_leaves_nothing(tmp_path):
    from stylevid.video import write_frames

    pics = [np.zeros((32, 48, 3), np.uint8), np.zeros((32, 40, 3), np.uint8)]
    with pytest.raises(BadInput, match="frame 1 is 40x32"):
        write_frames(lambda i: pics[i], 2, tmp_path / "p.mp4")
    with pytest.raises(BadInput, match="fps"):
        write_frames(lambda i: pics[0], 1, tmp_path / "p.mp4", fps=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_chapters_are_kept_cut_to_the_window(tmp_path, ext):
    from tests.clips import make_clip, moving_square

    src = make_clip(tmp_path / f"c{ext}", moving_square(20), fps=10,
                    chapters=[(0.0, 0.5, "One"), (0.5, 1.5, "Two"), (1.5, 2.0, "Three")])

    def chapters(path):
        with av.open(str(path)) as c:
            return [(float(ch["start"] * ch["time_base"]), float(ch["end"] * ch["time_base"]), ch["metadata"]["title"])
                    for ch in c.chapters()]

    frames = stylize(src)
    whole = assemble(src, lambda i: frames[i], tmp_path / f"w{ext}", expected=20).path
    assert chapters(whole) == [(0.0, 0.5, "One"), (0.5, 1.5, "Two"), (1.5, 2.0, "Three")]
    part = stylize(src, start=0.3, duration=0.9)
    cut = assemble(src, lambda i: part[i], tmp_path / f"p{ext}", start=0.3, duration=0.9, expected=len(part)).path
    assert [(round(a, 3), round(b, 3), t) for a, b, t in chapters(cut)] == [(0.0, 0.2, "One"), (0.2, 0.9, "Two")]


def test_upright_frames_are_turned_back_to_the_coded_orientation(clips, tmp_path):
    src = clips["vfr"]                                     # rotation 90
    coded = stylize(src)
    up = [255 - f.image for f in read_frames(src, as_shown=True)]
    a = assemble(src, lambda i: coded[i], tmp_path / "a.mp4")
    b = assemble(src, lambda i: up[i], tmp_path / "b.mp4", as_shown=True)
    assert (a.width, a.height) == (b.width, b.height) == (64, 48)
    assert probe(b.path).rotation == 90
    assert all(np.array_equal(x.image, y.image) for x, y in zip(read_frames(a.path), read_frames(b.path)))


def test_timecode_is_kept_and_moved_to_the_window(tmp_path):
    from stylevid.video.writer import shift_timecode

    assert shift_timecode("01:00:00:00", 1.0, Fraction(25)) == "01:00:01:00"
    assert shift_timecode("00:00:59;28", 4 / 29.97, Fraction(30000, 1001)) == "00:01:00;04"   # ;00 ;01 dropped
    assert shift_timecode("00:09:59;29", 1 / 29.97, Fraction(30000, 1001)) == "00:10:00;00"   # not at minute 10
    assert shift_timecode("10:00:00:00", 0, Fraction(24)) == "10:00:00:00"
    assert shift_timecode("garbage", 1.0, Fraction(25)) is None
    src = tmp_path / "tc.mov"
    with av.open(str(src), "w") as out:                    # a camera file: a tmcd track from the tag
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.metadata["timecode"] = "01:00:00:00"
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * (i % 20), np.uint8), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    frames = stylize(src)
    events = []
    whole = assemble(src, lambda i: frames[i], tmp_path / "w.mov", on_event=events.append).path
    part = stylize(src, start=0.4)
    cut = assemble(src, lambda i: part[i], tmp_path / "c.mp4", start=0.4).path
    with av.open(str(whole)) as a, av.open(str(cut)) as b:
        assert a.streams.video[0].metadata.get("timecode") == "01:00:00:00"
        assert b.streams.video[0].metadata.get("timecode") == "01:00:00:10"
        assert [d.type for d in a.streams] == ["video", "data"]          # the tmcd track, written again
    assert warnings(events) == []


def test_streams_it_cannot_keep_are_named(tmp_path):
    from tests.clips import make_clip, moving_square

    src = tmp_path / "a.mkv"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        out.add_attachment("font.ttf", "font/ttf", b"\0" * 64)           # an MKV's subtitle font
        for i, img in enumerate(moving_square(4)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    frames = stylize(src)
    events = []
    assemble(src, lambda i: frames[i], tmp_path / "o.mkv", on_event=events.append)
    assert len(warnings(events)) == 1 and "input stream 1 (attachment) not copied" in warnings(events)[0]
    plain = make_clip(tmp_path / "p.mp4", moving_square(3), chapters=[(0, 0.3, "All")])   # chapter track: kept
    frames = stylize(plain)
    events = []
    assemble(plain, lambda i: frames[i], tmp_path / "p_out.mp4", on_event=events.append)
    assert warnings(events) == []


def test_prores_for_editing(clips, tmp_path):
    from stylevid.video.writer import check_codec

    src = clips["cfr"]
    frames = stylize(src)
    w = assemble(src, lambda i: frames[i], tmp_path / "p.mov", codec="prores")
    assert (w.codec, probe(w.path).codec, probe(w.path).pix_fmt) == ("prores_ks", "prores", "yuv422p10le")
    back = [f.image for f in read_frames(w.path)]
    assert np.abs(back[3].astype(float) - frames[3]).mean() < 2              # near lossless
    odd = [f[:, :-1] for f in frames]
    assert probe(assemble(src, lambda i: odd[i], tmp_path / "o.mkv", codec="prores").path).pix_fmt.startswith("yuv444p")   # 4444
    with pytest.raises(BadInput, match="ProRes goes in a .mov or .mkv file, not .mp4"):
        check_codec(tmp_path / "p.mp4", "prores")
    with pytest.raises(BadInput, match="--codec 'av1'"):
        check_codec(tmp_path / "p.mkv", "av1")


def test_webm_for_the_web(clips, tmp_path):
    """-o x.webm: VP9 (any size, 4:2:0), every frame at its time, audio as Opus (WebM holds Opus and
    Vorbis only: AAC is re-encoded, said once), chapters kept, text subtitles converted to WebVTT."""
    from stylevid.video.writer import check_codec, video_suffix

    src = clips["vfr"]                                  # AAC, mov_text subtitles, VFR, rotation 90
    frames = stylize(src)
    events = []
    w = assemble(src, lambda i: frames[i], tmp_path / "w.webm", on_event=events.append)
    assert (w.codec, w.audio, w.subtitles) == ("libvpx-vp9", ("opus",), 1)
    said = " ".join(warnings(events))
    assert "WebM cannot hold audio stream" in said and "re-encoded to Opus" in said and "mov_text" not in said
    assert packets(w.path, "subtitle") == [(b"hello", Fraction(1, 10)), (b"world", Fraction(6, 10))]  # WebVTT
    info = probe(w.path)
    assert info.codec == "vp9" and [a.codec for a in info.audio] == ["opus"]
    assert video_times(w.path) == video_times(src)      # VFR kept (Matroska counts in ms: so does the clip)
    back = [f.image for f in read_frames(w.path)]
    assert len(back) == len(frames) and np.abs(back[5].astype(float) - frames[5]).mean() < 6
    with av.open(str(w.path)) as c:
        assert c.format.name.startswith("matroska,webm")
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples / 48000 == pytest.approx(1.2, abs=0.05)            # the clip's 1.2 s of sound, at 48 kHz
    # An odd size stays exact; a zoom writes WebM too.
    odd = [f[:, :-1] for f in frames]
    w = assemble(src, lambda i: odd[i], tmp_path / "o.webm")
    assert (w.width, w.height, probe(w.path).pix_fmt) == (odd[0].shape[1], odd[0].shape[0], "yuv420p")
    assert write_frames(lambda i: frames[i], 4, tmp_path / "z.webm", fps=8).codec == "libvpx-vp9"
    # Which codec goes where, and the default names.
    check_codec(tmp_path / "a.webm", "h264")             # the default: a WebM gets VP9
    check_codec(tmp_path / "a.mkv", "vp9")
    with pytest.raises(BadInput, match="VP9 goes in a .webm, .mkv or .mp4 file, not .mov"):
        check_codec(tmp_path / "a.mov", "vp9")
    with pytest.raises(BadInput, match="ProRes goes in a .mov or .mkv file, not .webm"):
        check_codec(tmp_path / "a.webm", "prores")
    assert (video_suffix("vp9"), video_suffix("h264", "clip.webm"), video_suffix("h264", "clip.mkv")) == \
        (".webm", ".webm", ".mp4")


def covered(path, ext: str):
    """A 4-frame clip with cover art (a JPEG flagged attached_pic), as a downloader embeds a thumbnail."""
    import io

    from PIL import Image

    from tests.clips import moving_square

    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), (200, 30, 90), np.uint8)).save(buf, "JPEG")
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        if ext == "mkv":            # Matroska keeps a cover as an attachment
            out.add_attachment("cover.jpg", "image/jpeg", buf.getvalue())
        else:
            c = out.add_stream("mjpeg")
            c.width, c.height, c.pix_fmt = 40, 40, "yuvj444p"
            c.disposition = av.stream.Disposition.attached_pic
            cover = av.Packet(buf.getvalue())
            cover.stream, cover.pts, cover.dts, cover.time_base = c, 0, 0, Fraction(1, 90000)
            out.mux(cover)
        for i, img in enumerate(moving_square(4)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    return buf.getvalue()


def cover_of(path):
    with av.open(str(path)) as c:
        pics = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        if not pics:
            return None
        return next(bytes(p) for p in c.demux(pics[0]) if p.size)


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_cover_art_is_kept(tmp_path, ext):
    src = tmp_path / f"a.{ext}"
    jpeg = covered(src, ext)
    assert cover_of(src) == jpeg
    frames = stylize(src)
    assert len(frames) == 4                                    # the cover is not taken for a frame
    for out_ext in ("mp4", "mkv"):
        events = []
        w = assemble(src, lambda i: frames[i], tmp_path / f"o.{out_ext}", on_event=events.append, start=0.1)
        assert w.frames == 3 and warnings(events) == []
        assert cover_of(w.path) == jpeg                            # the same bytes, whatever the window
        assert len(list(read_frames(w.path))) == 3
    # WebM holds no attachment and no picture stream: the cover is named as not copied.
    events = []
    w = assemble(src, lambda i: frames[i], tmp_path / "o.webm", on_event=events.append)
    assert w.frames == 4 and cover_of(w.path) is None
    assert any("not copied" in t and "cover art" in t for t in warnings(events))


def test_the_same_frames_encode_to_the_same_bytes(clips, tmp_path):
    """A resumed video must be the very file an uninterrupted run writes. libx264's AVX-512 code
    read memory it never set (12 different files in 20 encodes at 320×180 on a Xeon): on such CPUs
    it is held to AVX2. The heap is stirred between encodes, as a long job's would be."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[:180, :320]
    pics = [np.stack([(x * 2 + k * 9) % 256, (y * 3 + k * 5) % 256, (x + y + k) % 256], -1).astype(np.uint8)
            for k in range(8)]
    pics = [np.clip(p + rng.integers(-30, 30, p.shape), 0, 255).astype(np.uint8) for p in pics]
    stir, files = [], set()
    for i in range(6):
        stir.append(rng.bytes(int(rng.integers(1_000, 2_000_000))))
        out = write_frames(lambda k: pics[k], 8, tmp_path / f"{i}.mp4", fps=10)
        files.add(hashlib.sha256(out.path.read_bytes()).hexdigest())
    assert len(files) == 1
