"""Tokenizers and the frozen vocabulary (standard library only).

Word level keeps punctuation as tokens (``"Hello, world!"`` -> ``Hello , world !``) and blank
lines as a paragraph token; :func:`detokenize` glues punctuation back so samples read like text.
Char level is every character. The vocabulary is built once from the training split, capped by
frequency, and frozen: anything else maps to ``<unk>``.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from ..errors import BadInput

LEVELS = ("word", "char")
UNK = "<unk>"
PARAGRAPH = "\n\n"

# A paragraph break, a number with decimals, a word with inner apostrophes, or one other character.
_WORD_RE = re.compile(r"\n[^\S\n]*\n\s*|\d+(?:[.,]\d+)+|\w+(?:['\u2019]\w+)*|[^\w\s]")
_WORDISH = re.compile(r"\w")

_NO_SPACE_BEFORE = set(".,;:!?)]}%\u2019\u201d")
_NO_SPACE_AFTER = set("([{$#\u2018\u201c")
_JOINERS = set("-/@\\~^")  # glued on both sides: well-known, and/or
_QUOTES = set("\"'`")


def tokenize_words(text: str) -> list[str]:
    out = []
    for m in _WORD_RE.finditer(text):
        t = m.group()
        out.append(PARAGRAPH if t[0] == "\n" else t)
    # no paragraph tokens at the very start or end, never two in a row
    cleaned: list[str] = []
    for t in out:
        if t == PARAGRAPH and (not cleaned or cleaned[-1] == PARAGRAPH):
            continue
        cleaned.append(t)
    while cleaned and cleaned[-1] == PARAGRAPH:
        cleaned.pop()
    return cleaned


def detokenize_words(tokens: Iterable[str]) -> str:
    """Join word tokens into readable text: no space before closing punctuation, none after
    opening brackets, hyphens and slashes glued, straight quotes paired open/close."""
    parts: list[str] = []
    glue_next = True            # no space before the next token
    open_quotes: set[str] = set()
    for t in tokens:
        if t == PARAGRAPH:
            parts.append(PARAGRAPH)
            glue_next = True
            open_quotes.clear()
            continue
        glue = glue_next
        glue_next = False
        if t in _QUOTES:
            if t in open_quotes:            # closing quote: attach to the left
                open_quotes.discard(t)
                glue = True
            else:                           # opening quote: attach to the right
                open_quotes.add(t)
                glue_next = True
        elif t in _NO_SPACE_BEFORE:
            glue = True
        elif t in _NO_SPACE_AFTER:
            glue_next = True
        elif t in _JOINERS:
            glue = True
            glue_next = True
        if not glue:
            parts.append(" ")
        parts.append(t)
    return "".join(parts)


class Tokenizer:
    """``level`` is ``"word"`` or ``"char"``."""

    def __init__(self, level: str = "word"):
        if level not in LEVELS:
            raise BadInput(f"--level {level!r}: expected word or char")
        self.level = level

    def tokenize(self, text: str) -> list[str]:
        return tokenize_words(text) if self.level == "word" else list(text)

    def detokenize(self, tokens: Iterable[str]) -> str:
        if self.level == "word":
            return detokenize_words(tokens)
        return "".join("\ufffd" if t == UNK else t for t in tokens)

    def is_word(self, token: str) -> bool:
        """Does this token count as a word (for ``--words N``)? Char level: handled by the caller."""
        return token == UNK or bool(_WORDISH.match(token))


class Vocab:
    """A frozen token <-> id map. Id 0 is ``<unk>``; the rest by falling frequency, then by token."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if not tokens or tokens[0] != UNK:
            raise BadInput("vocabulary: the first token must be <unk>")
        if len(set(tokens)) != len(tokens):
            raise BadInput("vocabulary: duplicate tokens")
        self._itos: tuple[str, ...] = tuple(tokens)
        self._stoi: dict[str, int] = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, tokens: Iterable[str], max_size: int) -> "Vocab":
        """The ``max_size - 1`` most frequent tokens plus ``<unk>``."""
        if max_size < 2:
            raise BadInput(f"--vocab-size {max_size}: must be at least 2")
        counts = Counter(tokens)
        counts.pop(UNK, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([UNK] + [t for t, _ in ranked[: max_size - 1]])

    unk_id = 0

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: str) -> bool:
        return token in self._stoi

    def id(self, token: str) -> int:
        return self._stoi.get(token, 0)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self._stoi.get
        return [get(t, 0) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self._itos[int(i)] for i in ids]

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """Tokens outside the vocabulary, each once, in order of appearance."""
        seen: dict[str, None] = {}
        for t in tokens:
            if t not in self._stoi:
                seen.setdefault(t, None)
        return list(seen)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._itos

    def to_list(self) -> list[str]:
        return list(self._itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos

    def __hash__(self) -> int:
        return hash(self._itos)
