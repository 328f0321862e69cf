"""Issue 8, slow tests (``-m slow``): fuzzing the CLI with damaged files, and kill -9 at random moments.

The fuzz mutates and truncates small real files that it writes itself (MP4 with audio, MKV with
PCM audio and subtitles, PNG, JPEG) and runs ``image``, ``video`` and ``flicker`` on them for about
a minute: the command must only ever end with a documented exit code (0, 2-8), one error line,
no traceback, nothing left under the output name on failure, and the input untouched.
"""
from __future__ import annotations

import faulthandler
import hashlib
import os
import random
import time
from pathlib import Path

import pytest

from tests.cli_helpers import (FAST_VIDEO, finished_frames, invoke, leftovers, sha256, small_photo, small_style,
                               spawn, wait_for, work_folders)
from tests.clips import make_clip, moving_square

pytestmark = pytest.mark.slow

DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8}
BUDGET_S = float(os.environ.get("STYLEVID_FUZZ_SECONDS", "60"))
TINY_VIDEO = ["--size", "24", "--first-iterations", "1", "--iterations", "1", "--scales", "1", "--device", "cpu",
              "--duration", "0.3", "-q"]
TINY_IMAGE = ["--size", "24", "--iterations", "1", "--scales", "1", "--device", "cpu", "-q"]


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random damage: truncation, flipped bytes, a zeroed or random block, a repeated or cut chunk."""
    n = len(data)
    kind = rng.choice(["truncate", "flip", "zero", "random", "repeat", "cut", "header"])
    b = bytearray(data)
    if kind == "truncate":
        return kind, bytes(b[:rng.randrange(1, n)])
    if kind == "flip":
        for _ in range(rng.choice([1, 4, 32])):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "header":   # damage the first 64 bytes, where the container says what it is
        for _ in range(4):
            b[rng.randrange(min(64, n))] = rng.randrange(256)
        return kind, bytes(b)
    i = rng.randrange(n)
    k = rng.randrange(1, max(2, n // 8))
    if kind == "zero":
        b[i:i + k] = bytes(len(b[i:i + k]))
    elif kind == "random":
        b[i:i + k] = bytes(rng.randrange(256) for _ in range(len(b[i:i + k])))
    elif kind == "repeat":
        b[i:i] = b[i:i + k]
    else:
        del b[i:i + k]
    return kind, bytes(b)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    make_clip(d / "clip.mp4", moving_square(5, 32, 48), fps=10, audio=0.5, faststart=True)
    make_clip(d / "clip.mkv", moving_square(5, 32, 48), fps=10, audio=0.5, audio_codec="pcm_u8",
              subtitles=[(0.1, 0.3, "cue")])
    small_photo(d / "photo.png")
    small_photo(d / "photo.jpg")
    small_style(d / "style.png")
    return d


def test_fuzz_the_cli_with_damaged_files(seeds, tmp_path):
    rng = random.Random(int(os.environ.get("STYLEVID_FUZZ_SEED", "8")))
    faulthandler.dump_traceback_later(BUDGET_S + 300, exit=True)   # a hang must not block the suite forever
    failures, runs, codes = [], 0, {}
    end = time.monotonic() + BUDGET_S
    try:
        while time.monotonic() < end:
            src = rng.choice(["clip.mp4", "clip.mkv", "photo.png", "photo.jpg"])
            kind, data = mutate((seeds / src).read_bytes(), rng)
            f = tmp_path / f"m{runs}{Path(src).suffix}"
            f.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            if src.startswith("clip"):
                out = tmp_path / f"o{runs}.mp4"
                cmd = rng.choice([
                    ["video", f, "-s", seeds / "style.png", "-o", out, *TINY_VIDEO],
                    ["flicker", f, "--reference", seeds / src, "--csv", tmp_path / f"o{runs}.csv"],
                    ["flicker", seeds / src, "--reference", f],
                ])
            else:
                out = tmp_path / f"o{runs}.png"
                cmd = rng.choice([
                    ["image", f, "-s", seeds / "style.png", "-o", out, *TINY_IMAGE],
                    ["image", seeds / "photo.png", "-s", f, "-o", out, *TINY_IMAGE],
                ])
            r = invoke(*cmd)
            runs += 1
            codes[r.exit_code] = codes.get(r.exit_code, 0) + 1
            problem = None
            if r.exit_code not in DOCUMENTED:
                problem = f"exit {r.exit_code}"
            elif r.exception is not None and not isinstance(r.exception, SystemExit):
                problem = f"exception {type(r.exception).__name__}: {r.exception}"
            elif "Traceback" in r.stderr:
                problem = "traceback"
            elif r.exit_code and len([ln for ln in r.stderr.splitlines() if ln.startswith("error:")]) != 1:
                problem = "not exactly one error line"
            elif r.exit_code and (out.exists() or leftovers(tmp_path, out.name)):
                problem = "output left behind"
            elif hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                problem = "input changed"
            if problem:
                keep = tmp_path.parent / f"fuzz-case-{runs}{f.suffix}"
                keep.write_bytes(data)
                failures.append(f"{problem}: {kind} of {src} (kept as {keep}), "
                                f"{' '.join(map(str, cmd[:1]))}: {r.stderr.strip()[-400:]}")
    finally:
        faulthandler.cancel_dump_traceback_later()
    print(f"fuzz: {runs} runs, exit codes {codes}")
    assert runs >= 10
    assert not failures, "\n".join(failures)


# In a real process, slow the frames and the final mux down so that a random kill lands inside the
# job (a tiny job takes under a second now, then the interpreter takes a second to exit).
SLOW_FRAMES = ("import time, stylevid.pipelines.video as v\n_s = v.WorkFolder.save\n"
               "v.WorkFolder.save = lambda *a: (_s(*a), time.sleep(0.3))[0]\n")
SLOW_MUX = ("import time, stylevid.video.writer as w\n_f = w._to_frame\n"
            "w._to_frame = lambda *a: (time.sleep(0.1), _f(*a))[1]\n")


def test_kill_9_at_random_moments_then_rerun_is_bit_identical(seeds, tmp_path):
    clip, style = seeds / "clip.mp4", seeds / "style.png"
    ref = tmp_path / "ref.mp4"
    r = invoke("video", clip, "-s", style, "-o", ref, *FAST_VIDEO)
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "killed.mp4"
    args = ("video", clip, "-s", style, "-o", out, *FAST_VIDEO)
    rng = random.Random(9)
    kills = 0
    finished = False
    for attempt in range(6):
        p = spawn(*args, prelude=SLOW_FRAMES + (SLOW_MUX if attempt % 2 else ""))
        try:
            # Once the job is under way (its work folder exists), kill it after a random delay.
            wait_for(lambda: work_folders(out) or p.poll() is not None, timeout=300)
            time.sleep(rng.uniform(0, 3))
            if p.poll() is None:
                p.kill()
                kills += 1
        finally:
            p.kill()
            p.communicate()
        assert p.returncode in (0, -9), p.returncode
        if p.returncode == 0:
            break
        if out.exists():
            # Killed after the output's rename, as the process was finishing: the output is whole (checked
            # below); its work folder may remain, to be reused by a run with --overwrite.
            finished = True
            break
    assert kills >= 1
    if not out.exists():
        r = invoke(*args)
        assert r.exit_code == 0, r.stderr
    assert sha256(out) == sha256(ref)
    assert not leftovers(tmp_path, out.name)
    if not finished:
        assert not work_folders(out) and not finished_frames(out)
