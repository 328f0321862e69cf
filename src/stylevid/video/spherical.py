"""Spherical Video V1 metadata (Google's spatial-media RFC) written into an MP4/MOV file.

FFmpeg's mov muxer writes 360° metadata only from a stream's side data, which PyAV cannot set.
So after muxing, this module adds the V1 box itself: a ``uuid`` box holding a small XML document,
at the end of the video ``trak``. FFmpeg reads it back as spherical side data (mov.c
``mov_parse_uuid_spherical``), and YouTube and the common 360 players read it.

Traps:
- The XML needs StitchingSoftware, Spherical=true, Stitched=true and ProjectionType=equirectangular,
  or FFmpeg ignores the box.
- The ``moov`` grows. Every box around the new one (trak, moov) gets its size rewritten, and
  where media data lies after the ``moov`` (a "faststart" file) every chunk offset (``stco`` /
  ``co64``) pointing past it moves by the growth too.
- Boxes may have 64-bit sizes (size field 1) or run to the end of the file (size field 0).
"""
from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from ..errors import InvalidMedia

UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")
STEREO_MODES = ("left-right", "top-bottom")


def xml(stereo: str = "") -> bytes:
    """The V1 document; ``stereo``: "" (mono) or one of STEREO_MODES (the frame holds both eyes)."""
    if stereo and stereo not in STEREO_MODES:
        raise ValueError(f"stereo layout {stereo!r}: one of {STEREO_MODES} or ''")
    mode = f"<GSpherical:StereoMode>{stereo}</GSpherical:StereoMode>" if stereo else ""
    return ('<?xml version="1.0"?><rdf:SphericalVideo xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:GSpherical="http://ns.google.com/videos/1.0/spherical/">'
            "<GSpherical:Spherical>true</GSpherical:Spherical>"
            "<GSpherical:Stitched>true</GSpherical:Stitched>"
            "<GSpherical:StitchingSoftware>stylevid</GSpherical:StitchingSoftware>"
            "<GSpherical:ProjectionType>equirectangular</GSpherical:ProjectionType>"
            f"{mode}</rdf:SphericalVideo>").encode()
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _header(size: int, kind: bytes) -> bytes:
    return struct.pack(">I4s", size, kind) if size < 2**32 else struct.pack(">I4sQ", 1, kind, size + 8)


def _boxes(buf: bytes, start: int, end: int):
    """(kind, offset, header length, size) of each box in ``buf[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise InvalidMedia(f"malformed {kind!r} box at byte {pos}")
        yield kind, pos, head, size
        pos += size


def _top_level(f) -> list[tuple[bytes, int, int, int]]:
    """The file's top-level boxes, read header by header (the media data is not loaded)."""
    end = f.seek(0, os.SEEK_END)
    out, pos = [], 0
    while pos + 8 <= end:
        f.seek(pos)
        h = f.read(16)
        size, kind = struct.unpack(">I4s", h[:8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", h[8:16])[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise InvalidMedia(f"malformed {kind!r} box at byte {pos}")
        out.append((kind, pos, head, size))
        pos += size
    return out


def _is_video_trak(buf: bytes, start: int, end: int) -> bool:
    for kind, pos, head, size in _boxes(buf, start, end):
        if kind == b"mdia":
            for k2, p2, h2, _ in _boxes(buf, pos + head, pos + size):
                if k2 == b"hdlr":       # version+flags (4), pre_defined (4), handler type (4)
                    return buf[p2 + h2 + 8:p2 + h2 + 12] == b"vide"
    return False


def _has_spherical(buf: bytes, start: int, end: int) -> bool:
    return any(kind == b"uuid" and buf[pos + head:pos + head + 16] == UUID
               for kind, pos, head, _ in _boxes(buf, start, end))


def _rebuild(buf: bytes, start: int, end: int, box: bytes, after: int, shift: int) -> tuple[bytes, bool]:
    """``buf[start:end]`` with ``box`` appended to the first video trak that lacks one, and chunk
    offsets above ``after`` moved by ``shift``. Returns the bytes and whether ``box`` went in."""
    parts, added = [], False
    for kind, pos, head, size in _boxes(buf, start, end):
        body_start, body_end = pos + head, pos + size
        if kind in CONTAINERS:
            body, _ = _rebuild(buf, body_start, body_end, box, after, shift)   # (no trak inside a trak)
            if kind == b"trak" and not added and _is_video_trak(buf, body_start, body_end) \
                    and not _has_spherical(buf, body_start, body_end):
                body, added = body + box, True
            parts.append(_header(len(body) + 8, kind) + body)
        elif kind in (b"stco", b"co64") and shift:
            fmt = ">I" if kind == b"stco" else ">Q"
            n = struct.unpack_from(">I", buf, body_start + 4)[0]     # after version+flags
            first = body_start + 8
            offsets = struct.unpack_from(f">{n}{fmt[1]}", buf, first)
            moved = [o + shift if o > after else o for o in offsets]
            if kind == b"stco" and max(moved, default=0) >= 2**32:
                raise InvalidMedia("chunk offsets would pass 4 GB; cannot add the 360 metadata")
            parts.append(buf[pos:first] + struct.pack(f">{n}{fmt[1]}", *moved) + buf[first + struct.calcsize(f">{n}{fmt[1]}"):body_end])
        else:
            parts.append(buf[pos:body_end])
    return b"".join(parts), added


def add_spherical(path: str | os.PathLike, stereo: str = "") -> bool:
    """Mark the video track of the MP4/MOV file ``path`` as an equirectangular 360° video (in place),
    with ``stereo`` layout ("" mono, "left-right", "top-bottom"). False when there is no video track
    or it is marked already."""
    path = Path(path)
    doc = xml(stereo)
    box = _header(8 + 16 + len(doc), b"uuid") + UUID + doc
    with open(path, "r+b") as f:
        top = _top_level(f)
        moov = [(pos, head, size) for kind, pos, head, size in top if kind == b"moov"]
        if len(moov) != 1:
            raise InvalidMedia(f"{path}: {len(moov)} moov boxes; cannot add the 360 metadata")
        pos, head, size = moov[0]
        f.seek(pos)
        old = f.read(size)
        last = pos + size == top[-1][1] + top[-1][3]
        # Media data after the moov moves by the growth: its chunk offsets must follow.
        shift = 0 if last else len(box)
        body, added = _rebuild(old, head, size, box, pos, shift)
        if not added:
            return False
        new = _header(len(body) + 8, b"moov") + body
        if last:            # the usual FFmpeg layout: moov at the end; rewrite it in place
            f.seek(pos)
            f.write(new)
            f.truncate()
            return True
        if len(new) - len(old) != shift:
            raise InvalidMedia(f"{path}: the moov box changed size unexpectedly")
    tmp = path.with_name(path.name + ".sph")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(_limited(src, pos), dst)
            dst.write(new)
            src.seek(pos + size)
            shutil.copyfileobj(src, dst)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


class _limited:
    """The first ``n`` bytes of file ``f`` (from its start), for shutil.copyfileobj."""

    def __init__(self, f, n: int):
        self.f, self.left = f, n
        f.seek(0)

    def read(self, k: int = -1) -> bytes:
        k = self.left if k < 0 else min(k, self.left)
        data = self.f.read(k)
        self.left -= len(data)
        return data
