"""360° metadata written into MP4/MOV files (Spherical Video V1), read back by FFmpeg."""
from __future__ import annotations

import struct

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
