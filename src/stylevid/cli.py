"""The ``stylevid`` command (L4): typer + rich, thin. Nothing imports this module.

Results (output paths) go to stdout; progress and messages go to stderr through rich, or as plain
log lines when stderr is not a terminal. Library errors carry their exit code (errors.py).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import config as C
from .errors import BadInput, StylevidError
from .events import Event, Message, Progress

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Paint videos, 360° panoramas and photos in the style of an artwork.")
err = Console(stderr=True)
S = C.StyleConfig()


class Renderer:
    """Turns library events into rich progress bars (a terminal) or log lines (a pipe or file)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.live = err.is_terminal and not quiet
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                       console=err, transient=True) if self.live else None
        self.tasks: dict[str, int] = {}
        self.last_log = 0.0

    def __enter__(self):
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()

    def __call__(self, e: Event) -> None:
        if isinstance(e, Message):
            if e.level == "warning":
                err.print(f"[yellow]warning:[/] {e.text}", highlight=False)
            elif not self.quiet:
                err.print(e.text, highlight=False)
            return
        if self.quiet or not isinstance(e, Progress):
            return
        loss = f"loss {e.loss:.4g}" if e.loss is not None else ""
        if self.bar:
            tid = self.tasks.get(e.task)
            if tid is None or e.done == 0:
                if tid is not None:
                    self.bar.remove_task(tid)
                tid = self.tasks[e.task] = self.bar.add_task(e.task, total=e.total, loss=loss)
            self.bar.update(tid, completed=e.done, total=e.total, loss=loss)
            if e.detail:
                self.bar.update(tid, description=f"{e.task} ({e.detail})")
            return
        # Plain lines: each task's start and end, and at most one line every 10 s in between.
        now = time.monotonic()
        if e.done == 0 or e.done == e.total or e.detail or now - self.last_log > 10:
            self.last_log = now
            total = f"/{e.total}" if e.total else ""
            err.print(f"{e.task}: {e.done}{total} {loss} {e.detail}".rstrip(), highlight=False)


def run(fn, quiet: bool = False):
    """Call ``fn(sink)`` and print the resulting path(s); map errors to exit codes."""
    try:
        with Renderer(quiet) as r:
            result = fn(r)
    except StylevidError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.code)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        raise typer.Exit(130)
    for p in result if isinstance(result, (list, tuple)) else [result]:
        if p is not None:
            print(p)
    return result


def floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise BadInput(f"{what} {text!r}: expected comma-separated numbers") from None


def named_weights(items: list[str], what: str) -> dict[str, float]:
    """``NAME:WEIGHT`` pairs (``--layer-weight block0:2``)."""
    out = {}
    for it in items:
        name, _, w = it.partition(":")
        try:
            out[name] = float(w) if w else 1.0
        except ValueError:
            raise BadInput(f"{what} {it!r}: expected NAME:WEIGHT") from None
    return out


def layers_opt(text: str | None) -> tuple[str, ...] | None:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else None


@app.command()
def image(
    content: Path = typer.Argument(..., help="Photo to paint."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Painting (repeat for several styles)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output image [default: <content>_<style>.png]."),
    style_blend: Optional[str] = typer.Option(None, help="Weights of several styles, e.g. 0.7,0.3."),
    size: int = typer.Option(S.size, help="Long edge of the output in pixels."),
    scales: int = typer.Option(S.scales, help="Coarse-to-fine levels (each half the next)."),
    iterations: int = typer.Option(S.iterations, help="Iterations at the final size."),
    coarse_iterations: int = typer.Option(S.coarse_iterations, help="Iterations at each coarser size."),
    optimizer: str = typer.Option(S.optimizer, help="lbfgs or adam."),
    lr: float = typer.Option(S.lr, help="Adam step size."),
    content_weight: float = typer.Option(S.content_weight),
    style_weight: float = typer.Option(S.style_weight),
    tv_weight: float = typer.Option(S.tv_weight, help="Total variation (smoothness) weight."),
    style_layers: Optional[str] = typer.Option(None, help="Comma-separated style layers [default: the encoder's]."),
    content_layers: Optional[str] = typer.Option(None, help="Comma-separated content layers."),
    layer_weight: List[str] = typer.Option([], help="Per style layer weight NAME:W (repeatable)."),
    init: str = typer.Option(S.init, help="content, noise or style."),
    style_scale: float = typer.Option(S.style_scale, help="Style image size relative to the output."),
    preserve_colors: bool = typer.Option(S.preserve_colors, help="Keep the content's colours."),
    save_every: int = typer.Option(S.save_every, help="Write an intermediate image every N iterations."),
    seed: int = typer.Option(S.seed),
    encoder: str = typer.Option(S.encoder, help="lite0, vgg16 or vgg19."),
    weights: Optional[Path] = typer.Option(None, help="Weights file for the encoder."),
    offline: bool = typer.Option(S.offline, help="Never download weights."),
    device: str = typer.Option(S.device, help="auto, cpu, cuda or mps."),
    overwrite: bool = typer.Option(False, help="Replace an existing output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress, only errors and the output path."),
):
    """Paint a photo in the style of one or more paintings."""
    from .pipelines.still import stylize_image

    def job(sink):
        cfg = C.StyleConfig(
            encoder=encoder, weights=str(weights) if weights else None, offline=offline, device=device, size=size,
            scales=scales, iterations=iterations, coarse_iterations=coarse_iterations, optimizer=optimizer, lr=lr,
            content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
            style_layers=layers_opt(style_layers), content_layers=layers_opt(content_layers),
            layer_weights=named_weights(layer_weight, "--layer-weight"), init=init, style_scale=style_scale,
            style_blend=floats(style_blend, "--style-blend"), preserve_colors=preserve_colors, seed=seed,
            save_every=save_every)
        return stylize_image(content, style, output, cfg, overwrite=overwrite, on_event=sink)

    run(job, quiet)


@app.command()
def layers(encoder: str = typer.Option(S.encoder, help="lite0, vgg16 or vgg19.")):
    """List an encoder's layer names, channels and strides, and its default taps."""
    from .encoders import layer_table

    def job(sink):
        d = C.ENCODER_LAYERS.get(encoder, {})
        rows = layer_table(encoder)
        print(f"{'layer':<10} {'channels':>8} {'stride':>6}  group    default use")
        for r in rows:
            use = ",".join(k for k in ("style", "content", "dream") if r.name in d.get(k, ()))
            print(f"{r.name:<10} {r.channels:>8} {r.stride:>6}  {r.group:<8} {use}")
        return None

    run(job)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
