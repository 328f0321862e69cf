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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import config as C
from .errors import BadInput, StylevidError
from .events import Event, Message, Progress

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Paint videos, 360° panoramas and photos in the style of an artwork.")
# Rich's help panels put seven columns side by side; under 100 columns (a pipe's 80 included) they
# cut option names short ("--first-iterati…"), so there the help is click's plain layout.
HELP_PANELS_FROM = 100
err = Console(stderr=True)
S = C.StyleConfig()
V = C.VideoConfig()


class Renderer:
    """Turns library events into rich progress bars (a terminal) or log lines (a pipe or file)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.live = err.is_terminal and not quiet
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                       console=err, transient=True) if self.live else None
        self.tasks: dict[str, int] = {}
        self.last_log: dict[str, float] = {}   # per task: frames must not be starved by iterations
        self.since: dict[str, tuple[float, int]] = {}   # per task: when this run first saw it, and its count then
        self.warned: set[str] = set()   # a truncated input is noticed by each pass over it: say it once

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
                if e.text in self.warned:
                    return
                self.warned.add(e.text)
                err.print(f"[yellow]warning:[/] {escape(e.text)}", highlight=False, soft_wrap=True)
            elif not self.quiet:
                err.print(escape(e.text), highlight=False, soft_wrap=True)
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
        # Plain lines: each task's start and end, and at most one line every 10 s in between, with
        # the time it has taken in this run and, from its pace here (a resumed job counts from
        # where it picked up), the time left.
        now = time.monotonic()
        if e.task not in self.since or e.done == 0 or e.done < self.since[e.task][1]:
            self.since[e.task] = (now, e.done)
        if e.done == 0 or e.done == e.total or e.detail or now - self.last_log.get(e.task, 0.0) > 10:
            self.last_log[e.task] = now
            total = f"/{e.total}" if e.total else ""
            err.print(escape(f"{e.task}: {e.done}{total} {loss} {e.detail}".rstrip() + self.pace(e, now)),
                      highlight=False, soft_wrap=True)

    def pace(self, e: Progress, now: float) -> str:
        t0, done0 = self.since[e.task]
        took = now - t0
        if e.done <= done0 or took < 1:
            return ""
        if not e.total or e.done >= e.total:
            return f" ({clock(took)})"
        return f" ({clock(took)}, about {clock(took / (e.done - done0) * (e.total - e.done))} left)"


def clock(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: a duration as a log line shows it."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def run(fn, quiet: bool = False):
    """Call ``fn(sink)`` and print the resulting path(s); map errors to exit codes."""
    from .runtime import keep_freed_memory

    keep_freed_memory()   # freed activations are reused by the next iteration, not faulted in again
    try:
        with Renderer(quiet) as r:
            result = fn(r)
    except (StylevidError, KeyboardInterrupt) as e:
        for p in getattr(e, "finished", ()):   # a batch that stopped part way: what it finished
            print(p)
        if isinstance(e, KeyboardInterrupt):
            signum = getattr(e, "signum", 2)
            err.print(f"[red]error:[/] interrupted by {_SIGNALS.get(signum, 'a signal')}", highlight=False)
            raise typer.Exit(128 + signum)
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.code)
    for p in result if isinstance(result, (list, tuple)) else [result]:
        if p is not None:
            print(p)
    return result


_SIGNALS = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}


def batch(sink, plan: list[tuple[Path, Path]], skipped: list[Path], paint) -> list[Path]:
    """``paint(input, output)`` for each pair of ``plan`` (from ``plan_outputs``); the result is every
    output of the batch, those skipped because they existed first. If one fails or is stopped, the
    outputs finished before it are printed (``run``) before the error."""
    from .events import info

    for out in skipped:
        info(sink, f"{out}: exists; skipped (--skip-existing)")
    done: list[Path] = list(skipped)
    try:
        for inp, out in plan:
            done.append(paint(inp, out))
    except (StylevidError, KeyboardInterrupt) as e:
        e.finished = done   # run() prints them: what was painted before the stop is not lost
        raise
    return done


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


# Options shared by image, video and (partly) dream: declared once, reused as defaults.
O_STYLE = typer.Option(..., "--style", "-s", help="Painting (repeat for several styles).")
O_BLEND = typer.Option(None, help="Weights of several styles, e.g. 0.7,0.3.")
O_SCALES = typer.Option(S.scales, help="Coarse-to-fine levels (each half the next).")
O_COARSE = typer.Option(S.coarse_iterations, help="Iterations at each coarser size.")
O_OPTIMIZER = typer.Option(S.optimizer, help="lbfgs or adam.")
O_LR = typer.Option(S.lr, help="Adam step size.")
O_CW = typer.Option(S.content_weight, help="Content loss weight.")
O_SW = typer.Option(S.style_weight, help="Style loss weight.")
O_TV = typer.Option(S.tv_weight, help="Total variation (smoothness) weight.")
O_SLAYERS = typer.Option(None, help="Comma-separated style layers (default: the encoder's).")
O_CLAYERS = typer.Option(None, help="Comma-separated content layers (default: the encoder's).")
O_LW = typer.Option([], help="Per style layer weight NAME:W (repeatable).")
O_INIT = typer.Option(S.init, help="content, noise or style.")
O_TILE_ABOVE = typer.Option(S.tile_above, help="Flat pictures (frames) over TILE_ABOVE² pixels go through the encoder in tiles (0: never).")
O_VIEW_TILE_ABOVE = typer.Option(S.view_tile_above, help="360: views over VIEW_TILE_ABOVE² pixels go through the encoder in tiles (0: never).")
O_TILE = typer.Option(S.tile, help="Tile size in pixels, halo included.")
O_HALO = typer.Option(S.tile_halo, help="Context around each tile, px (a multiple of 32).")
O_PRECISION = typer.Option(S.precision, help="Encoder arithmetic: fp32, or bf16/fp16 mixed precision (for GPUs; fp16 needs CUDA).")
O_LBFGS_MEM = typer.Option(S.lbfgs_memory_mb, "--lbfgs-memory", help="MB the L-BFGS history may take (past it, steps are kept in bfloat16, then fewer are kept; never fewer than 3).")
O_SSCALE = typer.Option(S.style_scale, help="Style image size relative to the output.")
O_COLORS = typer.Option(S.preserve_colors, help="Keep the content's colours (luminance-only transfer).")
O_SEED = typer.Option(S.seed, help="Random seed (noise init, per-frame seeds).")
O_ENCODER = typer.Option(S.encoder, help="lite0, vgg16 or vgg19.")
O_WEIGHTS = typer.Option(None, help="Weights file for the encoder.")
O_OFFLINE = typer.Option(S.offline, help="Never download weights.")
O_DEVICE = typer.Option(S.device, help="auto, cpu, cuda or mps.")
O_OVERWRITE = typer.Option(False, help="Replace an existing output.")
O_SKIP = typer.Option(False, help="Several inputs: leave those whose output exists (a batch run again after a stop goes on where it stopped).")
O_QUIET = typer.Option(False, "--quiet", "-q", help="No progress, only errors and the output path.")
O_STEREO = typer.Option(C.PanoramaConfig().stereo, help="Both eyes in one frame (360 or flat 3D), painted eye by eye so "
                        "that they match: auto (a video's metadata, else the frame's halves matching as two eyes), "
                        "none, top-bottom or left-right.")


def style_config(**kw) -> C.StyleConfig:
    """A StyleConfig from CLI values (parsing the few that are text)."""
    kw["weights"] = str(kw["weights"]) if kw.get("weights") else None
    kw["style_layers"] = layers_opt(kw.get("style_layers"))
    kw["content_layers"] = layers_opt(kw.get("content_layers"))
    kw["layer_weights"] = named_weights(kw.pop("layer_weight", []), "--layer-weight")
    kw["style_blend"] = floats(kw.get("style_blend"), "--style-blend")
    return C.StyleConfig(**kw)


@app.command()
def image(
    content: List[Path] = typer.Argument(..., help="Photo(s) or folder(s) of photos to paint; with several, -o is a folder."),
    style: List[Path] = O_STYLE,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output image, or an existing folder (several photos) (default: <content>_<style>.png)."),
    style_blend: Optional[str] = O_BLEND,
    size: int = typer.Option(S.size, help="Long edge of the output in pixels."),
    scales: int = O_SCALES,
    iterations: int = typer.Option(S.iterations, help="Iterations at the final size."),
    coarse_iterations: int = O_COARSE,
    optimizer: str = O_OPTIMIZER,
    lr: float = O_LR,
    content_weight: float = O_CW,
    style_weight: float = O_SW,
    tv_weight: float = O_TV,
    style_layers: Optional[str] = O_SLAYERS,
    content_layers: Optional[str] = O_CLAYERS,
    layer_weight: List[str] = O_LW,
    init: str = O_INIT,
    tile_above: int = O_TILE_ABOVE,
    view_tile_above: int = O_VIEW_TILE_ABOVE,
    tile: int = O_TILE,
    tile_halo: int = O_HALO,
    lbfgs_memory_mb: int = O_LBFGS_MEM,
    precision: str = O_PRECISION,
    style_scale: float = O_SSCALE,
    preserve_colors: bool = O_COLORS,
    save_every: int = typer.Option(S.save_every, help="Write an intermediate image every N iterations."),
    projection: str = typer.Option(C.PanoramaConfig().projection,
                                   help="auto (XMP GPano or a 2:1 frame → 360), equirect (seamless 360) or flat."),
    export_cubemap: Optional[Path] = typer.Option(None, help="360: also write the six cube faces into this folder."),
    views: int = typer.Option(C.PanoramaConfig().views, help="360: views per step, 6 (cube faces), 10, 14 or 18."),
    face_size: int = typer.Option(C.PanoramaConfig().face_size, help="360: view size in pixels (0: automatic)."),
    stereo: str = O_STEREO,
    seed: int = O_SEED,
    encoder: str = O_ENCODER,
    weights: Optional[Path] = O_WEIGHTS,
    offline: bool = O_OFFLINE,
    device: str = O_DEVICE,
    overwrite: bool = O_OVERWRITE,
    skip_existing: bool = O_SKIP,
    quiet: bool = O_QUIET,
):
    """Paint photos in the style of one or more paintings."""
    kw = dict(locals())
    from .pipelines.panorama import stylize_panorama

    for k in ("content", "style", "output", "overwrite", "skip_existing", "quiet", "projection", "export_cubemap",
              "views", "face_size", "stereo"):
        kw.pop(k)

    def job(sink):
        from .files import check_input
        from .pipelines.still import plan_outputs

        # Every photo, style and output is checked before the first is painted.
        cfg = style_config(**kw)
        plan, skipped = plan_outputs(content, [check_input(s, "style image") for s in style], output, overwrite,
                                     skip_existing)
        if export_cubemap is not None and len(content) > 1:
            raise BadInput("--export-cubemap takes one photo")
        # stylize_panorama detects the projection (says which ran) and runs the flat path for flat pictures
        pano = C.PanoramaConfig(projection=projection, views=views, face_size=face_size, stereo=stereo)
        return batch(sink, plan, skipped, lambda photo, out: stylize_panorama(
            photo, style, out, cfg, pano, overwrite=overwrite, on_event=sink, export_cubemap_dir=export_cubemap))

    run(job, quiet)


@app.command()
def video(
    input: List[Path] = typer.Argument(..., help="Video(s) to paint (or an animation, or an image sequence: a folder of numbered pictures or frame_%04d.png); with several, -o is a folder."),
    style: List[Path] = O_STYLE,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output video (.mp4, .mov, .mkv; .webm: VP9 and Opus, for the web; .gif or .webp: a looping picture, no sound; DIR/frame_%04d.png: numbered pictures), or an existing folder (several videos) (default: <video>_<style>.mp4; .gif for a GIF, .webm for a WebM; .mov with --codec prores)."),
    style_blend: Optional[str] = O_BLEND,
    size: int = typer.Option(V.size, help="Working long edge in pixels, the short side rounded to an even number (0: native)."),
    start: float = typer.Option(V.start, help="Start at this many seconds."),
    duration: Optional[float] = typer.Option(V.duration, help="Stylize this many seconds (default: to the end)."),
    first_iterations: int = typer.Option(V.first_iterations, help="Iterations for the first frame of each shot."),
    iterations: int = typer.Option(V.iterations, help="Iterations per later (warm) frame."),
    reveal_iterations: int = typer.Option(V.reveal_iterations, help="Half-size iterations that paint regions the flow cannot follow (revealed by a pan) before a warm frame (0: off)."),
    edge_band: float = typer.Option(V.edge_band, help="Paint within this many px of a frame's edge (its padding line) is not carried inward by a camera move (0: off)."),
    temporal_weight: float = typer.Option(V.temporal_weight, help="Weight of the temporal loss (0: none)."),
    stereo_weight: float = typer.Option(V.stereo_weight, help="Stereo: weight holding the right eye to the painted left eye."),
    warm_start: bool = typer.Option(V.warm_start, help="Start each frame from the previous one warped by flow."),
    long_term: str = typer.Option(",".join(map(str, V.long_term)), help="Earlier frames compared against, e.g. 1,2,4."),
    flow: str = typer.Option(V.flow, help="dis, farneback or raft."),
    cut_threshold: float = typer.Option(V.cut_threshold, help="Reliable fraction under which a frame starts a new shot."),
    crf: int = typer.Option(V.crf, help="Quality, 0-51, lower is better and keeps more brush texture (14 for detail, about 1.7x the bytes; H.264's scale; VP9 gets the same look on its own 0-63 scale)."),
    codec: str = typer.Option(V.codec, help="h264 (plays everywhere), prores (ProRes 422 HQ, 10-bit, in .mov or .mkv: for editing) or vp9 (.webm, .mkv or .mp4; a .webm is always VP9)."),
    preview: bool = typer.Option(V.preview, help="Also write a contact sheet PNG."),
    fps: float = typer.Option(V.fps, help="Frame rate of an image-sequence input."),
    audio: Optional[Path] = typer.Option(V.audio, help="Sound file (or a video's sound) that replaces the input's audio, from --start on, cut where the frames end: an image sequence's soundtrack."),
    style_morph: bool = typer.Option(V.style_morph, help="With several styles: go from the first (first frame) to the last (last frame), through the others in turn."),
    projection: str = typer.Option(C.PanoramaConfig().projection,
                                   help="auto (spherical metadata or a 2:1 frame → 360), equirect or flat."),
    stereo: str = O_STEREO,
    restart: bool = typer.Option(False, help="Discard finished frames of an earlier run and start over."),
    keep_work: bool = typer.Option(False, help="Keep the work folder (finished frames, flows) after success."),
    scales: int = O_SCALES,
    coarse_iterations: int = O_COARSE,
    optimizer: str = O_OPTIMIZER,
    lr: float = O_LR,
    content_weight: float = O_CW,
    style_weight: float = O_SW,
    tv_weight: float = O_TV,
    style_layers: Optional[str] = O_SLAYERS,
    content_layers: Optional[str] = O_CLAYERS,
    layer_weight: List[str] = O_LW,
    init: str = O_INIT,
    tile_above: int = O_TILE_ABOVE,
    view_tile_above: int = O_VIEW_TILE_ABOVE,
    tile: int = O_TILE,
    tile_halo: int = O_HALO,
    lbfgs_memory_mb: int = O_LBFGS_MEM,
    precision: str = O_PRECISION,
    style_scale: float = O_SSCALE,
    preserve_colors: bool = O_COLORS,
    seed: int = O_SEED,
    encoder: str = O_ENCODER,
    weights: Optional[Path] = O_WEIGHTS,
    offline: bool = O_OFFLINE,
    device: str = O_DEVICE,
    overwrite: bool = O_OVERWRITE,
    skip_existing: bool = O_SKIP,
    quiet: bool = O_QUIET,
):
    """Paint a video: flow-guided, flicker-free, sound and timing kept, resumable."""
    kw = dict(locals())
    from .pipelines.video import stylize_video

    vkw = {k: kw.pop(k) for k in ("size", "start", "duration", "first_iterations", "iterations", "reveal_iterations", "edge_band", "temporal_weight", "stereo_weight",
                                  "warm_start", "long_term", "flow", "cut_threshold", "crf", "codec", "preview", "fps",
                                  "audio", "style_morph")}
    for k in ("input", "style", "output", "overwrite", "skip_existing", "quiet", "restart", "keep_work", "projection",
              "stereo"):
        kw.pop(k)

    def job(sink):
        from .files import check_input
        from .pipelines.still import plan_outputs
        from .pipelines.video import default_video_output
        from .sequence import check_video_input

        vkw["long_term"] = tuple(int(v) for v in floats(vkw["long_term"], "--long-term") or (1,))
        vkw["audio"] = str(vkw["audio"]) if vkw["audio"] else None
        vcfg, cfg = C.VideoConfig(**vkw), style_config(**kw)
        # Every video, style and output is checked before the first is painted.
        plan, skipped = plan_outputs(input, [check_input(s, "style image") for s in style], output, overwrite,
                                     skip_existing, "video", lambda v, s: default_video_output(v, s, vcfg.codec),
                                     check_video_input)
        return batch(sink, plan, skipped, lambda video, out: stylize_video(
            video, style, out, cfg, vcfg, overwrite=overwrite, restart=restart, keep_work=keep_work, on_event=sink,
            projection=projection, stereo=stereo))

    run(job, quiet)


D = C.DreamConfig()


@app.command()
def dream(
    input: Path = typer.Argument(..., help="Photo, video (an animation or an image sequence too), or equirectangular 360 photo to dream on."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output image or video (.webm, .gif or .webp too, for a video or a zoom; DIR/frame_%04d.png: numbered pictures) (default: <input>_dream.png, .mp4 for a video or a zoom, .gif for a GIF)."),
    layer: List[str] = typer.Option([], help="Layer to amplify, NAME[:WEIGHT] (repeatable) (default: the encoder's dream layers)."),
    channel: List[str] = typer.Option([], help="Single channel to amplify, NAME:INDEX[:WEIGHT] (repeatable)."),
    guide: Optional[Path] = typer.Option(None, help="Dream toward this picture's features."),
    mask: Optional[Path] = typer.Option(None, help="Grayscale mask: black = untouched, white = full dream."),
    octaves: int = typer.Option(D.octaves, help="Number of octaves (scales)."),
    octave_scale: float = typer.Option(D.octave_scale, help="Size ratio between octaves."),
    steps: int = typer.Option(D.steps, help="Gradient steps per octave."),
    step_size: float = typer.Option(D.step_size, help="Step in [0,1] pixel units (normalized gradient)."),
    jitter: int = typer.Option(D.jitter, help="Random shift in pixels before each step."),
    size: int = typer.Option(D.size, help="Long edge of the output in pixels (0: native)."),
    projection: str = typer.Option(C.PanoramaConfig().projection, help="auto, equirect (seamless 360) or flat."),
    stereo: str = O_STEREO,
    start: float = typer.Option(V.start, help="Video: start at this many seconds."),
    duration: Optional[float] = typer.Option(V.duration, help="Video: dream this many seconds (default: to the end)."),
    flow: str = typer.Option(V.flow, help="Video: optical flow, dis, farneback or raft."),
    crf: int = typer.Option(V.crf, help="Video or zoom: quality, 0-51, lower is better (H.264's scale; VP9 gets the same look on its own scale)."),
    codec: str = typer.Option(V.codec, help="Video or zoom: h264, prores (ProRes 422 HQ in .mov or .mkv) or vp9 (.webm)."),
    restart: bool = typer.Option(False, help="Video or zoom: discard finished frames of an earlier run."),
    keep_work: bool = typer.Option(False, help="Video or zoom: keep the work folder after success."),
    zoom_frames: int = typer.Option(D.zoom_frames, help="Photo: make a zoom video of this many frames, each the last one magnified and dreamed again (0: a photo)."),
    zoom: float = typer.Option(D.zoom, help="Zoom: magnification per frame (above 1 moves in)."),
    zoom_rotate: float = typer.Option(D.zoom_rotate, help="Zoom: degrees turned per frame, counter-clockwise."),
    zoom_steps: int = typer.Option(D.zoom_steps, help="Zoom: steps per octave on every frame after the first."),
    fps: int = typer.Option(D.zoom_fps, help="Zoom: frames per second of the video; an image-sequence input: its frame rate."),
    audio: Optional[Path] = typer.Option(V.audio, help="Video or zoom: sound file laid under the frames in place of the input's audio (cut to the window)."),
    save_every: int = typer.Option(D.save_every, help="Write an intermediate image every N steps."),
    seed: int = typer.Option(D.seed, help="Random seed (jitter)."),
    encoder: str = typer.Option(D.encoder, help="lite0, vgg16 or vgg19."),
    weights: Optional[Path] = O_WEIGHTS,
    offline: bool = typer.Option(D.offline, help="Never download weights."),
    device: str = typer.Option(D.device, help="auto, cpu, cuda or mps."),
    overwrite: bool = O_OVERWRITE,
    quiet: bool = O_QUIET,
):
    """Deep dream: make the chosen filters fire harder, octave by octave (photos, videos, infinite zooms)."""
    from .pipelines.dream import dream as run_dream, parse_channel, parse_layer

    def job(sink):
        cfg = C.DreamConfig(
            encoder=encoder, weights=str(weights) if weights else None, offline=offline, device=device,
            layers=tuple(parse_layer(t) for t in layer), channels=tuple(parse_channel(t) for t in channel),
            octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size, jitter=jitter,
            size=size, seed=seed, save_every=save_every, zoom_frames=zoom_frames, zoom=zoom,
            zoom_rotate=zoom_rotate, zoom_steps=zoom_steps, zoom_fps=fps)
        vcfg = C.VideoConfig(size=size, start=start, duration=duration, crf=crf, codec=codec, flow=flow, fps=fps,
                             audio=str(audio) if audio else None)
        return run_dream(input, output, cfg, vcfg, guide=guide, mask=mask, overwrite=overwrite, restart=restart,
                         keep_work=keep_work, on_event=sink, projection=projection, stereo=stereo)

    run(job, quiet)


@app.command("flicker")
def flicker_cmd(
    output: Path = typer.Argument(..., help="Stylized video."),
    reference: Path = typer.Option(..., "--reference", "-r", help="The input video it was made from."),
    csv: Optional[Path] = typer.Option(None, help="Write the per-frame errors to this CSV."),
    plot: Optional[Path] = typer.Option(None, help="Write a PNG chart of the per-frame errors."),
    flow: str = typer.Option(V.flow, help="dis or farneback."),
    start: Optional[float] = typer.Option(None, help="The reference's window start in seconds (default: the output's sidecar says, else 0)."),
    duration: Optional[float] = typer.Option(None, help="The reference's window length (default: the output's sidecar says, else to the end)."),
    quiet: bool = O_QUIET,
):
    """Print the mean warping error (flicker) of a stylized video against its input."""
    from .pipelines.flicker import flicker

    def job(sink):
        r = flicker(output, reference, csv, plot, flow, start=start, duration=duration, on_event=sink)
        return [f"{r['mean']:.6f}", *(p for p in (csv, plot) if p)]

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


def _mount_text() -> None:
    from .cli_text import app as text_app

    app.add_typer(text_app, name="text", help="Train a word-level LSTM on any text and generate from it; GPT-2 fine-tuning.")


_mount_text()


def help_mode() -> str | None:
    """``"rich"`` (panels) on a terminal of at least HELP_PANELS_FROM columns, else None (plain)."""
    import shutil

    wide = sys.stdout.isatty() and shutil.get_terminal_size().columns >= HELP_PANELS_FROM
    return "rich" if wide else None


def main() -> None:
    from .cli_text import app as text_app

    app.rich_markup_mode = text_app.rich_markup_mode = help_mode()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
