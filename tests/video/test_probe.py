from __future__ import annotations

import shutil
from fractions import Fraction

import av
import numpy as np
import pytest

from stylevid.errors import BadInput, InputNotFound, InvalidMedia, TooLarge
from stylevid.video import probe
from tests.clips import make_clip, moving_square, truncate


def test_probe_vfr_clip(clips):
    info = probe(clips["vfr"])
    assert (info.width, info.height) == (64, 48)
    assert info.display_size == (48, 64)
    assert info.rotation == 90
    assert info.display_matrix is not None and len(info.display_matrix) == 9
    assert info.frames == 12
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert [a.codec for a in info.audio] == ["aac"]
    assert [s.codec for s in info.subtitles] == ["mov_text"]
    assert isinstance(info.time_base, Fraction)
    assert 0.9 < info.duration < 1.3
    assert not info.spherical and info.has_video


def test_probe_cfr_clip(clips):
    info = probe(clips["cfr"])
    assert info.fps == pytest.approx(10.0)
    assert info.frames == 20
    assert info.rotation == 0 and info.display_matrix is None
    assert info.audio == () and info.subtitles == ()


def test_probe_mkv_names_codecs_not_decoders(clips):
    info = probe(clips["mkv"])
    assert info.frames == 0            # Matroska declares no frame count
    assert [a.codec for a in info.audio] == ["pcm_u8"]
    assert [s.codec for s in info.subtitles] == ["subrip"]   # the decoder is called "srt"


def test_audio_only_is_not_a_video(tmp_path):
    p = tmp_path / "sound.m4a"
    with av.open(str(p), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=22050)
        s.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 22050, 0
        out.mux(s.encode(f))
        out.mux(s.encode())
    with pytest.raises(InvalidMedia, match="no video stream"):
        probe(p)
    info = probe(p, require_video=False)
    assert not info.has_video and [a.codec for a in info.audio] == ["aac"]


def test_not_a_video(tmp_path):
    p = tmp_path / "noise.mp4"
    p.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(InvalidMedia, match=r"noise\.mp4: not a readable video \(.+\)"):
        probe(p)


def test_png_renamed_mp4(tmp_path):
    png = tmp_path / "pic.png"
    av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24").save(str(png))
    p = png.rename(tmp_path / "pic.mp4")
    with pytest.raises(InvalidMedia, match="still image"):
        probe(p)


def test_truncated_head_gives_ffmpeg_reason(clips, tmp_path):
    # The index (moov) sits at the end of a normal MP4: cut it off.
    p = truncate(clips["cfr"], tmp_path / "cut.mp4", 0.5)
    with pytest.raises(InvalidMedia, match="moov atom not found"):
        probe(p)


def test_empty_missing_directory_fifo(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="empty"):
        probe(empty)
    with pytest.raises(InputNotFound):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(BadInput, match="directory"):
        probe(tmp_path)


def test_url_paths_refused(clips):
    for url in [f"concat:{clips['cfr']}|{clips['cfr']}", "http://example.com/a.mp4", "file:" + str(clips["cfr"])]:
        with pytest.raises(BadInput, match="URL"):
            probe(url)
    with pytest.raises(BadInput):   # not a file here, so "not found"
        probe(f"subfile,,start,0,end,999,,:{clips['cfr']}")


def test_file_named_like_a_url_is_read_as_a_file(clips, tmp_path, monkeypatch):
    name = "concat:a.mp4|b.mp4"
    shutil.copy(clips["cfr"], tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert probe(name).frames == 20


def test_absurd_dimensions_too_large(tmp_path):
    # A raw YUV4MPEG header declaring 12000x12000 (FFmpeg itself accepts up to ~16k x 16k).
    p = tmp_path / "huge.y4m"
    p.write_bytes(b"YUV4MPEG2 W12000 H12000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\0" * 64)
    with pytest.raises(TooLarge, match="12000x12000"):
        probe(p)


def test_probe_odd_size(clips):
    info = probe(clips["odd"])
    assert (info.width, info.height) == (45, 31) and info.codec == "mpeg4"


def test_clip_maker_vfr_timestamps(tmp_path):
    p = make_clip(tmp_path / "v.mkv", moving_square(3, 16, 16), pts=[0, 7, 100])
    with av.open(str(p)) as c:
        assert [f.pts for f in c.decode(video=0)] == [0, 7, 100]
