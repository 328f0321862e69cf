"""Input checks, output checks, atomic writes and the exclusive lock (files.py)."""
from __future__ import annotations

import os
import stat

import pytest

from stylevid.errors import BadInput, InputNotFound, OutputRefused, WriteFailed
from stylevid.files import (atomic_path, atomic_write_text, check_input, check_output, clean_stale_temporaries,
                            exclusive, write_failed)


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(b"\xff\xd8 not really a jpeg")
    return p


def test_check_input_accepts_a_regular_file(photo):
    assert check_input(photo) == photo
    assert check_input(str(photo)) == photo


@pytest.mark.parametrize("url", ["concat:a.mp4|b.mp4", "http://x", "https://example.com/a.jpg", "file:photo.jpg"])
def test_check_input_refuses_urls(url):
    with pytest.raises(BadInput, match="URL") as e:
        check_input(url)
    assert type(e.value) is BadInput


def test_check_input_refuses_other_protocol_paths():
    # Not URL-shaped, but not an existing file either (FFmpeg never sees it).
    with pytest.raises(BadInput):
        check_input("subfile,,start,0,end,0,,:a.mp4")


def test_check_input_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="FIFO"):  # must not open it (that would hang)
        check_input(fifo)


def test_check_input_refuses_a_directory_missing_and_empty(tmp_path):
    with pytest.raises(BadInput, match="directory"):
        check_input(tmp_path)
    with pytest.raises(InputNotFound, match="missing.jpg"):
        check_input(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").touch()
    with pytest.raises(BadInput, match="empty"):
        check_input(tmp_path / "empty.jpg")


def test_check_input_allows_a_colon_in_an_existing_local_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a:b.jpg").write_bytes(b"x")
    assert check_input("a:b.jpg").name == "a:b.jpg"


def test_check_output(tmp_path, photo):
    out = tmp_path / "out.png"
    assert check_output(out, [photo]) == out
    out.write_bytes(b"x")
    with pytest.raises(OutputRefused, match="overwrite"):
        check_output(out, [photo])
    assert check_output(out, [photo], overwrite=True) == out


def test_check_output_refuses_an_input_even_with_overwrite(tmp_path, photo, monkeypatch):
    with pytest.raises(OutputRefused, match="input"):
        check_output(photo, [photo], overwrite=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputRefused, match="input"):  # the same file under another spelling
        check_output("./sub/../photo.jpg", [photo], overwrite=True)
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    with pytest.raises(OutputRefused, match="input"):
        check_output(link, [photo], overwrite=True)


def test_check_output_missing_folder_and_directory(tmp_path):
    with pytest.raises(OutputRefused, match="does not exist"):
        check_output(tmp_path / "nope" / "out.png")
    with pytest.raises(OutputRefused, match="directory"):
        check_output(tmp_path, overwrite=True)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputRefused, match="not writable"):
            check_output(ro / "out.png")
    finally:
        ro.chmod(stat.S_IRWXU)


def test_atomic_path_success(tmp_path):
    final = tmp_path / "out.mp4"
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp != final
        assert not final.exists()
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_atomic_path_leaves_nothing_on_exception(tmp_path):
    final = tmp_path / "out.png"
    with pytest.raises(ZeroDivisionError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            1 / 0
    assert list(tmp_path.iterdir()) == []
    # An existing output is kept intact when the replacement fails.
    final.write_bytes(b"old")
    with pytest.raises(KeyError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"new")
            raise KeyError("boom")
    assert final.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_atomic_path_turns_os_errors_into_write_failed(tmp_path):
    with pytest.raises(WriteFailed, match="out.png"):
        with atomic_path(tmp_path / "out.png"):
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    assert "disk full" in str(write_failed("x.png", OSError(28, "No space left on device")))


def test_atomic_write_text_and_stale_temporaries(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{}\n")
    assert (tmp_path / "a.json").read_text() == "{}\n"
    (tmp_path / ".out.png.abc.part.png").write_bytes(b"left by a killed run")
    assert clean_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_exclusive_lock_refuses_a_second_holder(tmp_path):
    lock = tmp_path / "job.lock"
    with exclusive(lock, "out.mp4"):
        with pytest.raises(OutputRefused, match="another stylevid run"):
            with exclusive(lock, "out.mp4"):
                pass
    with exclusive(lock, "out.mp4"):  # released: can be taken again
        pass
