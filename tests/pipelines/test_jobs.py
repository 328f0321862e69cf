"""The resumable job's parts (pipelines/jobs.py) on their own; whole jobs stopped and resumed are in
test_video.py."""
from __future__ import annotations

import numpy as np
import pytest

from stylevid.errors import BadInput
from stylevid.pipelines.jobs import WorkFolder, file_identity, finished_frame


def picture(v: int) -> np.ndarray:
    return np.full((8, 12, 3), v, np.uint8)


def test_work_folder_keeps_verified_frames_under_its_key(tmp_path):
    w = WorkFolder(tmp_path / "job", "key1", {"input": "x"})
    for t in (0, 1, 3):
        w.save(t, picture(10 * t))
    assert w.done_prefix() == 2                       # frame 2 is missing: the prefix stops there
    assert np.array_equal(w.load(3), picture(30))
    assert np.array_equal(finished_frame(w, 1), picture(10))
    again = WorkFolder(tmp_path / "job", "key1", {"input": "x"})      # a resume reads the index
    assert again.done_prefix() == 2 and again.png(0) == w.png(0)
    other = WorkFolder(tmp_path / "job", "key2", {"input": "y"})      # another job's key: nothing finished
    assert other.done_prefix() == 0 and other.load(0) is None


def test_a_frame_whose_bytes_changed_is_not_finished(tmp_path):
    w = WorkFolder(tmp_path / "job", "k", {})
    w.save(0, picture(5))
    w.save(1, picture(6))
    data = bytearray(w.path(1).read_bytes())
    data[-20] ^= 0xFF
    w.path(1).write_bytes(bytes(data))
    assert w.load(1) is None and w.load(0) is not None
    with pytest.raises(BadInput, match="missing or corrupted"):
        finished_frame(w, 1)


def test_file_identity_sees_a_change_at_either_end_of_a_big_file(tmp_path):
    """Same size and modification time (a copy tool can keep both): the first and last MiB still
    tell the files apart; the middle is not read."""
    import os

    f = tmp_path / "big.bin"
    data = bytearray(5 << 20)
    f.write_bytes(bytes(data))
    st = f.stat()
    first = file_identity(f)

    def rewrite(b: bytearray) -> str:
        f.write_bytes(bytes(b))
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        return file_identity(f)

    assert rewrite(data) == first
    for at, seen in ((0, True), (len(data) - 1, True), (len(data) // 2, False)):
        changed = bytearray(data)
        changed[at] = 1
        assert (rewrite(changed) != first) == seen, at
