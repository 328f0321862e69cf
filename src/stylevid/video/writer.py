"""Assemble the stylized video: walk the input again, encode the stylized frames with the input's
timestamps, remux its audio and subtitles unchanged, keep its chapters (L2: PyAV, numpy and the standard library).

    input packets ──demux──┬─ video ─ decode ─ window frame i ─ get_frame(i) ─ encode (same pts) ─┐
                           ├─ audio ─────────── same bytes, shifted by `start` ─────────────────────┼─ mux ─ temp file
                           └─ subtitles ─────── same bytes, shifted by `start` ─────────────────────┘
    chapters ─ cut to the window, shifted by `start` ─ in the header ──────────────────────────────────┤
    timecode ─ moved by `start` ─ the video stream's tag (the muxer writes the tmcd track) ────────────┘
    temp file ─ count its frames ─ fsync ─ rename to the output

Walking the input (rather than trusting a frame rate) is what keeps variable frame rate, the exact
duration and audio sync; the walk is :class:`reader.Walk`, the same one ``read_frames`` uses, so
frame ``i`` here is frame ``i`` there.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from ..config import VideoConfig
from ..errors import BadInput, StylevidError, WriteFailed
from ..events import Progress, Sink, info, null_sink, warn
from ..files import atomic_path, check_output, write_failed
from .audio import Reencoder, Soundtrack, add_audio, check_soundtrack, fmt_name
from .animated import FORMATS as ANIMATED, NAMES as ANIMATED_NAMES, keep_times, read_back, write_animation
from .probe import AV_ERRORS, ffmpeg_log, open_video, probe, reason
from .reader import Walk, check_window, scaled_size, shown_size, to_coded, turns
from .spherical import add_projection, add_spherical
from .subtitles import Converter, convertible

OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".gif": "gif",
                  ".webp": "webp"}

# Container tags that describe the old file, not the new one.
_STALE_METADATA = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


@dataclass(frozen=True)
class Written:
    path: Path
    frames: int
    width: int
    height: int
    codec: str                  # video encoder used
    audio: tuple[str, ...]      # per input audio stream: "copy", "aac" (re-encoded) or "dropped"
    subtitles: int              # subtitle streams copied or converted to the output's text format


def spherical_hint(out_path: Path, why: str) -> str:
    """Where the 360° metadata could not be written: say why and how to add it afterwards."""
    return (f"{out_path}: 360° (spherical) metadata is not written ({why}); players show it flat until you "
            f"add it, e.g. with Google's Spatial Media Metadata Injector (google/spatial-media on GitHub): "
            f"python spatialmedia -i {out_path} {out_path.with_name(out_path.stem + '_360' + out_path.suffix)}")


def _keep_spherical(tmp: Path, fmt: str, out_path: Path, stereo: str, on_event: Sink) -> None:
    """The input was a 360° video: mark the output too (MP4/MOV: Spherical Video V1; MKV/WebM: the
    Projection element; see video/spherical.py); if that fails, say how to do it by hand."""
    mark = add_projection if fmt in ("matroska", "webm") else add_spherical     # (GIF and WebP: _animation)
    try:
        mark(tmp, stereo)
    except OSError as e:
        raise write_failed(out_path, e) from e
    except StylevidError as e:      # a box layout it does not know: the video itself is fine
        warn(on_event, spherical_hint(out_path, str(e)))


def output_format(path: Path) -> str:
    try:
        return OUTPUT_FORMATS[path.suffix.lower()]
    except KeyError:
        raise BadInput(f"{path}: unsupported output type {path.suffix or '(none)'}; "
                       f"use {', '.join(OUTPUT_FORMATS)}") from None


ENCODERS = {"h264": "libx264", "prores": "prores_ks", "vp9": "libvpx-vp9"}    # the CLI's --codec: FFmpeg's encoder
CODEC_CONTAINERS = {"prores": (".mov", ".mkv"), "vp9": (".webm", ".mkv", ".mp4")}   # where each may go


def video_suffix(codec: str, input_path=None) -> str:
    """The extension of a default output name for --codec: .mov for ProRes, .webm for VP9; else a
    GIF, WebP or WebM input's own (a painted animation stays one, a web video too), else .mp4."""
    if codec in ("prores", "vp9"):
        return {"prores": ".mov", "vp9": ".webm"}[codec]
    suffix = Path(input_path).suffix.lower() if input_path is not None else ""
    return suffix if suffix in (".gif", ".webp", ".webm") else ".mp4"


def codec_for(path: Path, codec: str) -> str:
    """The --codec a file of ``path``'s type gets: a WebM holds VP9 only, so the default h264 becomes vp9."""
    return "vp9" if OUTPUT_FORMATS.get(Path(path).suffix.lower()) == "webm" and codec == "h264" else codec


def check_codec(path: Path, codec: str, crf: int | None = None, on_event: Sink = null_sink) -> None:
    """Refuse a --codec its output container cannot hold (ProRes: MOV or MKV, not MP4); say that a
    ``crf`` other than the default does nothing for ProRes."""
    if codec not in ENCODERS:
        raise BadInput(f"--codec {codec!r}: choose one of {', '.join(ENCODERS)}")
    codec = codec_for(path, codec)
    where = CODEC_CONTAINERS.get(codec)
    if where and Path(path).suffix.lower() not in where:
        raise BadInput(f"{path}: {'ProRes' if codec == 'prores' else 'VP9'} goes in a "
                       f"{', '.join(where[:-1])} or {where[-1]} file, not {Path(path).suffix or '(none)'}")
    if codec == "prores" and crf is not None and crf != VideoConfig.crf:
        warn(on_event, f"--crf {crf}: ProRes has no crf (422 HQ sets its own quality); ignored")
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt in ANIMATED and crf is not None and crf != VideoConfig.crf:
        warn(on_event, f"--crf {crf}: {ANIMATED_NAMES[fmt]} output has no crf; ignored")


def video_encoder(codec: str | None, on_event: Sink) -> str:
    """FFmpeg's encoder for ``codec`` (a --codec name or an encoder name; None: libx264, else mpeg4)."""
    codec = ENCODERS.get(codec, codec)
    if codec is not None:
        if codec not in av.codecs_available:
            raise BadInput(f"video encoder {codec!r} is not available in this FFmpeg build")
        return codec
    if "libx264" in av.codecs_available:
        return "libx264"
    warn(on_event, "libx264 is not available; encoding with mpeg4 (larger files, lower quality)")
    return "mpeg4"


def assemble(
    input_path,
    get_frame: Callable[[int], np.ndarray],
    output_path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    size: int | None = None,
    crf: int = 18,
    codec: str | None = None,
    expected: int | None = None,
    overwrite: bool = False,
    on_event: Sink = null_sink,
    check: Callable[[], None] | None = None,
    as_shown: bool = False,
    audio=None,
) -> Written:
    """Write ``output_path``: the frames of ``input_path``'s window replaced by ``get_frame(i)``.

    ``get_frame(i)`` returns the stylized uint8 H×W×3 RGB image of the window's frame ``i`` (the
    ``index`` of ``read_frames(input_path, start=start, duration=duration)``). Output size: the
    images' own (``size=None``), the input's coded size (``0``) or long edge ``size``, kept exactly:
    even sides are encoded 4:2:0 (yuv420p, what every player plays); an odd side cannot be stored
    in H.264 4:2:0, so such a video is encoded 4:4:4 (yuv444p) at its exact size, with an info
    event saying so (see :func:`pixel_format`). Each frame keeps its input pts; rotation (display
    matrix) is written back; audio and subtitles are copied bit-exact, cut to the window and shifted
    by ``start`` with the video. The output's container follows its extension (.mp4 by default for
    the CLI). ``expected``: frames the caller stylized; a different count is an error. Written to a
    temporary name and renamed only once its frame count is verified.

    ``check``: called before each packet and frame is written; whatever it raises (a stop request)
    aborts the mux at once: the temporary file is removed and nothing appears under the output.
    ``as_shown``: the images are as a player shows the input (``read_frames(as_shown=True)``: turned,
    square pixels); they are turned back to the coded orientation, which the display matrix written
    back expects, and written with square pixels (no sample aspect ratio).
    ``audio``: a sound file whose audio replaces the input's (video/audio.py: :class:`Soundtrack`),
    from its second ``start`` on, cut where the frames end.
    """
    check_window(start, duration)
    if not isinstance(crf, int) or not 0 <= crf <= 51:
        raise BadInput(f"crf must be a whole number from 0 to 51, got {crf!r}")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise BadInput(f"size must be a whole number of pixels >= 0, got {size!r}")
    out_path = check_output(output_path, [Path(input_path), *([Path(audio)] if audio else [])], overwrite)
    fmt = output_format(out_path)
    meta = probe(input_path)
    if audio is not None:
        check_audio(audio, out_path)
    if fmt in ANIMATED:
        return _assemble_animation(input_path, get_frame, out_path, fmt, meta, start, duration, size, expected,
                                   as_shown, on_event, check or _no_check)
    vcodec = _encoder_for(out_path, fmt, codec, on_event)
    if as_shown and turns(meta.rotation):
        get_frame = (lambda get: lambda i: to_coded(_image(get, i, out_path), meta.rotation))(get_frame)

    first = _image(get_frame, 0, out_path)
    width, height = _output_size(first, meta, size, as_shown)
    pix_fmt = pixel_format(vcodec, width, height)
    if pix_fmt != "yuv420p":
        info(on_event, f"{out_path}: {width}x{height} has an odd side, which H.264 4:2:0 cannot store; encoded "
                       f"4:4:4 (yuv444p, High 4:4:4 profile) to keep the exact size. Some hardware players, "
                       f"phones and browsers do not play 4:4:4; for them, pad to even sides and re-encode: "
                       f"ffmpeg -i {out_path} -vf 'pad=ceil(iw/2)*2:ceil(ih/2)*2' -pix_fmt yuv420p -c:a copy "
                       f"{out_path.with_name(out_path.stem + '_420' + out_path.suffix)}")

    with open_video(input_path) as (inp, vs), _soundtrack(audio, start, on_event) as sound, \
            atomic_path(out_path) as tmp:
        time_bases = [s.time_base for s in inp.streams] + (sound.time_bases if sound else [])
        # Trap: a temporary name may not end in the real extension for FFmpeg's guess: give format=.
        out = av.open(str(tmp), "w", format=fmt, container_options=_movie_timescale(fmt, *time_bases))
        logs: list = []
        try:
            with ffmpeg_log() as logs:
                written, audio_modes, n_subs = _write(
                    inp, vs, out, meta, input_path, out_path, get_frame, first, vcodec, crf,
                    (width, height, pix_fmt), start, duration, expected, on_event, check or _no_check, as_shown,
                    sound)
                out.close()   # writes the trailer (the MP4 index): may fail on a full disk
        except BaseException as e:
            _failed(e, out, out_path, logs)
        if meta.spherical:
            _keep_spherical(tmp, fmt, out_path, meta.stereo, on_event)
        _verify(tmp, fmt, written, out_path)
    if expected is None:
        on_event(Progress("assemble", written, written))   # close the task (with a total, the loop did)
    return Written(out_path, written, width, height, vcodec, tuple(audio_modes), n_subs)


def write_frames(
    get_frame: Callable[[int], np.ndarray],
    count: int,
    output_path,
    *,
    fps: int = 24,
    crf: int = 18,
    codec: str | None = None,
    overwrite: bool = False,
    inputs: tuple = (),
    on_event: Sink = null_sink,
    check: Callable[[], None] | None = None,
    audio=None,
) -> Written:
    """Write ``count`` pictures ``get_frame(0 … count-1)`` (uint8 H×W×3, all one size) as a video at a
    constant ``fps``, with no input video behind it (a zoom dream). Same encoding, temporary name and
    frame-count check as :func:`assemble`; ``inputs`` are the files it must not overwrite. ``audio``:
    a sound file laid under the frames from its beginning, cut where they end."""
    if not isinstance(crf, int) or not 0 <= crf <= 51:
        raise BadInput(f"crf must be a whole number from 0 to 51, got {crf!r}")
    if not isinstance(fps, int) or not 1 <= fps <= 240:
        raise BadInput(f"fps must be a whole number from 1 to 240, got {fps!r}")
    out_path = check_output(output_path, [Path(p) for p in (*inputs, *([audio] if audio else []))], overwrite)
    fmt = output_format(out_path)
    if audio is not None:
        check_audio(audio, out_path)
    if fmt in ANIMATED:
        times = [Fraction(i, fps) for i in range(count)]
        first = _image(get_frame, 0, out_path)
        return _animation(out_path, fmt, lambda i: _image(get_frame, i, out_path), first.shape[1],
                          first.shape[0], times, Fraction(count, fps), on_event, check or _no_check, 0)
    vcodec = _encoder_for(out_path, fmt, codec, on_event)
    first = _image(get_frame, 0, out_path)
    height, width = first.shape[:2]
    pix_fmt = pixel_format(vcodec, width, height)
    check = check or _no_check
    with _soundtrack(audio, 0.0, on_event) as sound, atomic_path(out_path) as tmp:
        time_bases = [Fraction(1, fps)] + (sound.time_bases if sound else [])
        # Trap: a temporary name may not end in the real extension for FFmpeg's guess: give format=.
        out = av.open(str(tmp), "w", format=fmt, container_options=_movie_timescale(fmt, *time_bases))
        try:
            ovs = _video_stream(out, vcodec, fps, (width, height, pix_fmt), crf)
            # Trap: the encoder rescales frame pts into codec_context.time_base; set it with the stream's.
            ovs.time_base = ovs.codec_context.time_base = Fraction(1, fps)
            if sound:
                sound.attach(out, out_path, Fraction(0))
            on_event(Progress("assemble", 0, count))
            for i in range(count):
                check()
                image = first if i == 0 else _image(get_frame, i, out_path)
                if image.shape[:2] != (height, width):
                    raise BadInput(f"{out_path}: frame {i} is {image.shape[1]}x{image.shape[0]}, "
                                   f"frame 0 {width}x{height}")
                frame = _to_frame(image, width, height, pix_fmt)
                frame.pts, frame.time_base = i, Fraction(1, fps)
                if sound:
                    sound.until(Fraction(i, fps))
                out.mux(ovs.encode(frame))
                on_event(Progress("assemble", i + 1, count))
            out.mux(ovs.encode(None))   # flush: the encoder holds the last frames
            if sound:
                sound.finish(Fraction(count, fps))
            out.close()                 # writes the trailer (the MP4 index): may fail on a full disk
        except BaseException as e:
            _failed(e, out, out_path, [])
        _verify(tmp, fmt, count, out_path)
    return Written(out_path, count, width, height, vcodec, tuple(sound.modes) if sound else (), 0)


def _encoder_for(out_path: Path, fmt: str, codec: str | None, on_event: Sink) -> str:
    """FFmpeg's video encoder for an output: a WebM's is VP9 whatever the (default) --codec says."""
    return video_encoder(codec_for(out_path, codec or "h264") if fmt == "webm" else codec, on_event)


def check_audio(audio, out_path) -> None:
    """``audio`` holds sound and can go under ``out_path`` (a video, not a GIF or WebP): checked
    before any frame is painted."""
    fmt = output_format(Path(out_path))
    if fmt in ANIMATED:
        raise BadInput(f"--audio {audio}: a {ANIMATED_NAMES[fmt]} holds no sound; write .mp4, .mov, .mkv or .webm")
    check_soundtrack(audio)


def _soundtrack(audio, start: float, on_event: Sink):
    """The :class:`Soundtrack` of ``audio`` from second ``start`` (a context), or a null context."""
    return Soundtrack(audio, start, on_event) if audio is not None else contextlib.nullcontext()


def _x264_params() -> dict[str, str]:
    """Trap: libx264's AVX-512 code writes different bytes from one run to the next for the same
    frames (it reads memory it never set: which bytes depends on the heap). Measured on a Xeon with
    AVX-512: 20 encodes of the same 8 frames at 320×180 gave 5 to 12 different files, its AVX2 code
    one, and a little faster (``scripts/bench.py --only x264``). A resumed video was then not the same file as an uninterrupted one. Where the CPU
    has AVX-512, x264 is held to AVX2 (x264 would run AVX2 code on a CPU without it: never asked there)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as cpu
    except ImportError:     # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as cpu
        except ImportError:
            return {}
    # x264's "AVX2" level also turns on FMA3, LZCNT, BMI1 and BMI2: every AVX-512 CPU has them.
    if all(cpu.get(k) for k in ("AVX512F", "AVX2", "FMA3", "BMI2", "LZCNT")):
        return {"x264-params": "asm=AVX2"}
    return {}


X264_PARAMS = _x264_params()


def _video_stream(out, vcodec: str, rate, dims: tuple[int, int, str], crf: int):
    """The output's video stream: size, pixel format, quality, and BT.709 limited-range tags."""
    width, height, pix_fmt = dims
    ovs = out.add_stream(vcodec, rate=rate)
    ovs.width, ovs.height, ovs.pix_fmt = width, height, pix_fmt
    if vcodec == "libx264":
        ovs.options = {"crf": str(crf), **X264_PARAMS}
    elif vcodec == "libvpx-vp9":
        # Constant quality (b=0). VP9's crf runs 0-63: --crf 18 (H.264's scale) → 22, as good to the
        # eye. cpu-used 4 with row-mt: about 10 frames a second at 640x360 on 2 cores.
        ovs.options = {"crf": str(min(63, round(crf * 63 / 51))), "b": "0", "deadline": "good", "cpu-used": "4",
                       "row-mt": "1"}
    elif vcodec == "prores_ks":
        ovs.options = {"profile": "4" if pix_fmt.startswith("yuv444") else "3", "vendor": "apl0"}   # 4444 / 422 HQ
    else:
        ovs.codec_context.qmin, ovs.codec_context.qmax = 2, 5
        ovs.bit_rate = int(width * height * float(rate) * 0.5)
    # Tag what we encode: BT.709 limited range (untagged HD is guessed 709, SD 601: be explicit).
    cc = ovs.codec_context
    cc.colorspace, cc.color_range = int(Colorspace.ITU709), int(ColorRange.MPEG)
    cc.color_primaries, cc.color_trc = int(ColorPrimaries.BT709), int(ColorTrc.BT709)
    return ovs


def _output_size(first: np.ndarray, meta, size: int | None, as_shown: bool) -> tuple[int, int]:
    """(width, height) of the output: the first image's (``size`` None), else the input's long edge
    ``size`` (0: its own size), as shown (square pixels) when the images are."""
    if size is None:
        return first.shape[1], first.shape[0]
    return scaled_size(*shown_size(meta.width, meta.height, meta.sar if as_shown else None), size)


def _assemble_animation(input_path, get_frame, out_path: Path, fmt: str, meta, start, duration, size, expected,
                        as_shown: bool, on_event: Sink, check) -> Written:
    """:func:`assemble` into a GIF or an animated WebP: the window's frames at their times (from
    the first frame's), as shown, and nothing else: whatever else the input holds is named."""
    with open_video(input_path) as (inp, vs):
        walk = Walk(input_path, inp, vs, start, duration, (), on_event)
        times, durations = [], []
        for frame in walk:
            times.append(frame.pts * vs.time_base)
            durations.append((frame.duration or 0) * vs.time_base)
        left = [f"{d.index} ({d.type})" for d in inp.streams if d.index != vs.index]
        if inp.chapters():
            left.append("chapters")
        audio = len(inp.streams.audio)
    if expected is not None and len(times) != expected:
        raise WriteFailed(f"{out_path}: the input window has {len(times)} frames but {expected} were "
                          f"stylized; output not written")
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1 / Fraction(meta.fps or 25).limit_denominator(1001)
    end = times[-1] + (durations[-1] or step)
    kind = ANIMATED_NAMES[fmt]
    if left:
        warn(on_event, f"{out_path}: a {kind} holds only pictures: input {', '.join(left)} not copied "
                       f"(write .mp4, .mov or .mkv to keep them)")
    if meta.spherical:
        warn(on_event, f"{out_path}: a {kind} cannot say it is a 360° picture; viewers show it flat")
    if turns(meta.rotation) and not as_shown:
        warn(on_event, f"{out_path}: a {kind} has no rotation; the frames are written as coded, not turned")
    width, height = _output_size(_image(get_frame, 0, out_path), meta, size, as_shown)
    return _animation(out_path, fmt, lambda i: _image(get_frame, i, out_path), width, height, times, end,
                      on_event, check, audio)


def _animation(out_path: Path, fmt: str, get_image, width: int, height: int, times: list, end: Fraction,
               on_event: Sink, check, audio: int) -> Written:
    """Write the frames at ``times`` (seconds) until ``end`` as a GIF or animated WebP (see
    video/animated.py): temporary name, read back, renamed."""
    schedule = keep_times(times, end, fmt)
    if len(schedule) < len(times):
        info(on_event, f"{out_path}: {len(times) - len(schedule)} of {len(times)} frames left out: a {ANIMATED_NAMES[fmt]} "
                       f"plays at most 50 frames a second (browsers slow shorter frames down to 10 a second)")

    with atomic_path(out_path) as tmp:
        logs: list = []
        try:
            with ffmpeg_log() as logs:
                written = write_animation(tmp, fmt, lambda i: _sized(get_image(i), width, height), schedule,
                                          on_event, check)
        except BaseException as e:
            _failed(e, None, out_path, logs)
        try:
            frames, ticks = read_back(tmp, fmt)
        except AV_ERRORS as e:
            raise WriteFailed(f"{out_path}: the written file does not read back ({reason(e)})") from None
        total = sum(d for _, _, d in schedule)
        # A WebP may hold fewer frames: libwebp merges a frame equal to the one before into it.
        if ticks != total or not (frames == written or (fmt == "webp" and 1 <= frames < written)):
            raise WriteFailed(f"{out_path}: the written file holds {frames} frames lasting {ticks} ticks, "
                              f"expected {written} lasting {total}")
    return Written(out_path, written, width, height, ANIMATED[fmt], ("dropped",) * audio, 0)


def _failed(e: BaseException, out, out_path: Path, logs: list):
    """Close the half-written container and raise what the failure means: a full disk or another
    OS error as WriteFailed with its reason, an FFmpeg error as "encoding failed", ours unchanged."""
    if out is not None:
        with contextlib.suppress(Exception):
            out.close()
    if isinstance(e, AV_ERRORS) and not isinstance(e, StylevidError):
        if isinstance(e, OSError):
            raise write_failed(out_path, e) from e
        raise WriteFailed(f"{out_path}: encoding failed ({reason(e, logs)})") from e
    raise e


def pixel_format(vcodec: str, width: int, height: int) -> str:
    """The encoded pixel format: yuv420p whenever it can hold the size exactly.

    Measured with PyAV 18.1 / FFmpeg 8.1: libx264 refuses 4:2:0 (and 4:2:2) at an odd width or
    height, but encodes yuv444p at any size, and the file decodes back at that exact size. (Even in
    4:2:0 the SPS can crop only by whole chroma samples, so an odd size cannot be signalled either.)
    The mpeg4 fallback encodes 4:2:0 at odd sizes. ProRes is 10-bit 4:2:2 (4:4:4 at an odd width).
    """
    if vcodec == "prores_ks":         # 10-bit 4:2:2 (422 HQ); 4:4:4 (4444) where the width is odd
        return "yuv444p10le" if width % 2 else "yuv422p10le"
    if vcodec == "libx264" and (width % 2 or height % 2):
        return "yuv444p"
    return "yuv420p"                 # VP9 codes any size in 4:2:0


def _no_check() -> None:
    pass


def _timecode(inp, vs) -> tuple[str | None, set[int]]:
    """The input's start timecode ("HH:MM:SS:FF", ";" before FF for drop-frame) from the video
    stream's tag, a timecode track's or the container's, and the indices of its timecode tracks."""
    tracks = {d.index for d in inp.streams if d.type == "data" and "timecode" in d.metadata}
    for where in (vs.metadata, *(inp.streams[i].metadata for i in sorted(tracks)), inp.metadata):
        if where.get("timecode"):
            return where["timecode"], tracks
    return None, tracks


def shift_timecode(timecode: str, seconds: float, rate: Fraction) -> str | None:
    """``timecode`` moved ``seconds`` later at frame ``rate`` (drop-frame counted at 29.97 and 59.94
    as SMPTE 12M does); None if it cannot be parsed or the rate has no whole nominal fps."""
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d)([:;.,])(\d\d)", timecode.strip())
    fps = round(float(rate)) if rate else 0
    if not m or fps <= 0:
        return None
    h, mi, sec, sep, f = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    if not seconds:
        return timecode
    drop = (fps // 30) * 2 if sep in ";," and fps % 30 == 0 else 0
    minutes = 60 * h + mi
    n = (3600 * h + 60 * mi + sec) * fps + f - drop * (minutes - minutes // 10)
    n += round(seconds * float(rate))
    if drop:
        per10, per1 = fps * 600 - drop * 9, fps * 60 - drop
        tens, rest = divmod(n, per10)
        n += drop * 9 * tens + (drop * ((rest - drop) // per1) if rest > drop else 0)
    f, total = n % fps, n // fps
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}{sep}{f:02d}"


def _covers(inp, vs, out, input_path) -> dict[int, av.Packet | None]:
    """The input's cover art (a video stream flagged attached_pic: a downloaded music video's
    thumbnail, a podcast's artwork), added to ``out``; by input index, the packet still to mux
    (MP4/MOV: a stream of one picture, flagged attached_pic) or None (Matroska: an attachment).

    Traps: the demuxer hands an attached picture out once, before the first packet (and again
    after a seek), so it is read from a second opening of the file, not from the walk. Matroska's
    muxer writes an attached_pic stream as a plain video track of one frame; a cover there is an
    attachment named cover.jpg/.png, which FFmpeg reads back as attached_pic."""
    pictures = [s for s in inp.streams.video
                if s.index != vs.index and s.disposition & av.stream.Disposition.attached_pic]
    kept: dict[int, av.Packet | None] = {}
    if not pictures:
        return kept
    with av.open(os.path.abspath(input_path), container_options={"protocol_whitelist": "file"}) as again:
        for s in pictures:
            try:
                again.seek(0)               # hands the attached pictures out again
                data = next((bytes(p) for p in again.demux(again.streams[s.index]) if p.size), None)
                if data is None:
                    continue
                if fmt_name(out) == "MKV":
                    kind = "png" if data.startswith(b"\x89PNG") else "jpeg"
                    name = s.metadata.get("filename") or f"cover.{'png' if kind == 'png' else 'jpg'}"
                    out.add_attachment(name, s.metadata.get("mimetype") or f"image/{kind}", data)
                    kept[s.index] = None
                    continue
                o = out.add_stream_from_template(s)
                o.disposition = av.stream.Disposition.attached_pic
            except AV_ERRORS + (ValueError,):
                continue
            packet = av.Packet(data)
            packet.stream, packet.pts, packet.dts, packet.time_base = o, 0, 0, s.time_base or Fraction(1, 90000)
            kept[s.index] = packet
    return kept


def _chapters(inp, walk: Walk, shift: Fraction) -> list[dict]:
    """The input's chapters within the window, cut to it and moved like every stream (``shift``).
    Trap: chapters must be set before the first packet is muxed (the header holds them); MP4 and
    MOV store them as a text track, which PyAV then lists as a data stream."""
    lo = walk.origin + walk.begin
    hi = None if walk.end is None else walk.origin + walk.end
    kept = []
    for ch in inp.chapters():
        tb = ch["time_base"] or Fraction(1, 1000)
        a, b = ch["start"] * tb, ch["end"] * tb
        if b <= lo or (hi is not None and a >= hi):
            continue
        a, b = max(a, lo) if walk.begin else a, b if hi is None else min(b, hi)
        kept.append({"id": len(kept) + 1, "start": round((a - shift) / tb), "end": round((b - shift) / tb),
                     "time_base": tb, "metadata": dict(ch["metadata"])})
    return kept


def _write(inp, vs, out, meta, input_path, out_path, get_frame, first, vcodec, crf, dims,
           start, duration, expected, on_event, check, as_shown=False, soundtrack: Soundtrack | None = None):
    width, height, pix_fmt = dims
    for k, v in inp.metadata.items():
        if k not in _STALE_METADATA:
            out.metadata[k] = v

    # -- video: same time_base as the input, so every pts is copied exactly.
    rate = vs.average_rate or vs.guessed_rate or Fraction(25)
    ovs = _video_stream(out, vcodec, Fraction(rate).limit_denominator(1001), dims, crf)
    tb = vs.time_base
    enc_tb = tb
    if vcodec == "mpeg4" and tb.denominator > 65535:
        enc_tb = Fraction(1, 60000)   # MPEG-4 part 2 refuses time_base denominators over 2^16-1
    # Trap: the encoder rescales frame pts into codec_context.time_base (default 1/rate); set both.
    ovs.time_base = enc_tb
    ovs.codec_context.time_base = enc_tb
    cc = ovs.codec_context
    if vs.sample_aspect_ratio and vs.sample_aspect_ratio != 1 and not as_shown:   # as shown: square already
        cc.sample_aspect_ratio = vs.sample_aspect_ratio
    if meta.display_matrix is not None:
        # The raw matrix, not just the angle: it also carries flips. Written as stream side data.
        # Its translation (entries 6, 7) is in input pixels: drop it, it no longer fits.
        m = list(meta.display_matrix)
        m[6] = m[7] = 0
        ovs.set_display_matrix(m)

    # The input's walk; the other streams it yields are named once chosen below.
    walk = Walk(input_path, inp, vs, start, duration, (), on_event)
    shift = walk.shift

    # -- audio: a stream made from the input's template takes the packets unchanged; or a soundtrack
    # in its place, its time 0 with the window's origin.
    copy, reencode, audio_modes = {}, {}, []
    if soundtrack is not None:
        if inp.streams.audio:
            info(on_event, f"{out_path}: the input's audio ({len(inp.streams.audio)} stream"
                           f"{'s' * (len(inp.streams.audio) > 1)}) is replaced by --audio {soundtrack.path.name}")
        soundtrack.attach(out, out_path, walk.origin - shift)
        audio_modes = soundtrack.modes
    else:
        for a in inp.streams.audio:
            oa, mode = add_audio(out, a, out_path, on_event)
            audio_modes.append(mode)
            if mode == "copy":
                copy[a.index] = oa
            elif oa is not None:      # re-encoded (AAC, or Opus in a WebM)
                reencode[a.index] = Reencoder(a, oa, out, shift, input_path)
    subs, converted = {}, {}
    for s in inp.streams.subtitles:
        name = s.codec_context.codec.canonical_name if s.codec_context else "unknown"
        try:
            subs[s.index] = out.add_stream_from_template(s)
            if s.language:
                subs[s.index].metadata["language"] = s.language
        except ValueError:
            target = convertible(s, out.format.name)
            if target is None:
                warn(on_event, f"{out_path}: {fmt_name(out)} cannot hold subtitle stream {s.index} ({name}); "
                               f"not copied")
                continue
            converted[s.index] = Converter(s, out, target)
            info(on_event, f"{out_path}: subtitle stream {s.index} ({name}) converted to {target}, which "
                           f"{fmt_name(out)} holds: the text and times kept, styling {target} lacks dropped")
    covers = _covers(inp, vs, out, input_path)
    gap_filled = {i for i, o in subs.items() if o.codec_context.codec.canonical_name == "mov_text"
                  and fmt_name(out) in ("MP4", "MOV")}
    others = [s for s in inp.streams if s.index in copy or s.index in reencode or s.index in subs or s.index in converted]

    # -- timecode (a camera's tmcd track): written again from the video stream's tag, moved by --start.
    timecode, tc_streams = _timecode(inp, vs)
    if timecode:
        moved = shift_timecode(timecode, start, rate)
        if moved:
            ovs.metadata["timecode"] = moved
        else:
            warn(on_event, f"{out_path}: timecode {timecode} not kept (cannot move it to --start {start:g} s at "
                           f"{float(rate):.3f} fps)")
    # Whatever else the input holds is not in the output: say so (no silent loss).
    chapter_tracks = {d.index for d in inp.streams if d.type == "data" and inp.chapters()
                      and d.metadata.get("handler_name", "").lower().startswith(("subtitle", "chapter"))}
    carried = {vs.index, *tc_streams, *chapter_tracks, *covers,   # audio and subtitles: each said above if dropped
               *(a.index for a in inp.streams.audio), *(t.index for t in inp.streams.subtitles)}
    left = [f"{d.index} ({d.type}{': ' + d.metadata['handler_name'] if d.metadata.get('handler_name') else ''})"
            for d in inp.streams if d.index not in carried]
    if left:
        warn(on_event, f"{out_path}: input stream{'s' if len(left) > 1 else ''} {', '.join(left)} not copied (stylevid "
                       f"keeps the video, audio, subtitles, chapters, timecode and cover art)")

    walk.other = tuple(others)
    out.set_chapters(_chapters(inp, walk, shift))     # before the first packet: the header holds them
    for packet in covers.values():
        if packet is not None:
            out.mux(packet)

    def shifted(ts: int, time_base: Fraction) -> int:
        return ts - round(shift / time_base)

    on_event(Progress("assemble", 0, expected))
    frames_in = packets_out = 0
    last_pts = None
    fixed = 0
    durations: dict[int, int] = {}
    for item in walk:
        check()   # a stop request aborts here, within one packet or frame
        if isinstance(item, av.Packet):
            i = item.stream.index
            if i in reencode:
                reencode[i](item)
                continue
            if i in gap_filled and item.size == 2 and bytes(item) == b"\0\0":
                continue   # an empty mov_text cue: the MP4 muxer writes its own for every gap
            item.pts, item.dts = shifted(item.pts, item.time_base), shifted(item.dts, item.time_base)
            if i in converted:
                item = converted[i](item)
                if item is not None:
                    out.mux(item)
                continue
            item.stream = copy.get(i) or subs[i]
            out.mux(item)
            continue
        image = first if frames_in == 0 else _image(get_frame, frames_in, out_path)
        frame = _to_frame(image, width, height, pix_fmt)
        pts = shifted(item.pts, tb)
        if enc_tb != tb:
            pts = round(pts * tb / enc_tb)
        if last_pts is not None and pts <= last_pts:   # broken input timestamps: the encoder needs them rising
            pts, fixed = last_pts + 1, fixed + 1
        frame.pts, frame.time_base = pts, enc_tb
        last_pts = pts
        if item.duration:
            durations[pts] = round(item.duration * tb / enc_tb)
        end = pts * enc_tb + (item.duration * tb if item.duration else 1 / Fraction(rate))
        if soundtrack is not None:
            soundtrack.until(pts * enc_tb)
        packets = _with_durations(ovs.encode(frame), durations)
        packets_out += len(packets)
        out.mux(packets)
        frames_in += 1
        on_event(Progress("assemble", frames_in, expected))
    check()
    packets = _with_durations(ovs.encode(None), durations)   # flush: the encoder holds the last frames
    packets_out += len(packets)
    out.mux(packets)
    for r in reencode.values():
        r(None)
    if soundtrack is not None and frames_in:
        soundtrack.finish(end)
    if fixed:
        warn(on_event, f"{input_path}: {fixed} frames had non-increasing timestamps; moved by one tick")
    if expected is not None and frames_in != expected:
        raise WriteFailed(f"{out_path}: the input window has {frames_in} frames but {expected} were "
                          f"stylized; output not written")
    if packets_out != frames_in:
        raise WriteFailed(f"{out_path}: encoded {packets_out} of {frames_in} frames; output not written")
    return frames_in, audio_modes, len(subs) + len(converted)


def _movie_timescale(fmt: str, *time_bases: Fraction | None) -> dict:
    """MP4/MOV option so a stream that starts late (audio cut to a window) keeps its exact start.

    Trap: the MP4 muxer stores a track's initial delay as an edit list in the movie timescale,
    1/1000 s by default: an audio track starting 553/22050 s late came back 551/22050 s late.
    A timescale every input time base divides keeps it exact.
    """
    if fmt not in ("mp4", "mov"):
        return {}
    scale = 1
    for tb in time_bases:
        if tb:
            scale = math.lcm(scale, tb.denominator)
    return {"movie_timescale": str(scale)} if scale < 2**31 else {}


def _with_durations(packets, durations: dict) -> list:
    """Give encoded packets their input frame's duration (libx264 leaves it 0).

    Trap: without it the MP4 muxer guesses the last frame's duration, and the file comes out
    shorter than the input when the frame rate varies.
    """
    for p in packets:
        d = durations.pop(p.pts, None)
        if d and not p.duration:
            p.duration = d
    return packets


def _image(get_frame, i: int, out_path) -> np.ndarray:
    try:
        img = get_frame(i)
    except (LookupError, FileNotFoundError) as e:
        raise BadInput(f"{out_path}: stylized frame {i} is missing ({e})") from None
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
        raise BadInput(f"{out_path}: stylized frame {i} must be uint8 H×W×3, got {img.dtype} {img.shape}")
    return img


def _sized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at width×height (bicubic), or itself when it is that size already."""
    if image.shape[:2] == (height, width):
        return image
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24") \
        .reformat(width=width, height=height, interpolation="BICUBIC").to_ndarray()


def _to_frame(image: np.ndarray, width: int, height: int, pix_fmt: str) -> av.VideoFrame:
    image = _sized(image, width, height)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.reformat(format=pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)


def _verify(tmp: Path, fmt: str, written: int, out_path: Path) -> None:
    """Reopen the temporary file and count its video frames before it may take the final name."""
    try:
        with av.open(str(tmp), format=fmt) as c:
            s = c.streams.video[0]
            n = s.frames or sum(1 for p in c.demux(s) if p.size)
    except AV_ERRORS as e:
        raise WriteFailed(f"{out_path}: the written file does not read back ({reason(e)})") from None
    if n != written:
        raise WriteFailed(f"{out_path}: the written file holds {n} frames, expected {written}")
