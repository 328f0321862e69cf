"""Image sequences (sequence.py): which files, in which order, what is refused, and the names."""
from __future__ import annotations

import os

import pytest

from stylevid.errors import BadInput, InputNotFound
from stylevid.sequence import check_video_input, frames, gaps, identity, is_sequence, stem


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"x")


def test_a_folder_is_ordered_by_number_not_by_name(tmp_path):
    d = tmp_path / "render"
    touch(d, "f_9.png", "f_10.png", "f_1.png", "readme.txt", "cover.png")   # no number, not a picture: ignored
    assert is_sequence(d)
    assert [(n, f.name) for n, f in frames(d)] == [(1, "f_1.png"), (9, "f_9.png"), (10, "f_10.png")]
    assert gaps([1, 9, 10]) == [(2, 8)] and gaps([1, 2, 3]) == []
    assert stem(d) == "render" and check_video_input(d) == d


def test_a_pattern_takes_its_own_names_and_width(tmp_path):
    d = tmp_path / "shots"
    touch(d, "a_0001.png", "a_0002.png", "a_0003.png", "a_01.png", "b_0001.png", "a_0004.jpg")
    assert [f.name for _, f in frames(d / "a_%04d.png")] == ["a_0001.png", "a_0002.png", "a_0003.png"]
    with pytest.raises(BadInput, match="a_0001.png and a_01.png have one number"):
        frames(d / "a_%d.png")                    # any width: a_01 and a_0001 are both frame 1
    assert stem(d / "a_%04d.png") == "a" and stem(d / "%04d.png") == "shots"
    assert is_sequence(d / "a_%04d.png") and not is_sequence(d / "a_0001.png")


def test_what_is_refused(tmp_path):
    d = tmp_path / "mixed"
    touch(d, "a_1.png", "a_2.png", "b_1.png", "b_2.png")
    with pytest.raises(BadInput, match="2 names"):
        frames(d)
    touch(tmp_path / "dup", "f_7.png", "f_007.png")
    with pytest.raises(BadInput, match="have one number"):
        frames(tmp_path / "dup")
    touch(tmp_path / "one", "f_1.png")
    with pytest.raises(BadInput, match="stylevid image"):
        frames(tmp_path / "one")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="a folder with no numbered pictures"):
        frames(tmp_path / "empty")
    with pytest.raises(InputNotFound, match="not found"):
        frames(tmp_path / "nowhere" / "f_%04d.png")
    with pytest.raises(InputNotFound, match="no picture matches"):
        frames(tmp_path / "empty" / "f_%04d.png")


def test_identity_follows_the_files(tmp_path):
    d = tmp_path / "s"
    touch(d, "1.png", "2.png")
    before = identity(frames(d))
    assert identity(frames(d)) == before
    (d / "2.png").write_bytes(b"changed")
    os.utime(d / "2.png", ns=(1, 1))
    assert identity(frames(d)) != before
