"""Tiny synthetic clips for tests, written with PyAV (importable: ``from tests.clips import make_clip``).

Keep them tiny (≤ 96 px, ≤ 20 frames): the test machines are small and shared.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts"}


def moving_square(n: int, h: int = 48, w: int = 64, shift: int = 2, side: int | None = None) -> list[np.ndarray]:
    """``n`` uint8 H×W×3 frames: a smooth colour gradient with a white square moving ``shift`` px right per frame."""
    side = side or max(4, min(h, w) // 4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0 * xx], -1) * 200
    frames = []
    for i in range(n):
        f = base.astype(np.uint8)
        x0 = (4 + i * shift) % max(w - side, 1)
        y0 = (h - side) // 2
        f[y0:y0 + side, x0:x0 + side] = 255
        frames.append(f)
    return frames


def make_clip(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction = 10,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    codec: str | None = None,
    audio: float = 0.0,
    audio_codec: str = "aac",
    audio_rate: int = 22050,
    rotation: int = 0,
    subtitles: Sequence[tuple[float, float, str]] = (),
    faststart: bool = False,
    codec_options: dict | None = None,
    chapters: Sequence[tuple[float, float, str]] = (),
    sar: Fraction | None = None,
) -> Path:
    """Write ``frames`` (uint8 H×W×3 RGB) as a video file; the container follows the extension.

    ``pts`` (with ``time_base``, default 1/1000) gives explicit timestamps: variable frame rate.
    ``codec`` defaults to libx264, or mpeg4 when a side is odd (libx264 refuses odd 4:2:0 sizes).
    ``audio`` seconds of a 440 Hz sine in ``audio_codec``; ``rotation`` degrees counter-clockwise as
    the display matrix; ``subtitles`` (start s, end s, text) cues as subrip (mkv) or mov_text (mp4/mov).
    ``faststart`` moves the MP4 index to the front (a truncated copy still opens).
    ``codec_options``: encoder options, e.g. ``{"x264-params": "tff=1"}`` for interlaced H.264.
    ``chapters``: (start s, end s, title) chapters. ``sar``: the pixels' aspect ratio (anamorphic).
    """
    path = Path(path)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    codec = codec or ("mpeg4" if h % 2 or w % 2 else "libx264")
    fmt = _FORMATS[path.suffix.lower()]
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=fmt, options=options) as out:
        out.set_chapters([{"id": i + 1, "start": round(a * 1000), "end": round(b * 1000), "time_base": Fraction(1, 1000),
                           "metadata": {"title": t}} for i, (a, b, t) in enumerate(chapters)])
        vs = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=codec_options or {})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if sar is not None:
            vs.codec_context.sample_aspect_ratio = sar
        if pts is not None:
            tb = time_base or Fraction(1, 1000)
        else:
            tb = Fraction(1) / Fraction(fps).limit_denominator(1001)
            pts = list(range(len(frames)))
        # Trap: the encoder rescales frame pts into codec_context.time_base (default 1/rate): set both,
        # or close VFR timestamps collapse onto the same tick.
        vs.time_base = tb
        vs.codec_context.time_base = tb
        if rotation:
            vs.set_display_rotation(rotation)
        if audio:
            as_ = out.add_stream(audio_codec, rate=audio_rate)
            as_.layout = "mono"
        if subtitles:
            sub_codec = "subrip" if fmt == "matroska" else "mov_text"
            ss = out.add_mux_stream(sub_codec, time_base=Fraction(1, 1000))
        for img, p in zip(frames, pts):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts, f.time_base = int(p), tb
            out.mux(vs.encode(f))
        out.mux(vs.encode())
        if audio:
            n = int(audio * audio_rate)
            t = np.arange(n) / audio_rate
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            step = 1024
            for i in range(0, n, step):
                chunk = wave[None, i:i + step]
                fmt_a = as_.codec_context.codec.audio_formats[0].name if as_.codec_context.codec.audio_formats else "fltp"
                af = av.AudioFrame.from_ndarray(_to_format(chunk, fmt_a), format=fmt_a, layout="mono")
                af.sample_rate, af.pts, af.time_base = audio_rate, i, Fraction(1, audio_rate)
                out.mux(as_.encode(af))
            out.mux(as_.encode())
        for start, end, text in subtitles:
            data = text.encode()
            if sub_codec == "mov_text":  # mov_text samples are a 16-bit big-endian length, then the text
                data = len(data).to_bytes(2, "big") + data
            pk = av.Packet(data)
            pk.stream = ss
            pk.time_base = Fraction(1, 1000)
            pk.pts = pk.dts = int(start * 1000)
            pk.duration = int((end - start) * 1000)
            out.mux(pk)
    return path


def make_sound(path: str | Path, seconds: float, codec: str = "pcm_s16le", rate: int = 22050,
               hz: float = 440.0, chunk: int = 1024) -> Path:
    """Write ``seconds`` of a sine at ``hz`` as a sound file (no video): a soundtrack for --audio.
    The container follows the extension (.wav, .flac, .mp3, .m4a, .mka)."""
    path = Path(path)
    fmt = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".m4a": "mp4", ".mka": "matroska"}[path.suffix.lower()]
    n = int(seconds * rate)
    wave = (0.3 * np.sin(2 * np.pi * hz * np.arange(n) / rate)).astype(np.float32)
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=rate)
        s.layout = "mono"
        fmt_a = s.codec_context.codec.audio_formats[0].name if s.codec_context.codec.audio_formats else "fltp"
        step = chunk if codec.startswith("pcm_") else (s.codec_context.frame_size or chunk)
        for i in range(0, n, step):
            af = av.AudioFrame.from_ndarray(_to_format(wave[None, i:i + step], fmt_a), format=fmt_a, layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, i, Fraction(1, rate)
            out.mux(s.encode(af))
        out.mux(s.encode())
    return path


def _to_format(x: np.ndarray, fmt: str) -> np.ndarray:
    """Float samples in [-1, 1] (channels × n) to what an audio format's from_ndarray wants."""
    if fmt in ("fltp", "flt"):
        return x.astype(np.float32)
    if fmt in ("s16", "s16p"):
        return (x * 32767).astype(np.int16)
    if fmt in ("u8", "u8p"):
        return (x * 127 + 128).astype(np.uint8)
    if fmt in ("s32", "s32p"):
        return (x * 2**31 * 0.99).astype(np.int32)
    if fmt in ("dbl", "dblp"):
        return x.astype(np.float64)
    raise ValueError(f"sample format {fmt} not handled")


def truncate(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of a file's bytes: a download cut short."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)
