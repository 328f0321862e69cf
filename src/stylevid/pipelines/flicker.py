"""``stylevid flicker``: the warping error of a stylized video against its input (Lai et al. 2018).

Each output frame is compared with the next output frame warped back by the flow of the *input*
frames, where that flow is reliable (see ``warp.warping_errors``). Lower is steadier; the input's
own figure (``output == reference``) is the floor.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..events import Progress, Sink, info, null_sink
from ..config import VideoConfig
from ..files import atomic_write_bytes, atomic_write_text, check_input, check_output
from ..sequence import check_video_input
from ..flow import METHODS, flicker_series
from ..video import count_frames, probe, read_frames
from .video import readable


def flicker(output: str | Path, reference: str | Path, csv_path: str | Path | None = None,
            plot: str | Path | None = None, flow: str = "dis", size: int = 0, wrap_x: bool | None = None,
            start: float | None = None, duration: float | None = None, on_event: Sink = null_sink) -> dict:
    """Return {"mean": float, "errors": [per pair]} and write the CSV / PNG chart if asked.

    The reference's window (``start``, ``duration``) and ``wrap_x`` (a 360 video) default to what
    the output's sidecar (``<output>.json``, written by ``stylevid video``) records, else the whole
    reference, flat."""
    out_p, ref_p = check_input(output, "video"), check_video_input(reference, "reference video")
    if flow not in METHODS:
        raise BadInput(f"--flow {flow!r}: choose one of {', '.join(METHODS)}")
    for p in (csv_path, plot):   # refuse a bad report path before the work, and never write over an input
        if p:
            check_output(p, [out_p, ref_p], overwrite=True)
    made = _made_with(out_p)
    fps = made.get("video", {}).get("fps") or VideoConfig.fps    # an image sequence's rate
    # An animated WebP (through Pillow), an image sequence (the reference a video was painted from).
    with readable(out_p) as out_src, readable(ref_p, fps=fps) as ref_src:
        return _flicker(out_p, ref_p, out_src, ref_src, made, csv_path, plot, flow, size, wrap_x, start,
                        duration, on_event)


def _flicker(out_p: Path, ref_p: Path, out_src: Path, ref_src: Path, made: dict, csv_path, plot, flow, size,
             wrap_x, start, duration, on_event) -> dict:
    probe(out_src), probe(ref_src)   # each a readable video (InvalidMedia, TooLarge) before comparing counts
    window = made.get("video", {})
    if start is None and duration is None and (window.get("start") or window.get("duration") is not None):
        start, duration = window.get("start") or 0.0, window.get("duration")
        end = "the end" if duration is None else f"{start + duration:g} s"
        info(on_event, f"{ref_p.name}: compared from {start:g} s to {end}, the window {out_p.name} was made from "
                       f"(its sidecar; --start / --duration to choose)")
    start = start or 0.0
    wrap_x = bool(made.get("wrap_x")) if wrap_x is None else wrap_x
    n_out, n_ref = count_frames(out_src), count_frames(ref_src, start, duration)
    if n_out != n_ref:
        raise BadInput(f"{out_p}: {n_out} frames but the reference {ref_p} has {n_ref}"
                       f"{' in the window' if start or duration is not None else ''}; compare a stylized video "
                       f"with the very clip (and --start / --duration) it was made from")
    errors: list[float] = []
    prev = None
    on_event(Progress("flicker", 0, n_out))
    for a, b in zip(read_frames(out_src, size=size, on_event=on_event),
                    read_frames(ref_src, start=start, duration=duration, on_event=on_event)):
        if prev is not None:
            errors += flicker_series([prev[1], b.image], [prev[0], a.image], flow, wrap_x)
        prev = (a.image, b.image)
        on_event(Progress("flicker", a.index + 1, n_out))
    if not errors:
        raise BadInput(f"{out_p}: needs at least two frames")
    mean = float(np.mean(errors))
    if csv_path:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["pair", "warping_error"])
        w.writerows([(i, f"{e:.6g}") for i, e in enumerate(errors)])
        atomic_write_text(csv_path, buf.getvalue())
    if plot:
        atomic_write_bytes(plot, chart(errors, f"warping error, mean {mean:.5f}"))
    return {"mean": mean, "errors": errors}


def _made_with(out: Path) -> dict:
    """The sidecar ``stylevid video`` wrote beside ``out`` ({} if none or unreadable)."""
    try:
        record = json.loads(out.with_name(out.name + ".json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("video", {}), dict) else {}


def chart(values: list[float], title: str, w: int = 640, h: int = 240) -> bytes:
    """A plain PNG line chart drawn with Pillow (no plotting library needed)."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    top = max(values) * 1.1 or 1.0
    x0, y0, x1, y1 = 50, 20, w - 10, h - 25
    d.rectangle([x0, y0, x1, y1], outline=(160, 160, 160))
    pts = [(x0 + (x1 - x0) * i / max(1, len(values) - 1), y1 - (y1 - y0) * v / top) for i, v in enumerate(values)]
    d.line(pts, fill=(200, 40, 40), width=2) if len(pts) > 1 else d.point(pts, fill=(200, 40, 40))
    d.text((x0, 4), title, fill=(0, 0, 0))
    d.text((4, y0), f"{top:.3g}", fill=(0, 0, 0))
    d.text((4, y1 - 10), "0", fill=(0, 0, 0))
    d.text((x1 - 60, y1 + 6), f"frame pair {len(values) - 1}", fill=(0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()
