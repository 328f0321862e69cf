"""video/audio.py: a soundtrack from another file (--audio) under the painted frames, cut to their
window and in sync with them; PCM re-encoded for MP4 players."""
from __future__ import annotations


import av
import numpy as np
import pytest

from stylevid.errors import BadInput, InvalidMedia
from stylevid.events import Message
from stylevid.video import assemble, probe, write_frames
from tests.cli_helpers import packets, video_times
from tests.clips import make_clip, make_sound, moving_square


def frames_of(n, h=32, w=48):
    pics = moving_square(n, h, w)
    return lambda i: pics[i]


def said(events, level=None) -> str:
    return " ".join(e.text for e in events if isinstance(e, Message) and (level is None or e.level == level))


def sound_packets(path):
    """(bytes, seconds) of the audio packets of a file, as stored."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return [(bytes(p), p.pts * p.time_base) for p in c.demux(a) if p.size]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("soundtrack")
    return {"clip": make_clip(d / "clip.mp4", moving_square(10, 32, 48), fps=10, audio=1.0),   # 1 s, its own AAC
            "silent": make_clip(d / "silent.mp4", moving_square(10, 32, 48), fps=10),
            "wav": make_sound(d / "song.wav", 3.0, hz=330),            # 3 s: longer than the clip
            "flac": make_sound(d / "song.flac", 3.0, codec="flac", hz=330),
            "short": make_sound(d / "short.m4a", 0.4, codec="aac"),
            "dir": d}


def test_the_soundtrack_replaces_the_audio_bit_exact_and_ends_with_the_frames(media, tmp_path):
    events = []
    out = tmp_path / "o.mkv"
    w = assemble(media["clip"], frames_of(10), out, audio=media["wav"], on_event=events.append)
    assert w.audio == ("copy",)
    assert "the input's audio (1 stream) is replaced by --audio song.wav" in said(events, "info")
    got, src = sound_packets(out), sound_packets(media["wav"])
    assert [b for b, _ in got] == [b for b, _ in src[:len(got)]]          # the soundtrack's own bytes, from its top
    assert [t for _, t in got] == pytest.approx([float(t) for _, t in src[:len(got)]], abs=1e-3)
    # Cut where the frames end (1.0 s): the last packet starts before, the next would not.
    assert got[-1][1] < 1.0 <= src[len(got)][1]
    assert video_times(out) == video_times(media["clip"])
    assert probe(out).audio[0].codec == "pcm_s16le"


def test_from_start_the_soundtrack_keeps_sync_with_the_frames(media, tmp_path):
    """--start 0.5 on a clip and its soundtrack: the sound's second 0.5 plays with the window's
    first frame, each packet at its own time minus 0.5 s."""
    out = tmp_path / "w.mkv"
    w = assemble(media["clip"], frames_of(5), out, start=0.5, audio=media["flac"])
    assert w.frames == 5 and video_times(out)[0] == 0
    got = sound_packets(out)
    src = [(b, float(t) - 0.5) for b, t in sound_packets(media["flac"]) if t >= 0.5]
    assert [b for b, _ in got] == [b for b, _ in src[:len(got)]]
    assert [t for _, t in got] == pytest.approx([t for _, t in src[:len(got)]], abs=1e-3)
    assert got[-1][1] < 0.5 <= src[len(got)][1]


def test_pcm_goes_into_an_mp4_as_aac_and_as_it_is_into_a_mov(media, tmp_path):
    """MP4 takes PCM only as ISO 'ipcm', which browsers and most players do not play."""
    events = []
    w = assemble(media["silent"], frames_of(10), tmp_path / "o.mp4", audio=media["wav"], on_event=events.append)
    assert w.audio == ("aac",) and "re-encoded to AAC: few players play PCM in an MP4" in said(events, "warning")
    with av.open(str(tmp_path / "o.mp4")) as c:
        a = c.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().ravel() for f in c.decode(a)])
    assert abs(len(samples) - 22050) <= 1024                  # the frames' 1.0 s, within one AAC frame
    # Still the 330 Hz tone (the decoded sound's strongest frequency).
    spectrum = np.abs(np.fft.rfft(samples[2048:2048 + 16384]))
    assert np.argmax(spectrum) * 22050 / 16384 == pytest.approx(330, abs=3)
    w = assemble(media["silent"], frames_of(10), tmp_path / "o.mov", audio=media["wav"])
    assert w.audio == ("copy",) and probe(tmp_path / "o.mov").audio[0].codec == "pcm_s16le"
    # A WebM takes Opus (resampled to 48 kHz), cut with the frames likewise.
    w = assemble(media["silent"], frames_of(10), tmp_path / "o.webm", audio=media["wav"])
    assert w.audio == ("opus",)
    with av.open(str(tmp_path / "o.webm")) as c:
        assert sum(f.samples for f in c.decode(audio=0)) / 48000 == pytest.approx(1.0, abs=0.05)
    # The input's own PCM likewise (a camera's .mov).
    cam = make_clip(tmp_path / "cam.mov", moving_square(5, 32, 48), fps=10, audio=0.5, audio_codec="pcm_s16le")
    assert assemble(cam, frames_of(5), tmp_path / "cam.mp4").audio == ("aac",)
    assert assemble(cam, frames_of(5), tmp_path / "cam.mkv").audio == ("copy",)


def test_a_short_soundtrack_is_named_and_a_zoom_takes_one(media, tmp_path):
    events = []
    w = write_frames(frames_of(12), 12, tmp_path / "z.mp4", fps=12, audio=media["short"], on_event=events.append)
    assert w.audio == ("copy",)
    assert "the sound ends at 0.4" in said(events, "warning") and "which runs 1.00 s; the rest is silent" in said(events)
    assert packets(tmp_path / "z.mp4", "audio") == packets(media["short"], "audio")
    events.clear()
    w = write_frames(frames_of(3), 3, tmp_path / "y.mp4", fps=12, audio=media["wav"], on_event=events.append)
    assert "silent" not in said(events)
    assert 0.25 - 0.05 < sound_packets(tmp_path / "y.mp4")[-1][1] < 0.25


def test_what_is_refused_before_anything_is_written(media, tmp_path):
    with pytest.raises(BadInput, match="a GIF holds no sound"):
        assemble(media["clip"], frames_of(10), tmp_path / "o.gif", audio=media["wav"])
    with pytest.raises(BadInput, match="no such file"):
        assemble(media["clip"], frames_of(10), tmp_path / "o.mp4", audio=tmp_path / "nope.wav")
    with pytest.raises(BadInput, match="holds no audio stream"):
        assemble(media["clip"], frames_of(10), tmp_path / "o.mp4", audio=media["silent"])
    (tmp_path / "text.wav").write_text("not a sound")
    with pytest.raises(InvalidMedia, match="not a sound or video file"):
        write_frames(frames_of(3), 3, tmp_path / "o.mp4", audio=tmp_path / "text.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.wav"]
