"""360° benchmark: seam ratio, pole-vs-horizon style statistics, time and peak memory.

Compares the 360 stylizer (``PanoramaStylizer``: the equirect is the variable, losses on views) with
the naive flat stylization of the same equirect, on a real panorama from ../shared/media/pano when
present (a synthetic sphere otherwise):

- seam ratio (DESIGN.md): mean |col 0 − col W−1| ÷ mean |col j − col j+1|; goal ≤ 1.2;
- pole vs horizon: perspective views (90°) rendered from each output looking at the two poles and at
  four horizon directions; for each, the normalized Gram distance to the style (the style loss the
  stylizer minimizes, at the same pixel scale), and the Gram distance between pole and horizon views
  (how alike the strokes are there); the views are saved as PNGs in --out to look at;
- time per panorama at --time-size (2048×1024 by default), and the peak RSS of a few iterations at
  --memory-size (3840×1920), each in a fresh subprocess so the figures are its own.

    PYTHONPATH=src python scripts/bench_panorama.py [--size 1024] [--iterations 60] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from stylevid import sphere as S  # noqa: E402
from stylevid.config import PanoramaConfig, StyleConfig  # noqa: E402
from stylevid.images import load_image, save_image, to_tensor, to_uint8  # noqa: E402
from stylevid.losses import gram, style_loss  # noqa: E402
from stylevid.pipelines.panorama import PanoramaStylizer  # noqa: E402
from stylevid.pipelines.still import Stylizer  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"
PANO = MEDIA / "pano" / "egjs_veste_oberhaus_2000x1000.jpg"
STYLE = MEDIA / "style" / "starry_night.jpg"
PROBES = {"north pole": (0.0, 90.0), "south pole": (0.0, -90.0), "horizon 0": (0.0, 0.0),
          "horizon 90": (90.0, 0.0), "horizon 180": (180.0, 0.0), "horizon 270": (270.0, 0.0)}


def synthetic_pano(h: int = 512) -> np.ndarray:
    lon, lat = S.equirect_lonlat(h, 2 * h, dtype=torch.float64)
    d = S.lonlat_to_dirs(lon, lat)
    x, y, z = d.unbind(-1)
    img = torch.stack([0.5 + 0.4 * torch.sin(7 * x + 1) * torch.cos(5 * y), 0.5 + 0.4 * torch.sin(9 * y + 3 * z),
                       0.5 + 0.4 * torch.cos(6 * z - 4 * x)], -1)
    return (img.numpy() * 255).round().astype(np.uint8)


def probe_views(equi: np.ndarray, size: int) -> dict[str, torch.Tensor]:
    x = to_tensor(equi)
    return {k: S.sample_view(x, S.perspective_grid(yaw, pitch, 90.0, size)) for k, (yaw, pitch) in PROBES.items()}


def pole_horizon(name: str, out: np.ndarray, content: np.ndarray, judge: Stylizer, save: Path | None) -> dict:
    w = out.shape[1]
    size = S.default_face_size(w, 90.0)
    style = judge.style_loss_for(w)
    views = probe_views(out, size)
    dist, grams = {}, {}
    with torch.no_grad():
        for k, v in views.items():
            feats = judge.encoder(v, judge.style_layers)
            dist[k] = float(style(feats))
            grams[k] = {layer: gram(f) for layer, f in feats.items()}
            if save:
                save_image(to_uint8(v), save / f"{name}_{k.replace(' ', '_')}.png")
    # pole vs horizon directly: normalized Gram distance of each pole view to each horizon view
    cross = [np.mean([float(style_loss(grams[p][layer], grams[h][layer])) for layer in grams[p]])
             for p in ("north pole", "south pole") for h in grams if h.startswith("horizon")]
    pole = np.mean([dist["north pole"], dist["south pole"]])
    horizon = np.mean([v for k, v in dist.items() if k.startswith("horizon")])
    return {"gram_distance": {k: round(v, 4) for k, v in dist.items()}, "pole_mean": round(float(pole), 4),
            "horizon_mean": round(float(horizon), 4), "pole_over_horizon": round(float(pole / horizon), 3),
            "pole_to_horizon_gram": round(float(np.mean(cross)), 4), "seam_ratio": round(S.seam_ratio(out), 3)}


def child(args) -> None:
    """--child time|memory: one stylization in this process; prints a JSON line."""
    torch.set_num_threads(args.threads)
    size = args.time_size if args.child == "time" else args.memory_size
    content = load_image(args.pano) if Path(args.pano).is_file() else synthetic_pano(1024)
    style = load_image(args.style) if Path(args.style).is_file() else synthetic_pano(256)
    if args.child == "time":
        cfg = StyleConfig(size=size, scales=2, iterations=args.time_iterations, coarse_iterations=args.time_iterations,
                          device="cpu")
    else:
        cfg = StyleConfig(size=size, scales=1, iterations=args.memory_iterations, device="cpu", early_stop_patience=100)
    pano = PanoramaConfig(views=args.views)
    t0 = time.perf_counter()
    st = PanoramaStylizer(cfg, [style], pano=pano)
    t1 = time.perf_counter()
    iters = []
    st.on_event = lambda e: iters.append(time.perf_counter()) if getattr(e, "loss", None) is not None else None
    out, stats = st.stylize(content)
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB (Linux)
    last = np.diff(iters[-min(len(iters), args.time_iterations):]) if len(iters) > 2 else [float("nan")]
    print(json.dumps({"size": [out.shape[1], out.shape[0]], "seconds_setup": round(t1 - t0, 2),
                      "seconds_stylize": round(t2 - t1, 2), "seconds_per_final_iteration": round(float(np.mean(last)), 2),
                      "peak_rss_mib": round(rss), "face_sizes": stats["face_sizes"], "views": stats["views"],
                      "iterations": stats["iterations"], "seam_ratio": stats["seam_ratio"],
                      "batch_views": max(1, st.batch_pixels // stats["face_sizes"][-1] ** 2)}))


def run_child(kind: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--pano", str(args.pano), "--style", str(args.style),
           "--threads", str(args.threads), "--views", str(args.views), "--time-size", str(args.time_size),
           "--time-iterations", str(args.time_iterations), "--memory-size", str(args.memory_size),
           "--memory-iterations", str(args.memory_iterations)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        return {"error": r.stderr.strip().splitlines()[-1:] if r.stderr else r.returncode}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pano", default=str(PANO))
    ap.add_argument("--style", default=str(STYLE))
    ap.add_argument("--size", type=int, default=1024, help="equirect width for the quality comparison")
    ap.add_argument("--scales", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--coarse-iterations", type=int, default=60)
    ap.add_argument("--views", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded 2-core box)")
    ap.add_argument("--time-size", type=int, default=2048)
    ap.add_argument("--time-iterations", type=int, default=20)
    ap.add_argument("--memory-size", type=int, default=3840)
    ap.add_argument("--memory-iterations", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma list of: quality,time,memory")
    ap.add_argument("--out", type=Path, default=Path("/tmp/stylevid_bench_panorama"))
    ap.add_argument("--child", choices=["time", "memory"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    real = Path(args.pano).is_file()
    content = load_image(args.pano) if real else synthetic_pano(512)
    style = load_image(args.style) if Path(args.style).is_file() else synthetic_pano(256)
    report: dict = {"pano": str(args.pano) if real else "synthetic", "style": str(args.style),
                    "threads": args.threads, "load_average": os.getloadavg()}
    if "quality" not in skip:
        cfg = StyleConfig(size=args.size, scales=args.scales, iterations=args.iterations,
                          coarse_iterations=args.coarse_iterations, device="cpu")
        results = {}
        t = time.perf_counter()
        pano_st = PanoramaStylizer(cfg, [style], pano=PanoramaConfig(views=args.views))
        ours, stats = pano_st.stylize(content)
        results["360"] = (ours, time.perf_counter() - t, stats)
        t = time.perf_counter()
        flat_st = Stylizer(cfg, [style])
        flat, fstats = flat_st.stylize(content)
        results["flat"] = (flat, time.perf_counter() - t, fstats)
        small = to_uint8(S.resize_equirect(to_tensor(content), ours.shape[:2]))
        report["input"] = pole_horizon("input", small, small, flat_st, args.out)
        for name, (img, secs, st) in results.items():
            save_image(img, args.out / f"{name}.png")
            report[name] = {**pole_horizon(name, img, small, flat_st, args.out), "seconds": round(secs, 1),
                            "iterations": st["iterations"], "size": [img.shape[1], img.shape[0]]}
        report["360"]["face_sizes"] = stats["face_sizes"]
        report["360"]["views"] = stats["views"]
    if "time" not in skip:
        report["time"] = run_child("time", args)
    if "memory" not in skip:
        report["memory"] = run_child("memory", args)
    print(json.dumps(report, indent=2))
    (args.out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
