"""Errors users can script against: each class has its exit code (L0).

The library raises these with a one-line message naming the file and the problem; the CLI
prints the message and exits with ``code``.
"""
from __future__ import annotations


class StylevidError(Exception):
    code = 1


class BadInput(StylevidError):
    """Bad usage or bad input: an option value, an image that is not an image..."""
    code = 2


class InputNotFound(BadInput):
    code = 3


class InvalidMedia(BadInput):
    """Invalid or truncated media."""
    code = 4


class TooLarge(BadInput):
    code = 5


class OutputRefused(StylevidError):
    """The output exists, is an input, or its folder is missing or not writable."""
    code = 6


class WriteFailed(StylevidError):
    """A write error such as a full disk."""
    code = 7


class WeightsError(StylevidError):
    code = 8


class Interrupted(StylevidError):
    """Stopped by a signal at a frame boundary; finished work is kept."""

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.code = 128 + signum
