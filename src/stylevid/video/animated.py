"""GIF and animated WebP output: painted frames as a picture that loops on a web page or in a chat
(L2: PyAV, numpy and the standard library).

    frame times (seconds from the first frame) ─ to the format's ticks (GIF 1/100 s, WebP 1/1000 s),
        at most 50 frames a second: a frame closer than 20 ms to the one kept before is dropped
    GIF:  pass 1  every frame ─ palettegen ─ one 256-colour palette for the whole clip (no palette flicker)
          pass 2  every frame + the palette ─ paletteuse (dithered) ─ gif encoder ─ muxer
    WebP: every frame ─ libwebp_anim (lossy, quality 90) ─ muxer; then the last frame's own duration
          written into its ANMF chunk

Neither format holds sound, rotation or 360° metadata: the caller says what is left out.

Input: FFmpeg reads GIFs, but its WebP decoder reads only still pictures. An animated WebP is
decoded by Pillow (images.animation) and handed over as a lossless copy (:func:`write_lossless`)
that every reader here can walk; so is an image sequence.
"""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import av.filter
import numpy as np

from ..events import Progress, Sink, null_sink

FORMATS = {"gif": "gif", "webp": "libwebp_anim"}       # output format → FFmpeg's encoder
NAMES = {"gif": "GIF", "webp": "WebP"}
TICK = {"gif": Fraction(1, 100), "webp": Fraction(1, 1000)}
# Trap: Chromium and Firefox show a GIF frame of 10 ms or less for 100 ms, so a 60 fps clip written
# frame for frame plays at a tenth of its speed. 20 ms (50 fps) is the shortest frame that plays as
# written; WebP gets the same limit.
MIN_FRAME = Fraction(1, 50)
WEBP_QUALITY = 90


def keep_times(times: Sequence[Fraction], end: Fraction, fmt: str) -> list[tuple[int, int, int]]:
    """Which frames to write and for how long: ``times`` are the frames' start times in seconds
    (rising), ``end`` when the last one ends. Returns (frame index, start, duration) in ticks of
    ``fmt``, starting at 0. A frame starting less than :data:`MIN_FRAME` after the one kept before
    is dropped (the kept one then lasts until the next kept one): 60 fps becomes every other frame,
    an even 30, rather than an uneven 40. The last one lasts until ``end`` (at least MIN_FRAME)."""
    tick = TICK[fmt]
    least = round(MIN_FRAME / tick)
    kept: list[tuple[int, int]] = []
    last = None
    for i, t in enumerate(times):
        if last is None or t - last >= MIN_FRAME:
            ticks = round((t - times[0]) / tick)
            kept.append((i, ticks if not kept else max(ticks, kept[-1][1] + least)))
            last = t
    last_end = max(round((end - times[0]) / tick), kept[-1][1] + least)
    ends = [t for _, t in kept[1:]] + [last_end]
    return [(i, t, e - t) for (i, t), e in zip(kept, ends)]


def write_animation(path: Path, fmt: str, get_image: Callable[[int], np.ndarray],
                    schedule: list[tuple[int, int, int]], on_event: Sink = null_sink,
                    check: Callable[[], None] = lambda: None) -> int:
    """Write ``path`` (format ``fmt``: gif or webp) from ``get_image(i)`` (uint8 H×W×3, all one
    size) at the ``schedule`` of :func:`keep_times`; returns the frames written. It loops forever."""
    first = get_image(schedule[0][0])
    height, width = first.shape[:2]
    tb = TICK[fmt]
    out = av.open(str(path), "w", format=fmt, options={"loop": "0"})
    try:
        st = out.add_stream(FORMATS[fmt], rate=int(1 / tb))
        st.width, st.height = width, height
        # Trap: the encoder rescales frame pts into codec_context.time_base; set it with the stream's.
        st.time_base = st.codec_context.time_base = tb
        if fmt == "gif":
            st.pix_fmt = "pal8"
            frames = _paletted(get_image, schedule, first, tb, check)
        else:
            st.pix_fmt = "bgra"     # libwebp converts to its YUV itself (sharper than swscale's 4:2:0)
            st.options = {"quality": str(WEBP_QUALITY), "lossless": "0"}
            frames = (_frame(get_image(i) if k else first, t, tb, "bgra")
                      for k, (i, t, _) in enumerate(schedule))
        on_event(Progress("assemble", 0, len(schedule)))
        for k, frame in enumerate(frames):
            check()
            for packet in st.encode(frame):
                packet.duration = packet.duration or schedule[k][2]
                out.mux(packet)
            on_event(Progress("assemble", k + 1, len(schedule)))
        for packet in st.encode(None):    # flush (libwebp_anim gives the whole file here)
            out.mux(packet)
        # Trap: the GIF muxer takes a frame's delay from the next frame's pts, and the last one's
        # from its packet duration, which the encoder leaves 0 (set above).
    finally:
        out.close()
    if fmt == "webp":
        # Trap: libwebp_anim gives the last frame the duration of the one before, whatever the
        # frame's own duration says; write the right one into its ANMF chunk.
        _set_last_webp_duration(path, schedule[-1][2])
    return len(schedule)


def _frame(image: np.ndarray, ticks: int, tb: Fraction, fmt: str) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    if fmt != "rgb24":
        frame = frame.reformat(format=fmt)
    frame.pts, frame.time_base = ticks, tb
    return frame


def _paletted(get_image, schedule, first, tb, check):
    """The frames in pal8 with one palette for the clip (FFmpeg's palettegen + paletteuse).

    Two passes over the frames rather than one graph with a split: palettegen answers only at the
    end, so a single graph would hold every frame in memory until then."""
    height, width = first.shape[:2]
    g = av.filter.Graph()
    src = g.add_buffer(width=width, height=height, format="rgb24", time_base=tb)
    gen, sink = g.add("palettegen", "stats_mode=full"), g.add("buffersink")
    src.link_to(gen)
    gen.link_to(sink)
    g.configure()
    for k, (i, t, _) in enumerate(schedule):
        check()
        src.push(_frame(first if k == 0 else get_image(i), t, tb, "rgb24"))
    src.push(None)
    palette = _pull(g)[0]

    g = av.filter.Graph()
    src = g.add_buffer(width=width, height=height, format="rgb24", time_base=tb)
    pal = g.add_buffer(width=palette.width, height=palette.height, format=palette.format.name, time_base=tb)
    use, sink = g.add("paletteuse", "dither=sierra2_4a"), g.add("buffersink")
    src.link_to(use, 0, 0)
    pal.link_to(use, 0, 1)
    use.link_to(sink)
    g.configure()
    palette.pts = 0
    pal.push(palette)
    pal.push(None)       # one palette for every frame (paletteuse repeats the last one it got)
    for k, (i, t, _) in enumerate(schedule):
        src.push(_frame(first if k == 0 else get_image(i), t, tb, "rgb24"))
        yield from _pull(g)
    src.push(None)
    yield from _pull(g)


def _pull(graph) -> list:
    got = []
    while True:
        try:
            got.append(graph.pull())
        except (av.BlockingIOError, av.EOFError):
            return got


def _webp_frames(data: bytes) -> list[tuple[int, int]]:
    """(offset of its duration field, duration ms) of each ANMF chunk of an animated WebP file."""
    frames, i = [], 12                       # after "RIFF" <size> "WEBP"
    while i + 8 <= len(data):
        tag, n = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        if tag == b"ANMF":                   # X, Y, width-1, height-1 (3 bytes each), duration (3 bytes)
            frames.append((i + 20, int.from_bytes(data[i + 20:i + 23], "little")))
        i += 8 + n + (n & 1)
    return frames


def _set_last_webp_duration(path: Path, ms: int) -> None:
    data = bytearray(path.read_bytes())
    frames = _webp_frames(bytes(data))
    if frames:
        at = frames[-1][0]
        data[at:at + 3] = min(ms, 0xFFFFFF).to_bytes(3, "little")
        path.write_bytes(bytes(data))


def read_back(path: Path, fmt: str) -> tuple[int, int]:
    """(frames, total duration in ticks) of a written GIF or animated WebP file. A WebP file may
    hold fewer frames than were written: libwebp merges a frame equal to the one before into it
    (the duration stays)."""
    if fmt == "webp":
        frames = _webp_frames(path.read_bytes())
        return len(frames), sum(d for _, d in frames)
    with av.open(str(path), format=fmt) as c:
        s = c.streams.video[0]
        packets = [p for p in c.demux(s) if p.size]
    return len(packets), (packets[-1].pts + packets[-1].duration - packets[0].pts) if packets else 0


def write_lossless(pictures, path: Path, time_base: Fraction = Fraction(1, 1000)) -> int:
    """Write ``pictures`` ((uint8 H×W×3 RGB, ticks of ``time_base`` it shows) pairs, all one size)
    as PNG pictures in a QuickTime file, each frame at its own time (variable frame rate); returns
    the frames written. Lossless: the readers get every pixel, time and duration back.

    Traps: Matroska keeps time in milliseconds (24 fps came back at 0, 42, 83, 125 ms) and NUT
    drops the frames' durations (the last frame's length is lost); MOV keeps both, but takes
    no FFV1, hence PNG (at a low compression level: the copy is temporary)."""
    written, t = 0, 0
    with av.open(str(path), "w", format="mov") as out:
        st = None
        for image, ticks in pictures:
            if st is None:
                st = out.add_stream("png", rate=Fraction(1) / time_base, options={"compression_level": "1"})
                st.height, st.width = image.shape[:2]
                st.pix_fmt = "rgb24"
                st.time_base = st.codec_context.time_base = time_base
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = t, time_base
            for packet in st.encode(frame):     # PNG is intra-only: a packet per frame, at once
                packet.duration = ticks         # the last frame's length is its sample's duration
                out.mux(packet)
            t, written = t + ticks, written + 1
        if st is not None:
            for packet in st.encode(None):
                out.mux(packet)
    return written
