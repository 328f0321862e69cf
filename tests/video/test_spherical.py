"""360° metadata written into MP4/MOV files (Spherical Video V1) and MKV/WebM files (Projection), read back by FFmpeg."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from stylevid.video import probe, read_frames
from stylevid.video.spherical import UUID, add_spherical
from tests.cli_helpers import packets
from tests.clips import make_clip


def top_level(path) -> list[bytes]:
    data, kinds, pos = path.read_bytes(), [], 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        kinds.append(kind)
        pos += size
    return kinds


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
@pytest.mark.parametrize("faststart", [False, True])
def test_spherical_box_reads_back_and_leaves_the_media_alone(tmp_path, ext, faststart):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 64, 3), dtype=np.uint8) for _ in range(4)]
    clip = make_clip(tmp_path / f"c{ext}", frames, audio=0.4, faststart=faststart)
    kinds = top_level(clip)
    # faststart puts the index before the media data: every chunk offset must move with it.
    assert (kinds.index(b"moov") < kinds.index(b"mdat")) is faststart
    before_v, before_a = [f.image for f in read_frames(clip)], packets(clip, "audio")
    assert not probe(clip).spherical

    assert add_spherical(clip) is True
    assert probe(clip).spherical                      # FFmpeg's own parser finds it
    assert clip.read_bytes().count(UUID) == 1
    after = [f.image for f in read_frames(clip)]
    assert len(after) == len(before_v) and all((a == b).all() for a, b in zip(after, before_v))
    assert packets(clip, "audio") == before_a          # bit-exact
    assert top_level(clip) == kinds

    size = clip.stat().st_size
    assert add_spherical(clip) is False and clip.stat().st_size == size   # marked already


def test_a_file_without_video_is_left_alone(tmp_path):
    import av

    p = tmp_path / "a.mp4"
    with av.open(str(p), "w") as out:
        s = out.add_stream("aac", rate=22050)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 22050
        for pkt in [*s.encode(frame), *s.encode(None)]:
            out.mux(pkt)
    data = p.read_bytes()
    assert add_spherical(p) is False and p.read_bytes() == data


@pytest.mark.parametrize("stereo", ["", "left-right", "top-bottom"])
def test_stereo_layout_reads_back(tmp_path, stereo):
    clip = make_clip(tmp_path / "c.mp4", [np.zeros((32, 64, 3), np.uint8)] * 2)
    add_spherical(clip, stereo)
    info = probe(clip)
    assert info.spherical and info.stereo == stereo and info.stereo3d is bool(stereo)
    with pytest.raises(ValueError, match="stereo layout"):
        add_spherical(clip, "checkerboard")


# -- Matroska and WebM ---------------------------------------------------------------------------------

def _mkv_check(path) -> tuple[list[bool], list[bool]]:
    """Whether each level-1 CRC-32 matches its element, and each SeekHead entry points at its element."""
    import zlib

    from stylevid.video.spherical import CRC32, SEEK, SEEK_ID, SEEK_POSITION, SEEKHEAD, _children, _id, _vint

    buf = Path(path).read_bytes()
    head = next(_children(buf, 0, len(buf)))[3]
    n = _id(buf, head)[1]
    size, m = _vint(buf, head + n)
    data = head + n + m
    crcs, seeks = [], []
    for eid, p, h, ln in _children(buf, data, data + size):
        body = buf[p + h:p + ln]
        if body[:2] == bytes([CRC32, 0x84]):
            crcs.append(int.from_bytes(body[2:6], "little") == zlib.crc32(body[6:]))
        if eid == SEEKHEAD:
            for k, q, hh, ll in _children(buf, p + h, p + ln):
                if k == SEEK:
                    d = {kk: buf[qq + h2:qq + l2] for kk, qq, h2, l2 in _children(buf, q + hh, q + ll)}
                    at = data + int.from_bytes(d[SEEK_POSITION], "big")
                    seeks.append(buf[at:at + len(d[SEEK_ID])] == d[SEEK_ID])
    return crcs, seeks


@pytest.mark.parametrize("ext", [".mkv", ".webm"])
@pytest.mark.parametrize("stereo", ["", "left-right", "top-bottom"])
def test_projection_reads_back_and_leaves_the_media_alone(tmp_path, ext, stereo):
    """FFmpeg's Matroska muxer writes no 360 metadata from PyAV: ``add_projection`` puts the
    Projection element (and StereoMode) into the video track, taking the room from the Void the
    muxer leaves before Tracks: the file keeps its size, clusters and cues stay where they were,
    the SeekHead follows the elements that moved and every CRC-32 (MKV) is right again."""
    from stylevid.video import assemble
    from stylevid.video.spherical import add_projection

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 64, 3), dtype=np.uint8) for _ in range(12)]
    src = make_clip(tmp_path / "src.mp4", frames, audio=1.0)
    out = assemble(src, lambda i: frames[i], tmp_path / f"o{ext}").path
    before, before_a, size = [f.image for f in read_frames(out)], packets(out, "audio"), out.stat().st_size
    assert not probe(out).spherical
    crcs, seeks = _mkv_check(out)
    assert (len(crcs) > 0) is (ext == ".mkv") and all(crcs) and len(seeks) >= 3 and all(seeks)

    assert add_projection(out, stereo) is True
    info = probe(out)                                   # FFmpeg's own parser finds it
    assert info.spherical and info.stereo == stereo and info.stereo3d is bool(stereo)
    assert out.stat().st_size == size
    after = [f.image for f in read_frames(out)]
    assert len(after) == len(before) and all((a == b).all() for a, b in zip(after, before))
    assert packets(out, "audio") == before_a           # bit-exact
    crcs, seeks = _mkv_check(out)
    assert all(crcs) and all(seeks)

    data = out.read_bytes()
    assert add_projection(out, stereo) is False and out.read_bytes() == data     # marked already


def test_projection_needs_the_room_the_muxer_leaves(tmp_path):
    from stylevid.errors import InvalidMedia
    from stylevid.video.spherical import VOID, add_projection

    clip = make_clip(tmp_path / "c.mkv", [np.zeros((32, 64, 3), np.uint8)] * 2)
    data = bytearray(clip.read_bytes())
    voids = [p for p in range(len(data) - 1) if data[p] == VOID and data[p + 1] == 0x01]   # 8-byte size
    assert voids
    data[voids[0]] = 0xEA             # an element the muxer did not leave for us: no room to take
    clip.write_bytes(bytes(data))
    with pytest.raises(InvalidMedia, match="no room"):
        add_projection(clip)
    with pytest.raises(ValueError, match="stereo layout"):
        add_projection(clip, "checkerboard")
    clip.write_bytes(bytes(data[:200]))                  # a head cut short: refused, not a crash
    with pytest.raises(InvalidMedia):
        add_projection(clip)


def test_void_elements_of_any_length():
    from stylevid.video.spherical import VOID, _children, _void

    for n in (0, 2, 3, 128, 129, 135, 136, 400):
        v = _void(n)
        assert len(v) == n
        if n:
            assert [(e, ln) for e, _, _, ln in _children(v, 0, n)] == [(VOID, n)]
