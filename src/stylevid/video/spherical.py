"""360° metadata: Spherical Video V1 (Google's spatial-media RFC) written into an MP4/MOV file, and
the Projection element into a Matroska/WebM file (``add_projection``, at the end of this module).

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
import zlib
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


# -- Matroska and WebM: the Projection element -------------------------------------------------------
#
# FFmpeg's Matroska muxer writes Projection (and StereoMode) only from stream side data, which PyAV
# cannot set either. The muxer leaves a Void element before Info and Tracks (room for its SeekHead);
# this takes the bytes it needs from that Void and puts a Projection element into the video track's
# Video element, so that nothing after Tracks moves (clusters and cues keep their positions).
#
# Traps:
# - Element IDs keep their length marker bits; sizes are EBML varints (1-8 bytes; all ones is
#   "unknown size"). A size is rewritten in its own length, so the new value must fit there.
# - Matroska (not WebM) files carry a CRC-32 element first in level-1 elements: Tracks' and
#   SeekHead's must be computed again (zlib's CRC-32, little-endian, over the rest of the element).
# - SeekHead positions are relative to the Segment's data; those of the elements that moved (Info,
#   Tracks: everything between the Void and the insertion) go down by the same amount.
# - ProjectionPrivate for equirectangular holds an ISOBMFF 'equi' box's payload: version and flags,
#   then the top, bottom, left and right bounds (all 0: the full sphere); 20 bytes.

SEGMENT, SEEKHEAD, SEEK, SEEK_ID, SEEK_POSITION = 0x18538067, 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
VOID, CRC32, TRACKS, TRACK_ENTRY, TRACK_TYPE, VIDEO, CLUSTER = 0xEC, 0xBF, 0x1654AE6B, 0xAE, 0x83, 0xE0, 0x1F43B675
PROJECTION, PROJECTION_TYPE, PROJECTION_PRIVATE, STEREO_MODE = 0x7670, 0x7671, 0x7672, 0x53B8
MKV_STEREO = {"left-right": 1, "top-bottom": 3}      # StereoMode: side by side / top-bottom, left eye first
HEAD_BYTES = 1 << 20                                 # Tracks lies in the file's first MB


def _vint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, length) of the EBML varint at ``pos`` (a size: the length marker removed)."""
    first = buf[pos]
    n = 1
    while n <= 8 and not first & (0x80 >> (n - 1)):
        n += 1
    if n > 8:
        raise InvalidMedia(f"malformed EBML number at byte {pos}")
    value = first & (0xFF >> n)
    for b in buf[pos + 1:pos + n]:
        value = value << 8 | b
    return value, n


def _id(buf: bytes, pos: int) -> tuple[int, int]:
    """(ID, length) of the element ID at ``pos`` (IDs keep their marker bits)."""
    _, n = _vint(buf, pos)
    return int.from_bytes(buf[pos:pos + n], "big"), n


def _size(value: int, length: int | None = None) -> bytes:
    """``value`` as an EBML size of ``length`` bytes (the shortest if None)."""
    if length is None:
        length = next(n for n in range(1, 9) if value < (1 << 7 * n) - 1)
    if value >= (1 << 7 * length) - 1:
        raise InvalidMedia(f"an EBML size of {value} does not fit in {length} bytes")
    return ((1 << 7 * length) | value).to_bytes(length, "big")


def _element(eid: int, body: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + _size(len(body)) + body


def _children(buf: bytes, start: int, end: int):
    """(ID, offset, header length, total length) of each element in ``buf[start:end]``."""
    pos = start
    while pos < end:
        eid, n = _id(buf, pos)
        size, m = _vint(buf, pos + n)
        if size == (1 << 7 * m) - 1:
            raise InvalidMedia(f"an element of unknown size at byte {pos} where a size is needed")
        if pos + n + m + size > end:
            raise InvalidMedia(f"malformed EBML element {eid:X} at byte {pos}")
        yield eid, pos, n + m, n + m + size
        pos += n + m + size


def _with_body(buf: bytes, pos: int, head: int, body: bytes) -> bytes:
    """The element at ``pos`` with ``body`` as its new content, its size in its own length, and its
    CRC-32 (where its first child is one) computed again."""
    n = _id(buf, pos)[1]
    if body[:2] == bytes([CRC32, 0x84]):        # a CRC-32 element (4 bytes) first
        body = body[:2] + zlib.crc32(body[6:]).to_bytes(4, "little") + body[6:]
    return buf[pos:pos + n] + _size(len(body), head - n) + body


def projection(stereo: str = "") -> bytes:
    """The Projection element of an equirectangular 360° video (and StereoMode, where ``stereo``)."""
    if stereo and stereo not in MKV_STEREO:
        raise ValueError(f"stereo layout {stereo!r}: one of {tuple(MKV_STEREO)} or ''")
    out = _element(PROJECTION, _element(PROJECTION_TYPE, b"\x01") + _element(PROJECTION_PRIVATE, bytes(20)))
    return out + (_element(STEREO_MODE, bytes([MKV_STEREO[stereo]])) if stereo else b"")


def add_projection(path: str | os.PathLike, stereo: str = "") -> bool:
    """Mark the video track of the Matroska or WebM file ``path`` as an equirectangular 360° video (in
    place, the file's size unchanged), with ``stereo`` layout. False when there is no video track or
    it is marked already; InvalidMedia where the muxer left no room (no Void before Tracks) or the
    file's head is not what FFmpeg writes."""
    path = Path(path)
    projection(stereo)                  # an unknown layout fails before the file is touched
    with open(path, "r+b") as f:
        buf = f.read(HEAD_BYTES)
        try:
            patches = _projection_patches(buf, stereo)
        except (IndexError, StopIteration):
            raise InvalidMedia(f"{path}: a Matroska head it cannot read") from None
        for offset, data in patches:
            f.seek(offset)
            f.write(data)
    return bool(patches)


def _projection_patches(buf: bytes, stereo: str) -> list[tuple[int, bytes]]:
    """(offset, bytes) to write over the file whose head is ``buf``: the Void, the elements after
    it and Tracks with the Projection in (one region of the same length), and the SeekHead with the
    moved positions. Empty when the video track is marked already or there is none."""
    header_len = next(_children(buf, 0, len(buf)))[3]         # the EBML header
    eid, n = _id(buf, header_len)
    if eid != SEGMENT:
        raise InvalidMedia("no Matroska segment after the EBML header")
    data = header_len + n + _vint(buf, header_len + n)[1]       # the Segment's data (its size is not needed)
    found: dict[int, tuple[int, int, int]] = {}
    pos = data
    while pos < len(buf):
        eid, n = _id(buf, pos)
        size, m = _vint(buf, pos + n)
        if eid == CLUSTER or pos + n + m + size > len(buf):
            break
        if eid in (SEEKHEAD, TRACKS) and eid not in found or eid == VOID and TRACKS not in found:
            found[eid] = (pos, n + m, n + m + size)          # (a Void: the last before Tracks)
        pos += n + m + size
    if TRACKS not in found:
        raise InvalidMedia(f"no Tracks element in the first {HEAD_BYTES >> 20} MB")
    t_pos, t_head, t_len = found[TRACKS]
    new_tracks, added = _tracks_with(buf, t_pos, t_head, t_len, stereo)
    if not added:
        return []
    grow = len(new_tracks) - t_len
    if VOID not in found:
        raise InvalidMedia("the muxer left no room (a Void element) before Tracks")
    v_pos, _, v_len = found[VOID]
    if v_len - grow < 0 or v_len - grow == 1:       # (a Void element takes at least 2 bytes)
        raise InvalidMedia(f"the Void before Tracks holds {v_len} bytes; {grow} are needed")
    patches = [(v_pos, _void(v_len - grow) + buf[v_pos + v_len:t_pos] + new_tracks)]
    if SEEKHEAD in found:        # the elements between the Void and Tracks moved down by ``grow``
        s_pos, s_head, s_len = found[SEEKHEAD]
        patches.append((s_pos, _seekhead_moved(buf, s_pos, s_head, s_len, v_pos + v_len - data,
                                                t_pos + t_len - data, grow)))
    return patches


def _void(length: int) -> bytes:
    """A Void element of exactly ``length`` bytes (0, or 2 and more)."""
    if length == 0:
        return b""
    head = 2 if length - 2 <= 126 else 9
    return bytes([VOID]) + _size(length - head, head - 1) + bytes(length - head)


def _tracks_with(buf: bytes, pos: int, head: int, length: int, stereo: str) -> tuple[bytes, bool]:
    """The Tracks element with Projection added to its first video track's Video element."""
    parts = []
    added = False
    for eid, p, h, ln in _children(buf, pos + head, pos + length):
        if eid == TRACK_ENTRY and not added:
            kids = list(_children(buf, p + h, p + ln))
            is_video = any(k == TRACK_TYPE and buf[q + hh:q + ll] == b"\x01" for k, q, hh, ll in kids)
            video = [(q, hh, ll) for k, q, hh, ll in kids if k == VIDEO]
            if is_video and video:
                q, hh, ll = video[0]
                inner = {k for k, *_ in _children(buf, q + hh, q + ll)}
                if PROJECTION in inner:
                    return buf[pos:pos + length], False
                extra = projection(stereo if STEREO_MODE not in inner else "")
                new_video = _with_body(buf, q, hh, buf[q + hh:q + ll] + extra)
                body = buf[p + h:q] + new_video + buf[q + ll:p + ln]
                parts.append(_with_body(buf, p, h, body))
                added = True
                continue
        parts.append(buf[p:p + ln])
    return _with_body(buf, pos, head, b"".join(parts)), added


def _seekhead_moved(buf: bytes, pos: int, head: int, length: int, lo: int, hi: int, down: int) -> bytes:
    """The SeekHead with every position in [lo, hi) (relative to the Segment's data) ``down`` lower,
    each written in its own length (a smaller number fits)."""
    parts = []
    for eid, p, h, ln in _children(buf, pos + head, pos + length):
        if eid == SEEK:
            seek = []
            for k, q, hh, ll in _children(buf, p + h, p + ln):
                value = int.from_bytes(buf[q + hh:q + ll], "big")
                if k == SEEK_POSITION and lo <= value < hi:
                    seek.append(buf[q:q + hh] + (value - down).to_bytes(ll - hh, "big"))
                else:
                    seek.append(buf[q:q + ll])
            parts.append(buf[p:p + h] + b"".join(seek))
        else:
            parts.append(buf[p:p + ln])
    return _with_body(buf, pos, head, b"".join(parts))
