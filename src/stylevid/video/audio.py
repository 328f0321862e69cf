"""Audio for the output (L2: PyAV and the standard library): a stream copied from its input
unchanged where the output container takes it, re-encoded where it does not (AAC; Opus in a WebM);
and a soundtrack from another file (``--audio``) laid under the painted frames.

    input or soundtrack audio ── template stream (same bytes) ──────────────────┐
                              └─ decode ─ AAC or Opus (the container refuses it) ┴─ mux, beside the video

A soundtrack replaces the input's audio. It is cut to the frames' window: the soundtrack's time
``start`` (seconds from its beginning) plays with the window's first frame, as when it and the
frames were laid out together from time 0 in an editor (a Blender render and its mixdown), and it
ends with the last frame.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from ..errors import BadInput, InvalidMedia
from ..events import Sink, null_sink, warn
from .probe import AV_ERRORS, ffmpeg_log, reason

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def fmt_name(container) -> str:
    """A container's name as users know it: MP4, MOV, MKV, WebM."""
    name = container.format.name.split(",")[0]
    return {"webm": "WebM", "matroska": "MKV"}.get(name, name.upper())


def add_audio(out, a, out_path: Path, on_event: Sink):
    """An output stream for input audio stream ``a``: ``(stream, "copy")`` when ``out`` takes its
    packets unchanged, ``(stream, "aac")`` (``"opus"`` in a WebM, which holds Opus and Vorbis only)
    when they must be re-encoded (see :class:`Reencoder`), ``(None, "dropped")`` when neither is
    possible (each but the first said in a warning)."""
    if a.codec_context is None:   # a codec FFmpeg does not know: neither copied nor decodable
        warn(on_event, f"{out_path}: audio stream {a.index} has an unknown codec; dropped")
        return None, "dropped"
    name = a.codec_context.codec.canonical_name
    # Trap: the MP4 muxer takes PCM (as ISO 'ipcm'), but browsers and most players then play the
    # video silent: an MP4 gets AAC, which plays everywhere.
    pcm_in_mp4 = name.startswith("pcm_") and out.format.name == "mp4"
    try:
        if pcm_in_mp4:
            raise ValueError(name)
        oa, mode = out.add_stream_from_template(a), "copy"
    except ValueError:
        try:
            # The default layout for the channel count: "1 channels" (unknown order) is refused.
            layout = _LAYOUTS.get(a.codec_context.layout.nb_channels, "stereo")
            if out.format.name == "webm":    # Opus takes 48 kHz (PyAV resamples the decoded frames)
                oa, mode = out.add_stream("libopus", rate=48000, layout=layout), "opus"
            else:
                oa, mode = out.add_stream("aac", rate=a.codec_context.sample_rate or 48000, layout=layout), "aac"
        except AV_ERRORS + (TypeError,) as e:
            warn(on_event, f"{out_path}: audio stream {a.index} ({name}) dropped: cannot re-encode it ({reason(e)})")
            return None, "dropped"
        if pcm_in_mp4:
            warn(on_event, f"{out_path}: audio stream {a.index} ({name}) re-encoded to AAC: few players play PCM "
                           f"in an MP4 (.mov or .mkv keep it as it is)")
        else:
            warn(on_event, f"{out_path}: {fmt_name(out)} cannot hold audio stream {a.index} ({name}); re-encoded "
                           f"to {'Opus' if mode == 'opus' else 'AAC'}")
    if a.language:
        oa.metadata["language"] = a.language
    return oa, mode


class Reencoder:
    """Decode the packets of audio stream ``a`` and encode them again in ``oa`` (AAC or Opus).

    Timestamps count samples from the first frame kept, which sits at its own time minus ``shift``
    seconds (never before 0)."""

    def __init__(self, a, oa, out, shift: Fraction, source):
        self.a, self.oa, self.out, self.shift, self.source = a, oa, out, shift, source
        self.samples, self.first = 0, None

    def __call__(self, packet) -> None:
        """Re-encode one packet; ``None`` flushes the decoder and the encoder."""
        try:
            with ffmpeg_log() as logs:
                frames = self.a.decode(packet)
        except AV_ERRORS as e:
            if packet is not None and packet.size:
                return   # a damaged audio packet: skip it
            raise InvalidMedia(f"{self.source}: audio stream {self.a.index} does not decode "
                               f"({reason(e, logs)})") from None
        for f in frames:
            rate = f.sample_rate
            if self.first is None:
                t = (f.pts * f.time_base - self.shift) if f.pts is not None else Fraction(0)
                self.first = max(0, round(t * rate))
            f.pts, f.time_base = self.first + self.samples, Fraction(1, rate)
            self.samples += f.samples
            self.out.mux(self.oa.encode(f))
        if packet is None:
            self.out.mux(self.oa.encode(None))


def check_soundtrack(path) -> Path:
    """``path`` as a soundtrack: a file that opens and holds audio FFmpeg can read; else a clear error
    now, before any frame is painted."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"--audio {path}: no such file")
    try:
        with ffmpeg_log() as logs, av.open(str(path)) as c:
            known = [a for a in c.streams.audio if a.codec_context is not None]
    except AV_ERRORS as e:
        raise InvalidMedia(f"--audio {path}: not a sound or video file FFmpeg reads ({reason(e, logs)})") from None
    if not known:
        raise BadInput(f"--audio {path}: holds no audio stream FFmpeg can read")
    return path


class Soundtrack:
    """The audio streams of ``path`` (a context manager), written beside the video of an output.

    ``begin``: the soundtrack's first second kept (the window's start). :meth:`attach` adds its
    streams to an output; packets are then handed to the muxer in time with the frames
    (:meth:`until`), so the file is interleaved, and :meth:`finish` ends them with the video.
    """

    def __init__(self, path, begin: float = 0.0, on_event: Sink = null_sink):
        self.path, self.on_event = Path(path), on_event
        self.begin = Fraction(repr(float(begin)))
        self.container = av.open(str(path))
        self.streams = [a for a in self.container.streams.audio if a.codec_context is not None]
        self.modes: list[str] = []
        self.copy, self.reencode = {}, {}
        self.packets = iter(())
        self.held = None          # the next packet, read but later than asked for
        self.last = Fraction(0)   # output time the soundtrack reached
        self.to_out = self.zero = Fraction(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()

    def attach(self, out, out_path: Path, offset: Fraction) -> None:
        """Add the soundtrack's streams to ``out``; its time ``begin`` will play at output time
        ``offset + begin`` (``offset``: where the soundtrack's own time 0 falls on the output)."""
        # A file whose timeline starts late (a cut from a broadcast) counts from its first packet;
        # AAC's priming packet before 0 stays before 0.
        self.zero = Fraction(max(0, self.container.start_time or 0), av.time_base)
        self.to_out = offset - self.zero   # soundtrack time (pts × time base) → output time
        kept = []
        for a in self.streams:
            oa, mode = add_audio(out, a, out_path, self.on_event)
            self.modes.append(mode)
            if mode == "copy":
                self.copy[a.index] = oa
            elif oa is not None:      # re-encoded (AAC, or Opus in a WebM)
                self.reencode[a.index] = Reencoder(a, oa, out, -self.to_out, self.path)
            if oa is not None:
                kept.append(a)
        self.out, self.streams = out, kept
        self.packets = self.container.demux(*kept) if kept else iter(())

    @property
    def time_bases(self) -> list[Fraction]:
        return [a.time_base for a in self.streams]

    def _next(self):
        while True:
            try:
                with ffmpeg_log():
                    p = next(self.packets, None)
            except AV_ERRORS:   # a damaged file: keep what was read
                return None
            if p is None or (p.pts is not None and p.size):
                return p

    def until(self, t: Fraction) -> None:
        """Mux the packets that start before output time ``t`` (from the window's start on)."""
        while True:
            p = self.held or self._next()
            self.held = None
            if p is None:
                return
            own = p.pts * p.time_base
            at = own + self.to_out
            if at >= t:
                self.held = p
                return
            # From the top, keep what precedes time 0 too (AAC's priming packet has a negative pts).
            if own - self.zero < self.begin and self.begin > 0:
                continue
            i = p.stream.index
            self.last = at + (p.duration or 0) * p.time_base
            if i in self.reencode:
                self.reencode[i](p)
                continue
            move = round(self.to_out / p.time_base)
            p.pts, p.dts = p.pts + move, (p.dts if p.dts is not None else p.pts) + move
            p.stream = self.copy[i]
            self.out.mux(p)

    def finish(self, end: Fraction) -> None:
        """Mux the rest up to output time ``end`` (the video's end), flush re-encoders, and say when
        the soundtrack ended before the frames."""
        self.until(end)
        for r in self.reencode.values():
            r(None)
        if self.held is None and self.streams and self.last < end - Fraction(1, 10):
            warn(self.on_event, f"--audio {self.path}: the sound ends at {float(self.last):.2f} s of the video, "
                                f"which runs {float(end):.2f} s; the rest is silent")

