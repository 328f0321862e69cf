"""Image sequences: a video given as numbered pictures, the way renderers and research scripts
write them (L1: standard library only).

    render/                      a folder of numbered pictures (frame_0001.png, frame_0002.png, ...)
    render/frame_%04d.png        a printf pattern, as FFmpeg takes it (%d: any number of digits)

Frames are ordered by their number (frame_10 after frame_9), not by name. The pictures are read by
the pipeline (images.py) into a lossless video at ``--fps`` (video/animated.write_lossless).
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import BadInput, InputNotFound
from .files import check_input

SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm", ".pnm"})
_SPEC = re.compile(r"%(0?)(\d*)d")
_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")      # the last run of digits in the stem


def is_sequence(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image sequence: an existing folder, or a name with a printf
    number (``%04d``) that is not itself an existing file."""
    p = Path(path)
    return p.is_dir() or (bool(_SPEC.search(p.name)) and not p.exists())


def frames(path: str | os.PathLike) -> list[tuple[int, Path]]:
    """The (number, file) pairs of the sequence ``path``, by number; a one-line error when it
    holds no numbered pictures, one picture only, or pictures of two different names."""
    p = Path(path)
    if p.is_dir():
        groups: dict[tuple[str, str, str], list[tuple[int, Path]]] = {}
        for f in p.iterdir():
            m = _NUMBERED.match(f.stem)
            if f.suffix.lower() in SUFFIXES and m and f.is_file():
                groups.setdefault((m[1], m[3], f.suffix), []).append((int(m[2]), f))
        if len(groups) > 1:
            names = ", ".join(sorted(f"{a}<n>{b}{s}" for a, b, s in groups))
            raise BadInput(f"{p}: numbered pictures of {len(groups)} names ({names}); give one as a pattern, "
                           f"e.g. {p / (min(groups)[0] + '%04d' + min(groups)[1] + min(groups)[2])}")
        found = next(iter(groups.values()), [])
    else:
        if not p.parent.is_dir():
            raise InputNotFound(f"{p}: folder {p.parent} not found")
        found = matches(p)
    if not found and p.is_dir():
        raise BadInput(f"{p}: a folder with no numbered pictures ({', '.join(sorted(SUFFIXES))}); expected a video "
                       f"file or an image sequence")
    if not found:
        raise InputNotFound(f"{p}: no picture matches the pattern")
    found.sort()
    for (a, fa), (b, fb) in zip(found, found[1:]):
        if a == b:
            raise BadInput(f"{p}: {fa.name} and {fb.name} have one number; rename one or give a pattern")
    if len(found) < 2:
        raise BadInput(f"{p}: one picture is not a video; paint it with `stylevid image`")
    return found


def is_pattern(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name holds a printf number (``frame_%04d.png``)."""
    return bool(_SPEC.search(Path(path).name))


def matches(pattern: str | os.PathLike) -> list[tuple[int, Path]]:
    """The (number, file) pairs of the existing files that ``pattern`` names, unordered (%04d:
    four digits or more, as printf writes; %d: any)."""
    p = Path(pattern)
    m = _SPEC.search(p.name)
    head, tail = p.name[:m.start()], p.name[m.end():]
    digits = r"\d{%d,}" % int(m[2]) if m[1] and m[2] else r"\d+"
    rx = re.compile(re.escape(head) + f"({digits})" + re.escape(tail) + "$")
    if not p.parent.is_dir():
        return []
    return [(int(g[1]), f) for f in p.parent.iterdir() if (g := rx.match(f.name)) and f.is_file()]


def numbered(pattern: str | os.PathLike, number: int) -> Path:
    """The file ``pattern`` names for ``number`` (frame_%04d.png, 7 → frame_0007.png)."""
    p = Path(pattern)
    return p.parent / _SPEC.sub(lambda m: f"{number:{'0' if m[1] else ''}{m[2] or ''}d}", p.name, count=1)


def check_video_input(path: str | os.PathLike, what: str = "video") -> Path:
    """An input that is read as a video: an image sequence with at least two numbered pictures, or
    an existing regular file (:func:`files.check_input`)."""
    if is_sequence(path):
        frames(path)
        return Path(path)
    return check_input(path, what)


def gaps(numbers: list[int]) -> list[tuple[int, int]]:
    """The runs of missing numbers between the first and the last, as (first, last) pairs."""
    return [(a + 1, b - 1) for a, b in zip(numbers, numbers[1:]) if b - a > 1]


def identity(files: list[tuple[int, Path]]) -> str:
    """Cheap identity of a sequence: every file's name, size and modification time."""
    h = hashlib.sha256()
    for n, f in files:
        st = f.stat()
        h.update(f"{n}|{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def stem(path: str | os.PathLike) -> str:
    """A name for outputs made from an input: a sequence folder's name, a pattern's name less its
    number (render/frame_%04d.png → frame; render/%04d.png → render), a file's stem."""
    p = Path(path)
    if p.is_dir():
        return p.resolve().name or "frames"
    name = _SPEC.sub("", Path(p.name).stem).strip("_-. ")
    return name or p.parent.resolve().name or "frames"


def named_after(out: str | os.PathLike) -> Path:
    """The path an output's sidecar and preview are named from: the output, or for numbered
    pictures their folder and name less the number (painted/frame_%04d.png → painted/frame)."""
    p = Path(out)
    return p.parent / stem(p) if is_pattern(p) else p
