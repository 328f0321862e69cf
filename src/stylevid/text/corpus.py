"""Reading a training corpus, and the demo corpus every Python has (standard library only)."""
from __future__ import annotations

import hashlib
import os
import re

from ..errors import BadInput, TooLarge
from ..files import check_input

# Refuse corpora above this size: they are read whole into memory.
MAX_CORPUS_BYTES = 1 << 30

DEMO_NAME = "pydoc_data.topics"
_UNDERLINE = re.compile(r"^[ \t]*([*=\-~^\"#+])\1{2,}[ \t]*$", re.M)


def read_corpus(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, or a one-line BadInput for a missing, empty, binary or
    non-UTF-8 file."""
    p = check_input(path, "corpus")
    size = p.stat().st_size
    if size > MAX_CORPUS_BYTES:
        raise TooLarge(f"{p}: corpus is {size / 2**20:.0f} MiB; at most {MAX_CORPUS_BYTES >> 20} MiB is read")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise BadInput(f"{p}: cannot read corpus ({e.strerror})") from None
    return decode_corpus(data, str(p))


def decode_corpus(data: bytes, name: str = "corpus") -> str:
    if not data:
        raise BadInput(f"{name}: empty file")
    head = data[: 1 << 16]
    if b"\x00" in head:
        raise BadInput(f"{name}: looks binary (NUL bytes); expected a UTF-8 text file")
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if controls > 0.01 * len(head):
        raise BadInput(f"{name}: looks binary ({controls} control bytes in the first {len(head)}); "
                       f"expected a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(f"{name}: not UTF-8 text (invalid byte at offset {e.start}); "
                       f"convert it first, e.g. iconv -t UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise BadInput(f"{name}: contains only whitespace")
    return text


def demo_corpus() -> str:
    """Python's own reference documentation topics (PSF licence), shipped with every CPython in
    ``pydoc_data.topics``: about 80,000 words. Heading underlines are dropped."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - stripped-down Pythons
        raise BadInput("demo corpus: this Python lacks pydoc_data.topics; pass a text file") from None
    parts = [_UNDERLINE.sub("", topics[k]).strip() for k in sorted(topics)]
    return "\n\n".join(p for p in parts if p) + "\n"


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def too_short(n_tokens: int, need: int, what: str = "corpus") -> BadInput:
    return BadInput(f"{what}: {n_tokens} tokens after the validation split; one training sequence needs "
                    f"{need}. Use a longer text or a smaller --seq-len / --val-split")
