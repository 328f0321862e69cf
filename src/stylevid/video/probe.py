"""Open and probe a video file (L2: PyAV, numpy and the standard library only).

Every input goes through :func:`open_video`: the path is checked to be a regular file first
(FFmpeg reads path strings as URLs: ``concat:a|b``, ``subfile,,``, ``http://``; a FIFO hangs it),
then opened with only the ``file`` protocol allowed and with bad metadata bytes replaced (they
otherwise raise ``UnicodeDecodeError``). PyAV's many exception types, and FFmpeg's own reason
(which PyAV drops unless its log is on), become one line: ``PATH: not a readable video (reason)``.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import av.logging
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from ..config import MAX_IMAGE_PIXELS
from ..errors import InvalidMedia, TooLarge
from ..files import check_input
from ..hdr import BT2020, transfer_name

# Everything PyAV raises for a bad file. FFmpegError covers InvalidDataError, av.error.MemoryError,
# av.error.EOFError, PatchWelcomeError, ArgumentError...; ValueError covers UnicodeDecodeError.
AV_ERRORS = (av.error.FFmpegError, EOFError, ValueError, OverflowError, IndexError)

MAX_SIDE = 16384  # declared width or height above this is absurd (and MAX_IMAGE_PIXELS in all)

# Demuxers for still images: a PNG renamed .mp4 opens as a one-frame "video" through these.
_IMAGE_DEMUXERS = ("image2", "image2pipe")


@dataclass(frozen=True)
class StreamInfo:
    index: int          # index in the container
    codec: str          # canonical codec name ("aac", "mp3", "mov_text"...), not the decoder's
    language: str | None = None


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    format: str                 # container format, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    width: int                  # coded size, before rotation
    height: int
    rotation: int               # degrees counter-clockwise to display (frame.rotation); not applied to pixels
    fps: float                  # average rate; 0.0 when unknown
    time_base: Fraction
    frames: int                 # declared frame count; 0 when the container does not say
    duration: float | None      # seconds, when declared
    codec: str
    pix_fmt: str | None
    video_index: int
    audio: tuple[StreamInfo, ...] = ()
    subtitles: tuple[StreamInfo, ...] = ()
    spherical: bool = False     # 360° side data on the stream (best effort)
    stereo3d: bool = False
    stereo: str = ""            # the stereo layout: "left-right", "top-bottom", or "" (mono / other)
    has_video: bool = True
    hdr: str = ""               # "pq" or "hlg" for an HDR transfer (first frame's), "" for SDR
    wide_gamut: bool = False    # BT.2020 primaries
    interlaced: bool = False    # the first frame is (the reader deinterlaces)
    alpha: bool = False         # the first frame is partly transparent (ProRes 4444, VP9/PNG/GIF with alpha)
    sar: Fraction = Fraction(1)  # sample aspect ratio: a coded pixel's width / height (HDV 1440x1080: 4/3)
    display_matrix: tuple[int, ...] | None = None   # the 9 raw int32 of the display matrix (keeps flips)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown to a viewer, rotation applied."""
        if abs(self.rotation) % 180 == 90:
            return self.height, self.width
        return self.width, self.height


class _Collect(logging.Handler):
    """Receives FFmpeg's lines (PyAV sends them to the ``libav.*`` loggers when the log is on and no
    av.logging.Capture is open) and hands them to every open ``ffmpeg_log()`` block."""

    def emit(self, record: logging.LogRecord) -> None:
        item = (record.levelno, record.name.removeprefix("libav."), record.getMessage())
        for logs in list(_collectors):
            logs.append(item)


_libav = logging.getLogger("libav")
_libav.addHandler(_Collect())
_libav.setLevel(logging.DEBUG)
_libav.propagate = False          # FFmpeg's own lines never reach the user's terminal
_log_lock = threading.Lock()
_log_users = 0
_log_previous = None
_collectors: list = []


@contextlib.contextmanager
def ffmpeg_log() -> Iterator[list]:
    """Collect FFmpeg's error lines while the block runs, without printing them.

    Trap: PyAV ignores FFmpeg's log by default, so exceptions lack the real reason ("moov atom not
    found"); switching the log on without a Capture sends lines to Python logging, which prints them.

    Trap: FFmpeg's frame threads log too. One that logged while the log was on and then waits for
    the GIL finds it off when it gets it: PyAV prints a TypeError traceback (seen with damaged
    H.264). So the log is reference-counted, not toggled per block: it is switched on by the first
    open block and off by the last, and ``open_video`` holds a block open for the container's whole
    life (its decoder is flushed, threads idle, before it closes). Blocks may close in any order
    (generators), so lines are collected here rather than with PyAV's stack of Captures.
    """
    global _log_users, _log_previous
    logs: collections.deque = collections.deque(maxlen=64)
    with _log_lock:
        if _log_users == 0:
            # Trap: with the log on, FFmpeg's worker threads call back into Python for the GIL, and
            # freeing a threaded codec context (a stream's __dealloc__, by reference count or by the
            # garbage collector, GIL held) joins those threads: a deadlock if one is busy logging.
            # open_video flushes its decoder before closing (threads idle), so a late free never
            # waits; a gc.collect() here cost 0.2 s per file opened.
            _log_previous = av.logging.get_level()
            av.logging.set_level(av.logging.ERROR)
        _log_users += 1
        _collectors.append(logs)
    try:
        yield logs
    finally:
        with _log_lock:
            for i, c in enumerate(_collectors):
                if c is logs:
                    del _collectors[i]
                    break
            _log_users -= 1
            if _log_users == 0:
                av.logging.set_level(_log_previous)


def reason(e: BaseException, logs: list | None = None) -> str:
    """FFmpeg's own words for an error when it logged some, else the exception's first line."""
    if logs:
        return logs[-1][2].strip()
    log = getattr(e, "log", None)
    if log:
        return str(log[2]).strip()
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.splitlines()[0]


def invalid(path, e: BaseException, logs: list | None = None) -> InvalidMedia:
    return InvalidMedia(f"{path}: not a readable video ({reason(e, logs)})")


def video_stream(container) -> av.video.stream.VideoStream | None:
    """The main video stream: the first one that is not cover art (attached_pic)."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


# Tags that are not UTF-8 (old cameras) must not stop a read: PyAV up to 18 raises on them unless
# told metadata_errors="replace"; PyAV 19 dropped the argument (an H100 machine's PyAV 19.0.2 raised
# TypeError on it).
OPEN_METADATA = {"metadata_errors": "replace"} if int(av.__version__.split(".")[0]) < 19 else {}


@contextlib.contextmanager
def open_video(path, require_video: bool = True) -> Iterator[tuple]:
    """Yield ``(container, video_stream)`` for a checked local file; close it afterwards.

    ``video_stream`` is None only when ``require_video`` is False and there is none.
    """
    p = check_input(path, "video")
    with ffmpeg_log() as logs:   # open until the container is closed: see ffmpeg_log
        try:
            # An absolute path cannot be read as a URL even if a file is named "concat:x"; the
            # whitelist also applies to files a playlist or ffconcat script would open.
            container = av.open(os.path.abspath(p), **OPEN_METADATA,
                                container_options={"protocol_whitelist": "file"})
        except AV_ERRORS as e:
            raise invalid(p, e, logs) from None
        vs = None
        try:
            fmt = container.format.name
            if fmt in _IMAGE_DEMUXERS or fmt.endswith("_pipe"):
                raise InvalidMedia(f"{p}: a still image ({fmt.removesuffix('_pipe')}), not a video")
            vs = video_stream(container)
            if vs is None and require_video:
                raise InvalidMedia(f"{p}: no video stream (audio or data only)")
            if vs is not None:
                if vs.codec_context is None:   # a codec FFmpeg does not know (a damaged codec id)
                    raise InvalidMedia(f"{p}: not a readable video (unknown video codec)")
                w, h = vs.codec_context.width, vs.codec_context.height
                if w <= 0 or h <= 0:
                    raise InvalidMedia(f"{p}: not a readable video (no picture size)")
                if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_IMAGE_PIXELS:
                    raise TooLarge(f"{p}: video is {w}x{h}, over the limit ({MAX_SIDE} px a side, "
                                   f"{MAX_IMAGE_PIXELS} pixels in all)")
                vs.thread_type = "AUTO"  # frame + slice threads: decode several frames at once
            yield container, vs
        finally:
            # Trap: the stream's codec context is freed later, by reference count, with the GIL
            # held; freeing joins the frame threads, and one of them may be waiting for the GIL in
            # the log callback: a deadlock, seen here. Flushing releases the GIL and waits until
            # every frame thread is idle, so the free never waits (and no thread logs after the
            # log is switched off).
            if vs is not None:
                with contextlib.suppress(Exception):
                    vs.codec_context.flush_buffers()
            container.close()


def stream_info(s) -> StreamInfo:
    return StreamInfo(s.index, _codec_name(s), s.metadata.get("language"))


def _codec_name(s) -> str:
    # The decoder's name differs from the codec's ("mp3float", "srt"); the canonical name does not.
    cc = s.codec_context
    return cc.codec.canonical_name if cc is not None else "none"


def _transparent(frame: av.VideoFrame) -> bool:
    """Whether the frame has an alpha channel with any pixel not opaque. (FFmpeg decodes every GIF
    as bgra, most of them opaque: a format with alpha is not enough.)"""
    if not any(c.is_alpha for c in frame.format.components):
        return False
    return bool(frame.to_ndarray(format="rgba")[..., 3].min() < 255)


def probe(path, require_video: bool = True) -> VideoInfo:
    """What the reader and writer need to know about a video file.

    Decodes the first frame: rotation and 360° side data are reported per frame by PyAV 18
    (``frame.rotation``, ``frame.side_data``), not on the stream. Raises InvalidMedia for
    anything that is not a readable video, TooLarge for absurd declared dimensions.
    """
    with open_video(path, require_video) as (container, vs):
        audio = tuple(stream_info(s) for s in container.streams.audio)
        subs = tuple(stream_info(s) for s in container.streams.subtitles)
        duration = None
        if vs is None:
            if container.duration:
                duration = container.duration / av.time_base
            return VideoInfo(Path(path), container.format.name, 0, 0, 0, 0.0, Fraction(1, 1), 0, duration,
                             "none", None, -1, audio, subs, has_video=False)
        if vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        with ffmpeg_log() as logs:
            try:
                first = next(container.decode(vs), None)
            except AV_ERRORS as e:
                raise invalid(path, e, logs) from None
        if first is None:
            raise InvalidMedia(f"{path}: not a readable video (no frame decodes)")
        rotation = int(first.rotation)
        # Trap: side_data.keys() yields SideData objects; test membership with the Type instead.
        spherical = SideDataType.SPHERICAL in first.side_data
        stereo3d = SideDataType.STEREO3D in first.side_data
        stereo = ""
        if stereo3d:   # AVStereo3D begins with its type (int32): 1 side by side, 2 top and bottom
            kind = int(np.frombuffer(bytes(first.side_data.get(SideDataType.STEREO3D))[:4], "=i4")[0])
            stereo = {1: "left-right", 2: "top-bottom"}.get(kind, "")
        matrix = first.side_data.get(SideDataType.DISPLAYMATRIX)
        if matrix is not None:
            matrix = tuple(int(v) for v in np.frombuffer(bytes(matrix), "=i4"))  # native int32, as stored
        rate = vs.average_rate or vs.guessed_rate
        return VideoInfo(
            path=Path(path),
            format=container.format.name,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            rotation=rotation,
            fps=float(rate) if rate else 0.0,
            time_base=vs.time_base or Fraction(1, 1),
            frames=vs.frames or 0,
            duration=duration,
            codec=_codec_name(vs),
            pix_fmt=vs.codec_context.pix_fmt,
            video_index=vs.index,
            audio=audio,
            subtitles=subs,
            spherical=spherical,
            stereo3d=stereo3d,
            stereo=stereo,
            hdr=transfer_name(first.color_trc),
            wide_gamut=first.color_primaries == BT2020,
            interlaced=bool(first.interlaced_frame),
            alpha=_transparent(first),
            sar=Fraction(vs.sample_aspect_ratio) if vs.sample_aspect_ratio else Fraction(1),
            display_matrix=matrix,
        )
