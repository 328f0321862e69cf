"""Make the small inputs in samples/ (run once; the results are committed).

Photos come from scikit-image's bundled data, whose licence marks them free to use:
``chelsea`` (the cat, CC0, Stefan van der Walt), ``coffee`` (CC0, Rachel Michetti) and
``astronaut`` (public domain, NASA). The paintings are procedural (this script draws them), and so
are the clip and the panorama. Needs ``pip install scikit-image`` (not a stylevid dependency).

    python scripts/make_samples.py [--out samples]
"""
from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def skimage_photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)())


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    small = rng.standard_normal((h // scale + 2, w // scale + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def swirls(w: int = 512, h: int = 384, seed: int = 1) -> Image.Image:
    """Short curved strokes along a curl-noise field in a night-sky palette (van Gogh-like)."""
    rng = np.random.default_rng(seed)
    psi = smooth_noise(rng, h, w, 48) * 3 + smooth_noise(rng, h, w, 16)
    vy, vx = np.gradient(psi)
    vx, vy = vy, -vx  # curl: strokes circle around the noise's hills
    img = Image.new("RGB", (w, h), (20, 40, 90))
    draw = ImageDraw.Draw(img)
    palette = [(24, 52, 120), (40, 80, 160), (70, 120, 200), (230, 200, 60), (250, 230, 120),
               (20, 30, 70), (110, 160, 210), (200, 150, 40)]
    for _ in range(9000):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        c = palette[rng.integers(len(palette))] if rng.random() < 0.9 else (240, 240, 200)
        pts = [(x, y)]
        for _ in range(12):
            i, j = int(min(h - 1, max(0, y))), int(min(w - 1, max(0, x)))
            n = math.hypot(vx[i, j], vy[i, j]) + 1e-6
            x, y = x + 2.5 * vx[i, j] / n, y + 2.5 * vy[i, j] / n
            pts.append((x, y))
        draw.line(pts, fill=c, width=int(rng.integers(2, 5)))
    return img.filter(ImageFilter.SMOOTH)


def mosaic(w: int = 512, h: int = 384, seed: int = 2) -> Image.Image:
    """Bold circles, bars and lines on a warm ground (Kandinsky-like)."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), (235, 222, 190))
    draw = ImageDraw.Draw(img)
    colors = [(200, 30, 40), (30, 60, 160), (250, 190, 20), (20, 20, 20), (40, 140, 80), (230, 100, 30)]
    for _ in range(70):
        c = colors[rng.integers(len(colors))]
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(6, 60)
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x - r, y - r, x + r, y + r], outline=c, width=int(rng.integers(2, 8)))
        elif kind == 1:
            draw.ellipse([x - r / 2, y - r / 2, x + r / 2, y + r / 2], fill=c)
        else:
            a = rng.uniform(0, math.pi)
            draw.line([x - r * 2 * math.cos(a), y - r * 2 * math.sin(a), x + r * 2 * math.cos(a),
                       y + r * 2 * math.sin(a)], fill=c, width=int(rng.integers(2, 10)))
    return img


def clip(path: Path, photo: Image.Image, w: int = 320, h: int = 240, frames: int = 72, fps: int = 24) -> None:
    """A slow pan over the photo with a ball rolling across, and a three-note melody (AAC)."""
    src = photo.resize((int(photo.width * 1.3 * h / photo.height), int(h * 1.3)), Image.BICUBIC)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=fps, options={"crf": "20"})
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    rate = 44100
    aus = out.add_stream("aac", rate=rate, layout="mono")
    for i in range(frames):
        t = i / (frames - 1)
        ox, oy = int(t * (src.width - w)), int((src.height - h) * (0.5 + 0.4 * math.sin(t * math.pi)))
        im = src.crop((ox, oy, ox + w, oy + h))
        d = ImageDraw.Draw(im)
        bx, by = 20 + t * (w - 40), h * 0.75 - 40 * abs(math.sin(t * 3 * math.pi))
        d.ellipse([bx - 14, by - 14, bx + 14, by + 14], fill=(220, 40, 40), outline=(255, 255, 255), width=2)
        for p in vs.encode(av.VideoFrame.from_image(im)):
            out.mux(p)
    # Audio: the same duration as the video, 1024-sample AAC frames.
    total = int(rate * frames / fps)
    tt = np.arange(total) / rate
    notes = np.where(tt < total / rate / 3, 440.0, np.where(tt < 2 * total / rate / 3, 554.37, 659.25))
    wave = (0.3 * np.sin(2 * np.pi * notes * tt) * np.minimum(1, (total - np.arange(total)) / 2000)).astype(np.float32)
    for start in range(0, total, 1024):
        chunk = wave[start:start + 1024]
        af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
        for p in aus.encode(af):
            out.mux(p)
    for s in (vs, aus):
        for p in s.encode(None):
            out.mux(p)
    out.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "samples")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    chelsea = skimage_photo("chelsea")
    chelsea.save(a.out / "chelsea.jpg", quality=92)
    skimage_photo("coffee").save(a.out / "coffee.jpg", quality=92)
    astro = skimage_photo("astronaut").resize((384, 384), Image.BICUBIC)
    astro.save(a.out / "astronaut.jpg", quality=92)
    swirls().save(a.out / "swirls.jpg", quality=92)
    mosaic().save(a.out / "mosaic.jpg", quality=92)
    clip(a.out / "clip.mp4", chelsea)
    for f in sorted(a.out.iterdir()):
        print(f"{f}  {f.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
