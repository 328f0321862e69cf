"""Tiny clips shared by the video tests (written once per session)."""
from __future__ import annotations

import pytest

from tests.clips import make_clip, moving_square

# Variable frame rate: irregular gaps, in milliseconds.
VFR_PTS = [0, 40, 100, 130, 300, 340, 500, 520, 700, 760, 900, 1000]


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        # 12 frames 64x48 at VFR, AAC audio, rotation 90°, mov_text subtitles, index in front.
        "vfr": make_clip(d / "vfr.mp4", moving_square(12, 48, 64), pts=VFR_PTS, audio=1.2, rotation=90,
                         subtitles=[(0.1, 0.4, "hello"), (0.6, 0.9, "world")], faststart=True),
        # 20 frames at 10 fps, no audio.
        "cfr": make_clip(d / "cfr.mp4", moving_square(20, 48, 64), fps=10),
        # Odd sides (mpeg4 allows them, libx264 does not).
        "odd": make_clip(d / "odd.mp4", moving_square(6, 31, 45)),
        # Matroska with PCM audio (MP4 cannot hold pcm_u8) and SubRip subtitles.
        "mkv": make_clip(d / "pcm.mkv", moving_square(10, 32, 48), fps=10, audio=1.0, audio_codec="pcm_u8",
                         subtitles=[(0.2, 0.5, "srt cue")]),
    }
