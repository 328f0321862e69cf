"""The resumable job around a frame loop (``stylevid video``, a video dream, a zoom).

A job's finished frames live in a work folder beside the output, ``.stylevid-work/<out>-<key>/``
(``key``: a hash of everything that changes the frames), each an atomically written PNG whose
sha256 is in ``index.json``, so a job stopped by Ctrl-C, a crash or ``kill -9`` resumes at the first
frame not finished and intact. The output is locked while a job runs on it; the first signal stops
the job at the next iteration, frame or mux packet (``Watch``), a second one at once.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np

from ..errors import BadInput, Interrupted
from ..events import Event, Sink, info, null_sink, warn
from ..files import atomic_write_text, clean_stale_temporaries, exclusive
from ..images import save_image
from ..runtime import StopFlag, interruptible

SIGNAL_NAMES = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}


def file_identity(path: Path) -> str:
    """Cheap identity of a (possibly large) file: size, mtime and the hash of its first and last MiB."""
    st = path.stat()
    h = hashlib.sha256(f"{st.st_size}|{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()


class WorkFolder:
    """Finished frames of one job: ``frames/NNNNNN.png`` plus ``index.json`` with their sha256."""

    def __init__(self, root: Path, key: str, record: dict):
        self.root = root
        self.frames = root / "frames"
        self.frames.mkdir(parents=True, exist_ok=True)
        self.index_path = root / "index.json"
        self.key = key
        self.record = record
        clean_stale_temporaries(self.frames)
        clean_stale_temporaries(root)
        self.sums: dict[int, str] = {}
        try:
            data = json.loads(self.index_path.read_text())
            if data.get("key") == key:
                self.sums = {int(k): v for k, v in data.get("frames", {}).items()}
        except (OSError, ValueError):
            pass
        atomic_write_text(root / "job.json", json.dumps(record, indent=2, default=str))

    def path(self, t: int) -> Path:
        return self.frames / f"{t:06d}.png"

    def png(self, t: int) -> bytes | None:
        """The PNG file of finished frame t, or None if it is missing or fails its checksum."""
        s = self.sums.get(t)
        p = self.path(t)
        if s is None or not p.is_file():
            return None
        data = p.read_bytes()
        return data if hashlib.sha256(data).hexdigest() == s else None

    def load(self, t: int) -> np.ndarray | None:
        """The finished frame t, or None if it is missing or fails its checksum."""
        data = self.png(t)
        if data is None:
            return None
        import io

        from PIL import Image

        return np.array(Image.open(io.BytesIO(data)).convert("RGB"))

    def save(self, t: int, image: np.ndarray) -> np.ndarray:
        """Store frame t atomically, record its sha256; returns the image as stored."""
        p = save_image(image, self.path(t))
        sums = {**self.sums, t: hashlib.sha256(p.read_bytes()).hexdigest()}
        atomic_write_text(self.index_path, json.dumps({"key": self.key, "frames": sums}))
        self.sums = sums     # only once the index on disk says so (a stop in between redoes frame t)
        return image

    def done_prefix(self) -> int:
        """How many frames from 0 on are finished and intact."""
        t = 0
        while t in self.sums and self.path(t).is_file():
            t += 1
        return t


class Watch:
    """Wraps the event sink: polls the stop flag at each iteration so Ctrl-C acts within seconds."""

    def __init__(self, on_event: Sink, flag: StopFlag):
        self.on_event, self.flag = on_event, flag

    def __call__(self, e: Event) -> None:
        self.on_event(e)
        self.check()

    def check(self) -> None:
        if self.flag:
            raise _Stop()


class _Stop(Exception):
    pass


# A painted frame as a PNG: 1.1 bytes a pixel measured (chaplin at 640×360, The Scream and swirls);
# the flows of the frame being painted add 15 bytes a pixel, for two frames at most.
PNG_BYTES_PER_PIXEL = 1.2


def check_space(out: Path, frames: int, w: int, h: int, on_event: Sink) -> None:
    """Warn when the disk under ``out`` has less room than the work folder will take (every
    painted frame is kept until the video is written): a full disk stops the job, resumably."""
    need = frames * w * h * PNG_BYTES_PER_PIXEL + 2 * 15 * w * h
    try:
        free = shutil.disk_usage(out.parent if str(out.parent) else ".").free
    except OSError:
        return
    if free < need * 1.1:
        warn(on_event, f"{out}: the work folder takes about {_bytes(need)} ({frames} painted frames of {w}x{h} kept "
                       f"until the video is written), but {_bytes(free)} are free there; a full disk stops the job "
                       f"(exit 7), and it resumes once there is room")


def _bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


class Job:
    """What :func:`video_job` hands its body: the work folder, how many frames it holds finished,
    the stop flag and the event sink that polls it, and the stage (for the message of a stop)."""

    def __init__(self, flag: StopFlag, watch: "Watch"):
        self.flag, self.watch = flag, watch
        self.work: WorkFolder | None = None
        self.done = 0
        self.stage = "frames"


@contextlib.contextmanager
def video_job(out: Path, key: str, record: dict, restart: bool = False, keep_work: bool = False,
              on_event: Sink = null_sink):
    """The resumable job around a frame loop that writes ``out`` (``stylevid video``, a video dream,
    a zoom): under a lock on ``out`` (another run on it is refused) and with the signals caught, it
    opens the work folder ``.stylevid-work/<out>-<key>/`` (``restart``: emptied first), removes what
    killed or outdated runs left, and yields a :class:`Job`. A stop (``_Stop`` from the watch, or a
    second signal) becomes one ``Interrupted`` line saying what is kept and how to resume. After
    success the work folder goes, unless ``keep_work``."""
    work_root = out.parent / ".stylevid-work" / f"{out.name}-{key}"
    lock_dir = out.parent / ".stylevid-work"
    lock_dir.mkdir(exist_ok=True)
    try:
        with exclusive(lock_dir / f"{out.name}.lock", str(out)), interruptible() as flag:
            job = Job(flag, Watch(on_event, flag))
            try:
                if restart and work_root.exists():
                    shutil.rmtree(work_root)
                _clean_earlier_runs(out, work_root, on_event)
                job.work = WorkFolder(work_root, key, record)
                job.done = job.work.done_prefix()
                if job.done:
                    info(on_event, f"resuming: {job.done} finished frames found in {work_root}")
                yield job
            except (_Stop, KeyboardInterrupt) as e:
                if job.stage == "done":
                    raise
                raise _interrupted(out, job.work, work_root, flag, e, job.stage) from None
            if not keep_work:
                shutil.rmtree(work_root, ignore_errors=True)
    finally:
        # The lock file is gone (exclusive removes it); the folder goes too when nothing else is in it
        # (rmdir refuses a folder holding another run's lock or kept frames).
        with contextlib.suppress(OSError):
            lock_dir.rmdir()


def _interrupted(out: Path, work: "WorkFolder | None", work_root: Path, flag: StopFlag, e: BaseException,
                 stage: str) -> Interrupted:
    """The one-line error for a stop: which signal, where, how many frames are kept, how to resume.

    ``e`` is ``_Stop`` (the first signal, seen at a frame boundary, an iteration or a mux packet) or
    a ``KeyboardInterrupt`` (a second signal, raised at once wherever the run was).
    """
    n = work.done_prefix() if work is not None else 0
    kept = f"{n} finished frame{'' if n == 1 else 's'} (kept in {work_root})"
    if isinstance(e, KeyboardInterrupt):
        signum = getattr(e, "signum", None) or flag.signum or signal.SIGINT
        how = f"stopped at once by a second {SIGNAL_NAMES.get(signum, 'signal')}"
    else:
        signum = flag.signum or signal.SIGINT
        how = f"stopped by {SIGNAL_NAMES.get(signum, 'a signal')}"
    where = " during the final mux," if stage == "mux" else ""
    return Interrupted(f"{out}: {how}{where} after {kept}; run the same command again to resume", int(signum))


def _clean_earlier_runs(out: Path, work_root: Path, on_event: Sink) -> None:
    """Under the output's lock: remove what killed runs left beside the output (temporary files of
    the output, its sidecar and preview) and the work folders of earlier runs on this output whose
    input, styles or settings differ (their frames can never be used again)."""
    for name in (out.name, out.with_suffix(".preview.png").name):
        clean_stale_temporaries(out.parent, f".{glob.escape(name)}.*.part*")
    pattern = re.compile(re.escape(out.name) + r"-[0-9a-f]{16}")
    for old in work_root.parent.glob(f"{glob.escape(out.name)}-*"):
        if old != work_root and old.is_dir() and pattern.fullmatch(old.name):
            n = len(list((old / "frames").glob("*.png")))
            warn(on_event, f"{out}: the input, styles or settings changed since an earlier run; "
                           f"its {n} finished frames ({old}) are discarded")
            shutil.rmtree(old, ignore_errors=True)


def finished_frame(work: WorkFolder, i: int) -> np.ndarray:
    img = work.load(i)
    if img is None:
        raise BadInput(f"{work.path(i)}: finished frame missing or corrupted; rerun to redo it")
    return img
