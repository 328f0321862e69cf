"""Text subtitles carried into a container that cannot hold them as they are (L2: PyAV).

An MKV's SubRip or ASS subtitles cannot go into an MP4 (which holds mov_text) or a WebM (WebVTT
only), nor an MP4's mov_text into an MKV or a WebM. Their cues are plain text with a start and a
duration, so each packet is rewritten in the output's own text format, same times: the words and
line breaks are kept, styling that format lacks is not (mov_text shows no markup: tags are dropped;
WebVTT keeps <i>, <b> and <u>, SubRip those and <font>). Bitmap subtitles (DVD, Blu-ray PGS) are
pictures and are not converted.

Traps:
- A mov_text sample is a 16-bit big-endian text length, the UTF-8 text, then optional style boxes;
  an empty one (length 0) marks a gap, and the MP4 muxer writes those itself.
- An ASS packet in Matroska is "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text":
  the text is everything after the eighth comma, with {\\override} blocks and \\N for a new line.
- PyAV cannot encode subtitles; ``add_mux_stream`` makes a stream that takes packets as they are.
"""
from __future__ import annotations

import re
from fractions import Fraction

import av

# The text format a stream that cannot be copied becomes (Matroska copies SubRip, ASS and WebVTT).
TEXT_FORMAT = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt", "matroska": "subrip"}
TEXT_CODECS = {"subrip", "srt", "mov_text", "webvtt", "ass", "ssa", "text"}
KEEP_TAGS = {"webvtt": ("i", "b", "u"), "subrip": ("i", "b", "u", "font"), "mov_text": ()}
TIME_BASE = Fraction(1, 1000)

_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")
_TAG = re.compile(r"</?([a-zA-Z]+)[^>]*>")


def cue_text(data: bytes, codec: str) -> str:
    """The plain text of one subtitle packet of ``codec`` (SubRip and WebVTT tags kept)."""
    if codec == "mov_text":
        n = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
        return data[2:2 + n].decode("utf-8", "replace")
    text = data.decode("utf-8", "replace")
    if codec in ("ass", "ssa"):
        text = text.split(",", 8)[8] if text.count(",") >= 8 else text
        text = _ASS_OVERRIDE.sub("", text).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0")
    return text.strip("\r\n")


def payload(text: str, codec: str) -> bytes:
    """``text`` as one packet of ``codec`` (mov_text, webvtt or subrip), with the tags it lacks removed."""
    keep = KEEP_TAGS[codec]
    text = _TAG.sub(lambda m: m.group(0) if m.group(1).lower() in keep else "", text)
    data = text.encode()
    return len(data).to_bytes(2, "big") + data if codec == "mov_text" else data


def convertible(stream, fmt: str) -> str | None:
    """The codec ``stream`` (a text subtitle stream) becomes in a container of format ``fmt``, or
    None where it cannot be converted (a bitmap, or a container without a text format)."""
    name = stream.codec_context.codec.canonical_name if stream.codec_context else ""
    return TEXT_FORMAT.get(fmt) if name in TEXT_CODECS else None


class Converter:
    """Rewrites the packets of one input text subtitle stream into a new output stream of ``codec``
    (``add_mux_stream``); call it with each input packet, already moved in time; returns the packet
    to mux, or None for an empty cue."""

    def __init__(self, stream, out: av.container.OutputContainer, codec: str):
        self.source = stream.codec_context.codec.canonical_name
        self.codec = codec
        self.stream = out.add_mux_stream(codec, time_base=stream.time_base or TIME_BASE)
        if stream.language:
            self.stream.metadata["language"] = stream.language

    def __call__(self, packet: av.Packet) -> av.Packet | None:
        text = cue_text(bytes(packet), self.source)
        if not text.strip():
            return None
        out = av.Packet(payload(text, self.codec))
        out.stream = self.stream
        out.time_base = packet.time_base
        out.pts, out.dts, out.duration = packet.pts, packet.pts, packet.duration
        return out
