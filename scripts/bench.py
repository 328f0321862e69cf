"""Benchmarks behind the README's numbers. Run by hand: ``python scripts/bench.py [--only still,speed,video]``.

Uses ../shared/media (real photos, paintings, clips) when present, else samples/. Prints a markdown
report with the machine it ran on, and writes it to scripts/bench_results.md.

- speed:  seconds per iteration (forward+backward to the style taps) at 512×384 for lite0 plain,
          lite0 folded (the default), vgg19 (random weights: timing only); their ratios.
- still:  wall time of `stylevid image` with defaults at 512 px on lite0.
- video:  a real clip at 640×360: seconds per frame after frame 1, iterations per warm vs cold frame,
          warping error of the output vs the per-frame independent baseline and vs the input's own.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "media"
sys.path.insert(0, str(ROOT / "src"))

from stylevid.config import StyleConfig, VideoConfig  # noqa: E402


def media(kind: str, name: str, fallback: str) -> Path:
    p = SHARED / kind / name
    return p if p.is_file() else ROOT / "samples" / fallback


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def time_steps(model, layers, size=(384, 512), n=8) -> float:
    x = torch.rand(1, 3, *size, requires_grad=True)
    for i in range(n + 2):
        if i == 2:
            t = time.perf_counter()
        feats = model(x, layers)
        sum(f.square().mean() for f in feats.values()).backward()
    return (time.perf_counter() - t) / n


def bench_speed(out: list[str]) -> None:
    from stylevid.config import ENCODER_LAYERS
    from stylevid.encoders import load_encoder
    from stylevid.encoders.vgg import VGG

    lay = ENCODER_LAYERS["lite0"]
    lite_layers = [*lay["style"], *lay["content"]]
    plain = time_steps(load_encoder("lite0", folded=False), lite_layers)
    folded = time_steps(load_encoder("lite0"), lite_layers)
    vgg = VGG("vgg19").freeze()
    v = ENCODER_LAYERS["vgg19"]
    vgg_t = time_steps(vgg, [*v["style"], *v["content"]], n=3)
    out += ["## Encoder step (forward + backward to the style and content taps, 512×384)", "",
            "| encoder | s / iteration | vs lite0 folded |", "|---|---|---|",
            f"| lite0 plain (batch norm) | {plain:.3f} | {plain / folded:.2f}x |",
            f"| lite0 folded (default) | {folded:.3f} | 1.00x |",
            f"| vgg19 (random weights) | {vgg_t:.3f} | {vgg_t / folded:.1f}x |", ""]


def bench_still(out: list[str]) -> None:
    content = media("photo", "tubingen.jpg", "chelsea.jpg")
    style = media("style", "starry_night.jpg", "swirls.jpg")
    with tempfile.TemporaryDirectory() as d:
        o = Path(d) / "out.png"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stylevid.cli", "image", str(content), "--style", str(style),
                        "-o", str(o), "-q"], check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        wall = time.perf_counter() - t
        meta = json.loads(Path(str(o) + ".json").read_text())
    s = StyleConfig()
    out += ["## Still image, defaults (`stylevid image`, 512 px, lite0)", "",
            f"{content.name} in the style of {style.name}: **{wall:.1f} s** wall time "
            f"(optimization {meta['seconds']['optimize']:.1f} s; sizes {meta['sizes']}, iterations {meta['iterations']}; "
            f"defaults: {s.scales} scales, {s.coarse_iterations}+{s.iterations} iterations, {s.optimizer}).", ""]


def bench_video(out: list[str], frames: int) -> None:
    from stylevid.flow import flicker_series
    from stylevid.pipelines.video import stylize_video
    from stylevid.video import probe, read_frames

    clip = media("video", "chaplin_640x360_moviepy.mp4", "clip.mp4")
    style = media("style", "the_scream.jpg", "swirls.jpg")
    info = probe(clip)
    duration = frames / info.fps
    v = VideoConfig(size=640, duration=duration)
    runs = {}
    with tempfile.TemporaryDirectory() as d:
        for name, vc in (("temporal (defaults)", v),
                         ("independent per frame", VideoConfig(size=640, duration=duration, temporal_weight=0,
                                                               warm_start=False))):
            o = Path(d) / f"{len(runs)}.mp4"
            t = time.perf_counter()
            stylize_video(clip, style, o, StyleConfig(), vc)
            wall = time.perf_counter() - t
            meta = json.loads(Path(str(o) + ".json").read_text())
            outs = [f.image for f in read_frames(o)]
            ins = [f.image for f in read_frames(clip, size=640, duration=duration)]
            runs[name] = (wall, meta, float(sum(flicker_series(ins, outs)) / (len(outs) - 1)))
            print(f"{name}: {wall:.1f} s, warping error {runs[name][2]:.5f}, cold {meta['cold_iterations']}, "
                  f"warm {meta['warm_iterations']}", file=sys.stderr, flush=True)
        own = float(sum(flicker_series(ins, ins)) / (len(ins) - 1))
    t_wall, t_meta, t_err = runs["temporal (defaults)"]
    i_wall, i_meta, i_err = runs["independent per frame"]
    warm = t_meta["warm_iterations"]
    cold = t_meta["cold_iterations"]
    per_warm = (t_wall - t_wall / frames) / max(1, frames - 1)
    out += [f"## Video: {clip.name}, {frames} frames at {t_meta['size'][0]}×{t_meta['size'][1]}, style {style.name}", "",
            "| run | wall s | s / frame | warping error | vs input's own |", "|---|---|---|---|---|",
            f"| temporal (defaults) | {t_wall:.0f} | {t_meta['seconds_per_new_frame']:.1f} | {t_err:.5f} | {t_err / own:.1f}x |",
            f"| independent per frame | {i_wall:.0f} | {i_meta['seconds_per_new_frame']:.1f} | {i_err:.5f} | {i_err / own:.1f}x |",
            f"| input itself | | | {own:.5f} | 1.0x |", "",
            f"Warping error, temporal / independent: **{t_err / i_err:.2f}** (goal ≤ 0.25). "
            f"Iterations: cold frame {cold[0] if cold else '-'}, warm frames mean "
            f"{sum(warm) / max(1, len(warm)):.1f} → {((cold[0] if cold else 0) / max(1e-9, sum(warm) / max(1, len(warm)))):.1f}x fewer "
            f"(goal ≥ 3x). Seconds per frame after frame 1 ≈ {per_warm:.1f} (goal ≤ 10).", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="speed,still,video")
    ap.add_argument("--frames", type=int, default=8, help="frames of the video benchmark")
    a = ap.parse_args()
    out = [f"# stylevid benchmark — {time.strftime('%Y-%m-%d')}", "", f"Machine: {machine()}.", ""]
    which = a.only.split(",")
    if "speed" in which:
        bench_speed(out)
    if "still" in which:
        bench_still(out)
    if "video" in which:
        bench_video(out, a.frames)
    text = "\n".join(out)
    print(text)
    (ROOT / "scripts" / "bench_results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
