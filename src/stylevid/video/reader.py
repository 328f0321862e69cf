"""Decode the frames of a time window as uint8 RGB arrays (L2: PyAV, numpy and the standard library).

Frames come out as coded, or with ``as_shown=True`` as a player shows them, which is what the
painting must see: turned by the rotation (a phone's portrait video is coded sideways) and with
square pixels (an HDV or DV frame is stored squeezed; its sample aspect ratio stretches it). The
writer turns such frames back (``assemble(as_shown=True)``) and writes the input's display matrix
back, so players rotate the result just as they rotated the input; its pixels are square.
HDR and BT.2020 frames come out as SDR BT.709 pictures (``hdr.py``).

The walk over the container (:class:`Walk`) is shared with the writer, so both agree exactly on
which frames are in the window and in which order.
"""
from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import av.filter
import numpy as np

from ..errors import BadInput, InvalidMedia
from ..events import Sink, null_sink, warn
from ..hdr import BT2020, to_sdr, transfer_name
from .probe import AV_ERRORS, ffmpeg_log, open_video, reason


@dataclass(frozen=True)
class Frame:
    index: int          # 0-based among the frames yielded (the window's frames)
    pts: int            # presentation timestamp, in the video stream's time_base (as in the file)
    time: float         # seconds since the start of the video stream
    image: np.ndarray   # uint8 H×W×3 RGB, as coded (or as shown: see read_frames)


def check_window(start: float, duration: float | None) -> None:
    if not (isinstance(start, (int, float)) and math.isfinite(start) and start >= 0):
        raise BadInput(f"--start {start!r}: must be a finite number of seconds >= 0")
    if duration is not None and not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        raise BadInput(f"--duration {duration!r}: must be a finite number of seconds > 0")


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the long edge scaled to ``size`` (0: unchanged), aspect kept. The short
    side of a scaled picture is rounded to an even number (as FFmpeg's ``scale=360:-2``): H.264 and
    VP9 store 4:2:0, what every player plays, at even sides only (640x272 at 360 is 360x152, not
    the 4:4:4 file an exact 360x153 would need). The native size stays as it is, odd or not."""
    if size is None or size == 0:
        return width, height
    if not isinstance(size, int) or size < 0:
        raise BadInput(f"size must be a whole number of pixels >= 0, got {size!r}")
    long_edge, short = max(width, height), min(width, height)
    if size == long_edge:
        return width, height
    short = max(2, 2 * round(short * size / long_edge / 2)) if short > 1 else 1
    return (size, short) if width >= height else (short, size)


class Walk:
    """Demux a video file in file order; yield the window's video frames (decoded) and, for the
    ``other`` streams, their packets inside the window (untouched, for remuxing).

    The window is ``[start, start + duration)`` seconds measured from the video stream's first
    timestamp. After iterating: ``decoded`` frames decoded in all, ``yielded`` frames in the window.
    Warns when the file declares more frames than decode (a truncated file often decodes short
    *without any error*) or when decoding stops on an error; raises InvalidMedia when no frame decodes.
    """

    def __init__(self, path, container, vs, start=0.0, duration=None, other=(), on_event: Sink = null_sink):
        check_window(start, duration)
        self.path, self.container, self.vs, self.other = path, container, vs, tuple(other)
        self.on_event = on_event
        self.tb: Fraction = vs.time_base
        self.origin = Fraction(vs.start_time or 0) * self.tb     # seconds
        # Seconds from the origin. repr: 0.4 means 2/5 here, not 0.40000000000000002220446...
        self.begin = Fraction(repr(float(start)))
        self.end = None if duration is None else self.begin + Fraction(repr(float(duration)))
        # Seconds taken off every timestamp written out: none from the top (an output keeps the
        # input's timestamps), else the window's start moves to time 0.
        self.shift = Fraction(0) if self.begin == 0 else self.origin + self.begin
        self.decoded = 0
        self.yielded = 0
        self.whole = start == 0 and duration is None

    def seconds(self, pts: int, time_base: Fraction) -> Fraction:
        """Exact time of a timestamp, from the origin of the window (the video stream's start)."""
        return pts * time_base - self.origin

    def where(self, pts: int, time_base: Fraction) -> int:
        """-1 before the window, 0 inside, 1 after."""
        t = self.seconds(pts, time_base)
        # From the start, keep what precedes the origin too: AAC's priming packet has a negative pts.
        if t < self.begin and self.begin > 0:
            return -1
        if self.end is not None and t >= self.end:
            return 1
        return 0

    def packets(self) -> Iterator[av.Packet]:
        """Demux the video and ``other`` streams, positioned for the window."""
        vs = self.vs
        if self.begin == 0:
            return self.container.demux(vs, *self.other)
        # Seek to the keyframe at or before the window (it flushes the decoders too); the frames
        # before the window are decoded and dropped.
        target = int((self.begin + self.origin) / self.tb)
        with ffmpeg_log():
            try:
                self.container.seek(target, stream=vs)
                packets = self.container.demux(vs, *self.other)
                held = []
                for p in packets:
                    held.append(p)
                    if p.stream.index == vs.index and p.size:
                        break
                first = held[-1] if held else None
                if first is not None and first.is_keyframe and first.pts is not None and first.pts <= target:
                    return itertools.chain(held, packets)
            except AV_ERRORS:
                pass
            # Trap: without an index (MPEG-TS) a seek lands on any frame, and the decoder then
            # outputs nothing until the next keyframe, maybe never. Read from the top instead
            # (seeking to start_time itself can land late too: aim before it).
            try:
                self.container.seek(min(0, vs.start_time or 0), stream=vs)
            except AV_ERRORS:
                pass
        return self.container.demux(vs, *self.other)

    def __iter__(self) -> Iterator[av.VideoFrame | av.Packet]:
        vs, path = self.vs, self.path
        done = {s.index: False for s in self.other}
        done[vs.index] = False
        # Video and audio decide when the window is over; sparse subtitles would keep us reading.
        needed = [vs.index] + [s.index for s in self.other if s.type == "audio"]
        packets = self.packets()
        self._last_pts = None
        stopped = None
        failed = 0
        while not all(done[i] for i in needed):
            packet = None
            with ffmpeg_log() as logs:
                try:
                    packet = next(packets, None)
                except AV_ERRORS as e:   # a damaged container: keep what decoded so far
                    stopped = reason(e, logs)
            if packet is None or stopped is not None:
                break
            # Trap: the empty flush packets demux yields at the end have stream_index 0 whatever
            # their stream; packet.stream is right. Dropping the video one loses the last frames.
            index = packet.stream.index
            if index != vs.index:
                # Flush packets (dts None) carry no data; keep what lies inside the window.
                if packet.dts is None or packet.pts is None or done[index]:
                    continue
                w = self.where(packet.pts, packet.time_base)
                if w > 0:
                    done[index] = True
                elif w == 0:
                    yield packet
                continue
            if done[vs.index]:
                continue   # past the window: no need to decode the rest of the video
            with ffmpeg_log() as logs:
                try:
                    # An empty packet (the end of the stream) flushes the frames the decoder holds.
                    frames = vs.decode(packet)
                except AV_ERRORS as e:
                    frames = []
                    if packet.size:
                        failed += 1   # one damaged packet: FFmpeg conceals it, go on
                    else:
                        stopped = reason(e, logs)
            yield from self._window(frames, done)
        if stopped is not None and not done[vs.index]:
            # Frames still held by the (threaded, reordering) decoder.
            with ffmpeg_log():
                try:
                    frames = vs.decode(None)
                except AV_ERRORS:
                    frames = []
            yield from self._window(frames, done)
        if stopped is not None:
            if self.decoded == 0:
                raise InvalidMedia(f"{path}: not a readable video ({stopped})")
            warn(self.on_event, f"{path}: decoding stopped after {self.decoded} frames ({stopped}); "
                                f"the rest of the file is skipped")
        if failed:
            warn(self.on_event, f"{path}: {failed} damaged video packets skipped")
        if self.decoded == 0:
            raise InvalidMedia(f"{path}: not a readable video (no frame decodes)")
        declared = vs.frames or 0
        if self.whole and declared > self.decoded:
            warn(self.on_event, f"{path}: decoded {self.decoded} frames but the file declares {declared}; "
                                f"it looks truncated")
        if self.yielded == 0:
            raise BadInput(f"{path}: no frame between {float(self.begin):g} s and "
                           f"{'the end' if self.end is None else f'{float(self.end):g} s'}")

    def _window(self, frames, done) -> Iterator[av.VideoFrame]:
        vs = self.vs
        for frame in frames:
            self.decoded += 1
            pts = frame.pts
            if pts is None:  # raw streams without timestamps: continue at the average rate
                step = 1 / (vs.average_rate or 25) / self.tb
                pts = 0 if self._last_pts is None else self._last_pts + max(1, round(step))
                frame.pts = pts
            self._last_pts = pts
            w = self.where(pts, self.tb)
            if w < 0 or done[vs.index]:
                continue
            if w > 0:
                done[vs.index] = True
                continue
            self.yielded += 1
            yield frame


def to_rgb(frame: av.VideoFrame, width: int, height: int, like: av.VideoFrame | None = None) -> np.ndarray:
    """uint8 H×W×3 RGB at (width, height), converted and scaled by swscale in one pass; the colour
    properties are ``like``'s (the decoded frame a filtered one came from), else the frame's own.

    Trap: reformat reads the source colour range as "unspecified" (limited) unless told, so a
    full-range (JPEG range) stream would come out washed out; pass the frame's own range.
    Trap: swscale undoes the YUV matrix but not the transfer function or the primaries, so an HDR
    (PQ, HLG) or BT.2020 frame read as rgb24 looks grey and washed out. Those are read as 16-bit
    R'G'B' and made SDR by ``hdr.to_sdr`` (tone mapping, gamut conversion).
    """
    like = like or frame
    transfer, wide = transfer_name(like.color_trc), like.color_primaries == BT2020
    if transfer or wide:
        rgb16 = frame.to_ndarray(format="rgb48le", width=width, height=height,
                                 src_color_range=like.color_range or None)
        return to_sdr(rgb16, transfer, wide)
    return frame.to_ndarray(format="rgb24", width=width, height=height, src_color_range=like.color_range or None)


def deinterlaced(frames: Iterator[av.VideoFrame]) -> Iterator[tuple[av.VideoFrame, av.VideoFrame]]:
    """(decoded frame, picture to read) pairs. When the first frame is interlaced (camcorder AVCHD,
    broadcast TS, DV), every frame goes through FFmpeg's bwdif, one picture out per frame in (each
    field pair made a whole frame: no combing for the painting and the flow to take for texture);
    otherwise the frames are their own pictures.

    Trap: bwdif halves the time base (it could send one frame per field), so its pts are not the
    input's: pictures are paired with frames in order. It holds one frame back; flushed at the end.
    Trap: a stream may change size midway: a new graph is made for the new size.
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    if not first.interlaced_frame:
        yield first, first
        yield from ((f, f) for f in frames)
        return
    graph, key, waiting = None, None, collections.deque()

    def drain(flush: bool) -> Iterator[tuple[av.VideoFrame, av.VideoFrame]]:
        if flush:
            graph.push(None)
        while waiting:
            try:
                picture = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            yield waiting.popleft(), picture

    for f in itertools.chain([first], frames):
        if (f.width, f.height, f.format.name) != key:
            if graph is not None:
                yield from drain(True)
            key, graph = (f.width, f.height, f.format.name), av.filter.Graph()
            graph.link_nodes(graph.add_buffer(width=f.width, height=f.height, format=f.format, time_base=f.time_base
                                              or Fraction(1, 90000)),
                             graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced"),
                             graph.add("buffersink")).configure()
        waiting.append(f)
        graph.push(f)
        yield from drain(False)
    yield from drain(True)


def turns(rotation: int | float) -> int:
    """Quarter turns counter-clockwise (np.rot90's k, 0-3) for a frame's ``rotation`` (degrees
    counter-clockwise to display: an iPhone's portrait video says -90, a quarter turn clockwise)."""
    return round(rotation / 90) % 4


def to_upright(image: np.ndarray, rotation: int | float) -> np.ndarray:
    """A coded-orientation image as it is displayed."""
    return np.ascontiguousarray(np.rot90(image, turns(rotation)))


def to_coded(image: np.ndarray, rotation: int | float) -> np.ndarray:
    """An upright image back in the orientation the stream codes it in (inverse of :func:`to_upright`)."""
    return np.ascontiguousarray(np.rot90(image, -turns(rotation)))


def shown_size(width: int, height: int, sar: Fraction | None) -> tuple[int, int]:
    """(width, height) of a coded frame with its sample aspect ratio applied (square pixels)."""
    return (max(1, round(width * sar)), height) if sar and sar != 1 else (width, height)


def read_frames(path, size: int = 0, start: float = 0.0, duration: float | None = None,
                on_event: Sink = null_sink, as_shown: bool = False) -> Iterator[Frame]:
    """Yield the frames of ``[start, start + duration)`` seconds of a video file.

    ``size`` is the long edge of the images (0: native size), aspect kept; every image has the same
    size even if the stream changes resolution midway. Decoding is threaded. ``as_shown``: square
    pixels (the stream's sample aspect ratio applied) and turned by the first frame's rotation (see
    the module doc); else as coded. Interlaced video is deinterlaced (:func:`deinterlaced`). Raises
    InvalidMedia / TooLarge / BadInput (see probe and Walk).
    """
    check_window(start, duration)
    with open_video(path) as (container, vs):
        coded_w, coded_h = vs.codec_context.width, vs.codec_context.height
        sar = vs.sample_aspect_ratio if as_shown else None
        width, height = scaled_size(*shown_size(coded_w, coded_h, sar), size)
        walk = Walk(path, container, vs, start, duration, on_event=on_event)
        rotation = None
        for i, (frame, picture) in enumerate(deinterlaced(walk)):
            image = to_rgb(picture, width, height, frame)
            if as_shown:
                rotation = frame.rotation if rotation is None else rotation
                image = to_upright(image, rotation)
            yield Frame(i, frame.pts, float(walk.seconds(frame.pts, walk.tb)), image)


def count_frames(path, start: float = 0.0, duration: float | None = None) -> int:
    """Frames in the window, counted from packet timestamps without decoding (fast).

    Exact for well-formed files; a truncated file may hold a last packet that does not decode.
    """
    check_window(start, duration)
    with open_video(path) as (container, vs):
        walk = Walk(path, container, vs, start, duration)
        n = 0
        with ffmpeg_log():
            try:
                for packet in walk.packets():
                    # Trap: Matroska packets of reordered (B) frames carry no dts: count them by
                    # pts. Only the empty flush packets at the end are skipped.
                    if not packet.size:
                        continue
                    if packet.pts is None:   # no timestamp: countable only for the whole file
                        n += walk.whole
                        continue
                    w = walk.where(packet.pts, walk.tb)
                    n += w == 0
            except AV_ERRORS as e:
                if n == 0:
                    raise InvalidMedia(f"{path}: not a readable video ({reason(e)})") from None
        return n
