"""Helpers for tests that drive the ``stylevid`` command: in process (CliRunner) or as a real process.

In process is cheap (torch is already imported); a real process is what kill -9 and real signals
need. Both run with one torch thread so their frames are bit-identical to each other.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"

# Tiny and fast: ~1 s a frame on a busy 2-core machine.
FAST_VIDEO = ["--size", "48", "--first-iterations", "3", "--iterations", "2", "--reveal-iterations", "2", "--scales", "1", "--device", "cpu",
              "--quiet"]
FAST_IMAGE = ["--size", "32", "--iterations", "2", "--scales", "1", "--device", "cpu", "--quiet"]


def runner() -> CliRunner:
    # click < 8.2 mixes stderr into stdout unless told not to; click >= 8.2 keeps them apart.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def invoke(*args):
    """Run ``stylevid ARGS`` in this process; returns click's Result (exit_code, stdout, stderr)."""
    from stylevid.cli import app

    with one_thread():
        return runner().invoke(app, [str(a) for a in args])


@contextlib.contextmanager
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def spawn(*args, cwd=None, prelude: str = "", **kw) -> subprocess.Popen:
    """Start ``stylevid ARGS`` as a real process (one torch thread). ``prelude``: Python run first
    in that process (to widen a window for a kill, for instance)."""
    code = f"{prelude}\nfrom stylevid.cli import main\nmain()\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 120, step: float = 0.01):
    """Poll until ``predicate()`` is truthy; fail if ``proc`` ends first or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = predicate()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) before the condition: {err[-2000:]}")
        time.sleep(step)
    raise AssertionError("timed out waiting")


def one_error_line(stderr: str, *names) -> str:
    """The error line of a failed command; it must name each of ``names`` and show no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def check_refused(d: Path, args, code: int, *names) -> str:
    """Run ``stylevid ARGS`` in this process; the exit code, one error line naming ``names``, nothing
    written, removed or changed under ``d``. Returns the error line."""
    before = snapshot(d)
    r = invoke(*args)
    assert r.exit_code == code, (r.exit_code, r.stderr, r.exception)
    assert r.stdout == ""
    line = one_error_line(r.stderr, *names)
    assert snapshot(d) == before, "a file was written, removed or changed"
    return line


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) → sha256; FIFOs and folders by kind."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_fifo():
            out[rel] = "fifo"
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def decoded(path) -> list[np.ndarray]:
    """Every frame of a video as decoded (uint8 RGB, coded size)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def video_times(path) -> list[Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.pts * s.time_base for f in c.decode(s)]


def packets(path, kind: str) -> list[tuple[bytes, Fraction]]:
    """(bytes, time) of every non-empty packet of the streams of one kind, in file order."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [(bytes(p), p.pts * p.time_base) for p in c.demux(streams) if p.size]


def small_style(path: Path, size: int = 48) -> Path:
    im = Image.open(SAMPLES / "swirls.jpg").convert("RGB")
    im.thumbnail((size, size))
    im.save(path)
    return path


def small_photo(path: Path, size: int = 48) -> Path:
    im = Image.open(SAMPLES / "chelsea.jpg").convert("RGB")
    im.thumbnail((size, size))
    im.save(path)
    return path


def work_folders(out: Path) -> list[Path]:
    """The work folders of an output (``<folder>/.stylevid-work/<name>-<key>``)."""
    return sorted((Path(out).parent / ".stylevid-work").glob(f"{Path(out).name}-*"))


def finished_frames(out: Path) -> list[Path]:
    return sorted(p for w in work_folders(out) for p in (w / "frames").glob("*.png"))


def leftovers(folder: Path, name: str) -> list[Path]:
    """Temporary files of an output named ``name`` left in ``folder``."""
    return sorted(Path(folder).glob(f".{name}.*part*"))


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "4m"):
    """Mount a small tmpfs on ``folder`` (needs root, else the test is skipped); unmount after."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; delete the returned file to free them."""
    f = disk / "filler"
    with open(f, "ab", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass
    return f
