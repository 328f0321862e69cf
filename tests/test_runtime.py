"""Devices and seeds (runtime.py), and the small L0 modules: config, events, errors."""
from __future__ import annotations

import json

import pytest
import torch

from stylevid import config as C
from stylevid import errors as E
from stylevid.events import Message, Progress, info, null_sink, warn
from stylevid.runtime import generator, pick_device


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(E.BadInput, match="tpu"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(E.BadInput, match="cuda"):
            pick_device("cuda")


def test_generator_is_seeded_per_index():
    draw = lambda seed, index: torch.rand(8, generator=generator(seed, index))  # noqa: E731
    assert torch.equal(draw(0, 3), draw(0, 3))
    assert not torch.equal(draw(0, 3), draw(0, 4))
    assert not torch.equal(draw(0, 3), draw(1, 3))
    assert torch.equal(draw(2**62, 10**9), draw(2**62, 10**9))  # big values stay in range


def test_exit_codes_are_distinct_and_bad_inputs_are_bad_input():
    classes = [E.StylevidError, E.BadInput, E.InputNotFound, E.InvalidMedia, E.TooLarge, E.OutputRefused,
               E.WriteFailed, E.WeightsError]
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes) and 0 not in codes
    assert (E.BadInput.code, E.InputNotFound.code, E.InvalidMedia.code, E.TooLarge.code) == (2, 3, 4, 5)
    assert E.OutputRefused.code == 6
    for c in (E.InputNotFound, E.InvalidMedia, E.TooLarge):
        assert issubclass(c, E.BadInput)
    assert E.Interrupted("stopped", 15).code == 143


def test_events():
    seen = []
    info(seen.append, "hello")
    warn(seen.append, "careful")
    assert seen == [Message("hello", "info"), Message("careful", "warning")]
    null_sink(Progress("frames", 0, 3))
    assert Progress("frames", 1).total is None


def test_config_defaults_are_consistent_and_json_ready():
    s = C.StyleConfig()
    assert s.encoder in C.ENCODERS and s.init in C.INITS and s.optimizer in C.OPTIMIZERS and s.device in C.DEVICES
    assert s.layers() == (C.ENCODER_LAYERS["lite0"]["style"], C.ENCODER_LAYERS["lite0"]["content"])
    custom = C.replace(s, style_layers=("stem",), content_layers=("block4",))
    assert custom.layers() == (("stem",), ("block4",))
    for cfg in (s, C.VideoConfig(), C.DreamConfig(), C.PanoramaConfig(), C.TextConfig()):
        json.dumps(C.to_dict(cfg))
    with pytest.raises(Exception):
        s.size = 3  # frozen


TRIM_CHECK = """
import gc
from stylevid.runtime import release_free_memory, resident_mb
# 64 KB blocks live in the heap (under glibc's mmap threshold), each followed by a small block that
# stays: free() cannot give the holes back by itself, only a trim can (~190 MB here).
big, small = [], []
for _ in range(3000):
    b = bytearray(64 << 10)
    b[::4096] = b"\\1" * len(b[::4096])          # touch every page
    big.append(b)
    small.append(bytearray(2048))
del big, b
gc.collect()
freed = resident_mb()
release_free_memory()
print(freed, resident_mb(), len(small))
"""


def test_release_free_memory_gives_heap_pages_back():
    """glibc: freed heap pages go back to the system (resident memory drops); elsewhere a no-op.
    In a fresh process: a long-lived test process's heap has holes that hide the effect."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", TRIM_CHECK], capture_output=True, text=True, check=True)
    freed, after, n = r.stdout.split()
    if freed != "None" and _glibc():
        assert float(freed) - float(after) > 100, (freed, after)


FAULT_CHECK = """
import resource, sys
import torch
from stylevid.runtime import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for mb in range(1, 21):                      # ever bigger activations, freed after use (210 MB)
    t = torch.empty(mb << 18)                # mb MB of float32
    t.fill_(1.0)                             # touch every page
    del t
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_keep_freed_memory_stops_faulting_activations_in_again():
    """glibc: with the default mmap threshold every new biggest block is mapped, faulted in and
    unmapped (210 MB of page faults here); kept in the heap, the freed memory is reused (40-65 MB)."""
    import subprocess
    import sys

    runs = {}
    for mode in ("default", "keep"):
        r = subprocess.run([sys.executable, "-c", FAULT_CHECK, mode], capture_output=True, text=True, check=True)
        kept, faults = r.stdout.split()
        runs[mode] = (kept == "True", int(faults))
    if not _glibc():
        assert runs["keep"][0] is False
        return
    assert runs["keep"][0] is True
    pages_mb = 4096 / 2**20
    assert runs["default"][1] * pages_mb > 150, runs
    assert runs["keep"][1] * 2.5 < runs["default"][1], runs


def _glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"


def test_release_free_memory_under_the_threshold_does_nothing(monkeypatch):
    import stylevid.runtime as R

    calls = []
    monkeypatch.setattr(R, "_TRIM", [lambda pad: calls.append(pad)])
    monkeypatch.setattr(R, "resident_mb", lambda: 100.0)
    R.release_free_memory(2048)
    assert calls == []
    R.release_free_memory(50)
    R.release_free_memory()
    assert calls == [0, 0]


def test_cpu_has_bf16_agrees_with_the_kernel():
    """The probe behind the --precision bf16 message: the CPU flags Linux reports say the same."""
    from pathlib import Path

    from stylevid.runtime import cpu_has_bf16

    info = Path("/proc/cpuinfo")
    if not info.is_file():
        pytest.skip("no /proc/cpuinfo")
    flags = next((ln.split(":", 1)[1].split() for ln in info.read_text().splitlines() if ln.startswith("flags")), None)
    if flags is None:
        pytest.skip("no CPU flags listed (not x86)")
    assert cpu_has_bf16() == ("amx_tile" in flags or "avx512_bf16" in flags)
