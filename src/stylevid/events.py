"""Progress events: how the library talks. It never prints.

A pipeline takes ``on_event: Sink`` and calls it with these. The CLI renders them with rich;
tests collect them in a list. ``Progress`` with ``done == 0`` opens a task, ``done == total`` ends it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union


@dataclass(frozen=True)
class Progress:
    task: str                   # "frames", "iterations", "epochs", ...
    done: int
    total: int | None = None
    loss: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Message:
    text: str
    level: str = "info"         # "info" | "warning"


Event = Union[Progress, Message]
Sink = Callable[[Event], None]


def null_sink(event: Event) -> None:
    """The default sink: drop everything."""


def warn(on_event: Sink, text: str) -> None:
    on_event(Message(text, "warning"))


def info(on_event: Sink, text: str) -> None:
    on_event(Message(text, "info"))
