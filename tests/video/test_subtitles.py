"""Text subtitles rewritten in the output container's own text format (video/subtitles.py)."""
from __future__ import annotations

from fractions import Fraction

import av
import pytest

from stylevid.video import assemble
from stylevid.video.subtitles import cue_text, payload
from tests.clips import make_clip, moving_square


@pytest.mark.parametrize("data, codec, text", [
    (b"Hello <i>world</i>\r\n", "subrip", "Hello <i>world</i>"),
    (b"\x00\x05Hello" + b"\x00\x00\x00\x0cstyl\x00\x00\x00\x00", "mov_text", "Hello"),   # a style box after the text
    (b"\x00\x00", "mov_text", ""),                                                     # a gap
    (b"7,0,Default,,0,0,0,,{\\i1}Hello{\\i0}\\Nworld, again", "ass", "Hello\nworld, again"),
    (b"Line <b>one</b>\nline two", "webvtt", "Line <b>one</b>\nline two"),
])
def test_cue_text(data, codec, text):
    assert cue_text(data, codec) == text


def test_payload_keeps_what_the_format_shows():
    assert payload("Hello <i>world</i> <font color=red>red</font>", "webvtt") == b"Hello <i>world</i> red"
    assert payload("Hello <i>world</i>", "mov_text") == b"\x00\x0bHello world"       # mov_text shows no markup
    assert payload("é", "mov_text") == b"\x00\x02" + "é".encode()                    # a length in bytes
    assert payload("<font color=red>red</font> <i>i</i>", "subrip") == b"<font color=red>red</font> <i>i</i>"


def test_an_mp4s_mov_text_goes_into_an_mkv_as_subrip(tmp_path):
    frames = moving_square(10, 32, 48)
    src = make_clip(tmp_path / "s.mp4", frames, fps=10, subtitles=[(0.2, 0.5, "mov cue")])
    w = assemble(src, lambda i: frames[i], tmp_path / "o.mkv")
    assert w.subtitles == 1
    with av.open(str(w.path)) as c:
        s = c.streams.subtitles[0]
        assert s.codec_context.codec.canonical_name == "subrip"
        assert [(bytes(p), p.pts * p.time_base, p.duration * p.time_base) for p in c.demux(s) if p.size] == [
            (b"mov cue", Fraction(2, 10), Fraction(3, 10))]


def test_cues_keep_their_times_and_language(tmp_path):
    """SubRip cues in an MKV (the window from 0.3 s) become WebVTT cues in a WebM: each at its time
    moved by the window's start, with its duration (a cue that starts before the window is left
    out, as when cues are copied)."""
    cues = [(0.1, 0.4, "before"), (0.5, 0.9, "Hello <i>world</i>"), (1.0, 1.6, "two\nlines")]
    src = make_clip(tmp_path / "s.mkv", moving_square(20, 32, 48), fps=10, subtitles=cues)
    with av.open(str(src)) as c:
        assert c.streams.subtitles[0].codec_context.codec.canonical_name == "subrip"
    frames = moving_square(20, 32, 48)
    w = assemble(src, lambda i: frames[i + 3], tmp_path / "o.webm", start=0.3)
    assert w.subtitles == 1
    with av.open(str(w.path)) as c:
        s = c.streams.subtitles[0]
        assert s.codec_context.codec.canonical_name == "webvtt"
        got = [(bytes(p).decode(), p.pts * p.time_base, p.duration * p.time_base) for p in c.demux(s) if p.size]
    assert got == [("Hello <i>world</i>", Fraction(2, 10), Fraction(4, 10)),
                   ("two\nlines", Fraction(7, 10), Fraction(6, 10))]
