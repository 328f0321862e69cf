"""Video input and output (L2: PyAV, numpy and the standard library; no torch, cv2 or Pillow).

    probe(path) -> VideoInfo                              what the file holds
    read_frames(path, size, start, duration) -> Frames   the window's frames, uint8 H×W×3 RGB
    count_frames(path, start, duration) -> int            frames in the window, without decoding
    assemble(input, get_frame, output, ...) -> Written    encode the stylized frames with the input's
                                                          timestamps, rotation, audio and subtitles
    write_frames(get_frame, count, output, fps) -> Written  pictures alone at a constant frame rate
    (an output named .gif or .webp is a looping animation: video/animated.py, which also writes the
    lossless copy an animated WebP is read through)
"""
from __future__ import annotations

from .probe import StreamInfo, VideoInfo, probe
from .reader import Frame, count_frames, read_frames, scaled_size
from .writer import OUTPUT_FORMATS, Written, assemble, write_frames

__all__ = ["probe", "VideoInfo", "StreamInfo", "read_frames", "count_frames", "Frame", "scaled_size",
           "assemble", "write_frames", "Written", "OUTPUT_FORMATS"]
