"""Device, threads and seeds (L1: torch only)."""
from __future__ import annotations

import os

import torch

from .errors import BadInput


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA, then MPS, then the CPU; naming a missing device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA device is available here")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInput("--device mps: no MPS device is available here")
    if name not in ("cpu", "cuda", "mps"):
        raise BadInput(f"--device {name!r}: expected auto, cpu, cuda or mps")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 itself (AMX or AVX512-BF16): there ``--precision bf16``
    costs about what fp32 does (VGG's big convolutions gain); elsewhere it is emulated, many times slower."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:   # a torch without these probes
        return False


def generator(seed: int, index: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, index): frame k of a resumed job draws what it drew before."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(index)) % (2**63))
    return g


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)


def _libc(fn: str):
    import ctypes
    import ctypes.util

    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), fn)
    except (OSError, AttributeError):      # not glibc: nothing to do
        return None


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # glibc mallopt parameters
HEAP_BLOCK_MB = 32                              # glibc's largest mmap threshold on 64-bit
HEAP_KEEP_MB = 1024                             # free memory at the heap's top kept for reuse


def keep_freed_memory() -> bool:
    """Make glibc keep freed tensor memory for the next iteration (``mallopt``; False where it
    is not glibc). Called once by the CLI; library users may call it too.

    By default glibc hands blocks of a few MB to ``mmap`` and returns them on free, so every
    iteration faults its activations in again (12 000-22 000 page faults per lite0 step at 512 px):
    a loss evaluation took 0.139 s instead of 0.110 s (bench.py `speed`). Blocks up to 32 MB now
    come from the heap, and up to 1 GB of free memory at its top stays mapped. Big pictures still
    give memory back explicitly (``release_free_memory``), above ``TRIM_ABOVE_MB``."""
    mallopt = _libc("mallopt")
    if mallopt is None:
        return False
    ok = mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_MB << 20) == 1
    return bool(mallopt(M_TRIM_THRESHOLD, HEAP_KEEP_MB << 20) == 1 and ok)


_TRIM = []
# Resident size over which the tiled path gives freed pages back. bench.py scale at 3840x1920,
# run at 2048 and with --trim-above 3072: flat 2.72 GB / 130 s vs 3.24 GB / 114 s, 360 3.46 GB /
# 386 s vs 3.58 GB / 298 s. 3072 keeps the 4 GB goal and is 13-23 % faster.
TRIM_ABOVE_MB = 3072


def resident_mb() -> float | None:
    """This process's resident memory in MB (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def release_free_memory(above_mb: float | None = None) -> None:
    """Hand freed heap memory back to the system (glibc ``malloc_trim``; a no-op elsewhere), if the
    process holds more than ``above_mb`` (always, when None).

    Tensors under the mmap threshold (32 MB with ``keep_freed_memory``) live in the heap, and their
    freed pages stay resident: untrimmed, a 3840x1920 360 picture peaked at 4.5 GB. A trim costs
    ~50 ms, and the pages given back are faulted in again by the next tile (trimming at every tile
    made a 3840x1920 picture 38-43 % slower), hence the threshold ``TRIM_ABOVE_MB``."""
    if above_mb is not None:
        rss = resident_mb()
        if rss is None or rss < above_mb:
            return
    if not _TRIM:
        _TRIM.append(_libc("malloc_trim"))
    if _TRIM[0] is not None:
        _TRIM[0](0)


class StopFlag:
    """Set by SIGINT/SIGTERM/SIGHUP inside ``interruptible()``; pipelines poll it at safe points.

    The first signal asks for a clean stop (finished work is kept); a second one interrupts at once
    by raising :class:`StopNow` wherever the main thread is. Frames and checkpoints are written
    atomically (temporary name, rename), so neither corrupts them.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


class StopNow(KeyboardInterrupt):
    """A second stop signal: raised at once in the main thread. ``signum`` is that signal."""

    def __init__(self, signum: int = 2):
        super().__init__(signum)
        self.signum = signum


def interruptible():
    """Context manager yielding a StopFlag; handlers are installed only in the main thread."""
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def cm():
        flag = StopFlag()
        if threading.current_thread() is not threading.main_thread():
            yield flag
            return
        sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        old = {s: signal.getsignal(s) for s in sigs}

        def handler(signum, frame):
            if flag.signum is not None:
                raise StopNow(signum)
            flag.signum = signum

        for s in sigs:
            signal.signal(s, handler)
        try:
            yield flag
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    return cm()
