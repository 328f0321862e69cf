"""Flow-guided video stylization (Ruder, Dosovitskiy, Brox 2016/2018), resumable.

    read_frames ─ content_t ─┬─ flows (t-1 ↔ t, prefetched in a thread, cached) ─ reliability mask
                             └─ cold (frame 1 / a new shot): Stylizer.stylize
                                warm: init = mask·warp(out_{t-1}) + (1−mask)·fill_t,
                                      optimize content + style + tv + temporal(mask, warped)
                                      (fill_t: content_t, or where more than reveal_above of the
                                      frame is unreliable, frame t painted alone at half size)
    ─ out_t ─ work folder (atomic PNG + sha256 in the index) ─ assemble (pts, rotation, audio kept)

Every frame is a pure function of the input, the styles, the settings, its seed (seed, t) and the
*saved* earlier outputs (uint8 PNGs), so a resumed job yields the same frames as one that never
stopped.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..config import (FLOWS, MIN_IMAGE_SIDE, PROJECTIONS, VIDEO_CODECS, PanoramaConfig, StyleConfig, VideoConfig,
                      to_dict)
from ..errors import BadInput, OutputRefused
from ..events import Progress, Sink, info, null_sink, warn
from ..files import atomic_write_bytes, check_output
from ..flow import FlowCache, FlowPrefetcher, estimate_flow, flow_pair_np, to_tensor as flow_tensor
from ..images import animation, image_format, is_animated_webp, load_image, resize, save_image, to_tensor, to_uint8
from ..losses import temporal_loss
from ..encoders import load_encoder
from ..runtime import pick_device
from .. import sequence
from ..stereo import NOT_STEREO, Eyes, choose as choose_stereo
from ..weights import raft_file
from ..video import assemble, count_frames, probe, read_frames, scaled_size
from ..video.reader import check_window, shown_size, turns
from ..video.animated import write_lossless
from ..video.writer import Written, check_audio, check_codec, output_format, video_suffix
from ..warp import carried_from_edge, reliability, warp
from .jobs import WorkFolder, check_space, file_identity, finished_frame, video_job
from .still import Stylizer, check_inputs, sidecar



def validate_video(v: VideoConfig) -> None:
    if v.codec not in VIDEO_CODECS:
        raise BadInput(f"--codec {v.codec!r}: choose one of {', '.join(VIDEO_CODECS)}")
    if v.flow not in FLOWS:
        raise BadInput(f"--flow {v.flow!r}: choose one of {', '.join(FLOWS)}")
    if v.size < 0 or (v.size and v.size < 16):
        raise BadInput(f"--size {v.size}: 0 (native) or at least 16")
    if v.iterations < 1 or v.first_iterations < 1:
        raise BadInput("--iterations and --first-iterations must be at least 1")
    if v.reveal_iterations < 0 or not 0 <= v.reveal_above <= 1:
        raise BadInput("--reveal-iterations must be 0 (off) or more (and reveal_above a fraction)")
    if not v.edge_band >= 0:
        raise BadInput(f"--edge-band {v.edge_band}: 0 (off) or more pixels")
    if v.temporal_weight < 0:
        raise BadInput("--temporal-weight must be 0 or more")
    if not v.stereo_weight >= 0:
        raise BadInput(f"--stereo-weight {v.stereo_weight}: must be 0 or more")
    if any(k < 1 for k in v.long_term) or list(v.long_term) != sorted(set(v.long_term)):
        raise BadInput(f"--long-term {','.join(map(str, v.long_term))}: increasing frame distances >= 1")
    if not 0 <= v.cut_threshold < 1:
        raise BadInput("--cut-threshold must be in [0, 1)")
    if not 0 <= v.crf <= 51:
        raise BadInput("--crf must be from 0 to 51")
    check_window(v.start, v.duration)
    if not 0 < v.fps <= 1000:
        raise BadInput(f"--fps {v.fps:g}: the frame rate of an image sequence, above 0 and at most 1000")






@contextlib.contextmanager
def readable(inp: Path, on_event: Sink = null_sink, fps: float = VideoConfig.fps):
    """The file the video readers walk for ``inp``: ``inp`` itself; for an image sequence (a folder
    of numbered pictures or a frame_%04d.png pattern: see sequence.py) its pictures at ``fps``, and
    for an animated WebP (FFmpeg's WebP decoder reads only still pictures) its frames at their
    times (a frame of 10 ms or less shows for 100 ms, as in browsers), each as a lossless copy
    (PNG in MOV: video/animated.py) in a temporary folder (``TMPDIR``) for the length of the call. The
    work folder's key and the names stay ``inp``'s."""
    if sequence.is_sequence(inp):
        files = sequence.frames(inp)
        missing = sequence.gaps([n for n, _ in files])
        if missing:
            runs = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in missing[:5]) + " ..." * (len(missing) > 5)
            warn(on_event, f"{inp}: pictures numbered {runs} are missing; the sequence goes on without them")
        rate = Fraction(fps).limit_denominator(1001)
        with tempfile.TemporaryDirectory(prefix="stylevid-") as d:
            src = Path(d) / "frames.mov"
            write_lossless(_sequence_pictures(files, on_event), src, 1 / rate)
            info(on_event, f"{inp}: {len(files)} pictures ({files[0][1].name} to {files[-1][1].name}) at {fps:g} fps "
                           f"(--fps)")
            yield src
        return
    if not is_animated_webp(inp):
        yield inp
        return
    with tempfile.TemporaryDirectory(prefix="stylevid-") as d:
        src = Path(d) / f"{inp.stem}.mov"
        n = write_lossless(((image, ms if ms > 10 else 100) for image, ms in animation(inp)), src)
        info(on_event, f"{inp.name}: an animated WebP of {n} frames, decoded with Pillow (FFmpeg reads only still WebP)")
        yield src


def _sequence_pictures(files: list[tuple[int, Path]], on_event: Sink):
    """The pictures of a sequence, each shown one frame; all must have the first one's size."""
    first = None
    on_event(Progress("reading pictures", 0, len(files)))
    for k, (_, f) in enumerate(files):
        image = load_image(f, "picture")
        if first is None:
            first = (f, image.shape)
        elif image.shape != first[1]:
            raise BadInput(f"{f}: {image.shape[1]}x{image.shape[0]}, but {first[0].name} is "
                           f"{first[1][1]}x{first[1][0]}; the pictures of a sequence must have one size")
        yield image, 1
        on_event(Progress("reading pictures", k + 1, len(files)))


def input_identity(inp: Path, fps: float) -> str:
    """What keys a video job's input: a file's :func:`file_identity`; a sequence's pictures (names,
    sizes, times) and the rate it is read at."""
    if sequence.is_sequence(inp):
        return f"{sequence.identity(sequence.frames(inp))}@{fps!r}"
    return file_identity(inp)


def default_video_output(inp: Path, styles: Sequence[Path], codec: str = VideoConfig.codec) -> Path:
    return Path(f"{sequence.stem(inp)}_{'+'.join(s.stem for s in styles)}{video_suffix(codec, inp)}")






def temporal_term(previous: list[tuple[torch.Tensor, torch.Tensor]], weight: float,
                  first: float | None = None) -> Callable | None:
    """The temporal loss over (warped earlier output, reliability weight) pairs, nearer first;
    ``first`` weighs the first pair instead of ``weight`` (a stereo frame's other eye).

    Long-term weights follow Ruder et al.: a pixel counts for an older frame only where no nearer
    frame covers it (c_j = max(0, c_j − Σ_{k<j} c_k)).
    """
    weights = [weight if first is None or k else first for k in range(len(previous))]
    if not previous or max(weights) <= 0:
        return None
    covered = torch.zeros_like(previous[0][1])
    terms = []
    for (warped, mask), w in zip(previous, weights):
        c = (mask - covered).clamp_min(0)
        covered = (covered + c).clamp(max=1)
        if w > 0:
            terms.append((warped, c, w))

    def extra(x: torch.Tensor) -> torch.Tensor:
        return sum(w * temporal_loss(x, wp, c) for wp, c, w in terms)

    return extra


class StylePainter:
    """Paints frames with a Stylizer: cold frames coarse-to-fine, warm frames from the warped
    previous output with the temporal loss."""

    def __init__(self, stylizer: Stylizer, cfg: StyleConfig, vcfg: VideoConfig, wrap_x: bool = False,
                 blend_at: Callable[[int], list[float]] | None = None):
        self.stylizer, self.cfg, self.vcfg, self.wrap_x = stylizer, cfg, vcfg, wrap_x
        self.device = stylizer.device
        self.blend_at = blend_at        # frame t → the styles' weights (a morph), or None: the config's

    def _blend(self, t: int) -> None:
        if self.blend_at is not None:
            self.stylizer.blend = self.blend_at(t)

    def cold(self, content: np.ndarray, t: int) -> tuple[np.ndarray, int]:
        self._blend(t)
        out, stats = self.stylizer.stylize(content, seed=self.cfg.seed, index=t, iterations=self.vcfg.first_iterations)
        return out, sum(stats["iterations"])

    def other_eye(self, content: np.ndarray, previous: list, t: int) -> tuple[np.ndarray, int]:
        """The right eye of a stereo frame: a warm frame whose first reference (the painted left eye
        warped by the disparity flow) is held with ``stereo_weight``."""
        return self.warm(content, previous, t, first_weight=self.vcfg.stereo_weight)

    def warm(self, content: np.ndarray, previous: list, t: int,
             first_weight: float | None = None) -> tuple[np.ndarray, int]:
        self._blend(t)
        c = to_tensor(content, self.device)
        warped, mask = previous[0]
        used = 0
        if not self.vcfg.warm_start:
            init = self.stylizer.initial(c, self.cfg.seed, t)
        else:
            fill = c
            if self.vcfg.reveal_iterations and float((1 - mask).mean()) > self.vcfg.reveal_above:
                fill, used = self.revealed(c, t)
            init = mask * warped + (1 - mask) * fill
        x, n = self.stylizer.optimize_at(c, init, self.vcfg.iterations,
                                         temporal_term(previous, self.vcfg.temporal_weight, first_weight),
                                         task="iterations", wrap_x=self.wrap_x, index=t)
        used += n
        out = to_uint8(x)
        if self.cfg.preserve_colors:
            from .still import keep_colors

            out = keep_colors(out, content)
        return out, used

    def revealed(self, c: torch.Tensor, t: int) -> tuple[torch.Tensor, int]:
        """Frame ``t`` painted on its own at half size (a quarter of the cost per iteration) and
        brought back to full size: what the regions without a reliable warp start from."""
        h, w = c.shape[-2:]
        rs = getattr(self.stylizer, "resize", resize)      # a 360 stylizer resizes circularly
        small = rs(c, (max(MIN_IMAGE_SIDE, h // 2), max(MIN_IMAGE_SIDE, w // 2)))
        x, used = self.stylizer.optimize_at(small, self.stylizer.initial(small, self.cfg.seed, t),
                                            self.vcfg.reveal_iterations, task="revealed regions",
                                            wrap_x=self.wrap_x, index=t)
        return rs(x, (h, w)).clamp(0, 1), used


def morph_weights(t: int, n: int, styles: int) -> list[float]:
    """The styles' weights at frame ``t`` of ``n`` in a morph: the first style alone at the first
    frame, the last alone at the last, and in between linearly from each style to the next (with
    three styles, the second alone at the middle frame)."""
    at = t / (n - 1) * (styles - 1) if n > 1 else 0.0
    return [max(0.0, 1.0 - abs(at - i)) for i in range(styles)]


class StereoPainter:
    """Paints a stereo frame (both eyes in one picture, see :class:`Eyes`) eye by eye, so that the
    eyes match: the left eye as a mono frame, the right eye warm from the left one warped by the
    disparity flow between them, held there where that flow is reliable (``stereo_weight``, much
    firmer than the temporal loss between frames), and to its own previous frame after that.

    The inner painter paints the right eye with ``other_eye(content, refs, t)``, the left eye's warp
    first in ``refs`` (StylePainter: a warm frame holding that reference with ``stereo_weight``;
    DreamPainter: the left eye's dream kept where the disparity warp is reliable).
    ``disparity(t, left, right)`` gives the (left → right, right → left) flow pair of frame t; the
    frame loop prefetches it in a thread (:func:`_run`), else it is computed here. The references to
    earlier frames come per eye too (each eye's own flows, wrapping within the eye in 360).
    """

    def __init__(self, make_inner: Callable[[int], StylePainter], layout: str, vcfg: VideoConfig,
                 wrap_x: bool, device, flow_kw: dict):
        self.make_inner, self.eyes, self.vcfg, self.wrap_x = make_inner, Eyes(layout), vcfg, wrap_x
        self.device, self.inner = device, None
        self.disparity: Callable[[int, np.ndarray, np.ndarray], tuple] = (
            lambda t, left, right: flow_pair_np(left, right, vcfg.flow, wrap_x, **flow_kw))

    def _painter(self, eye: np.ndarray) -> StylePainter:
        if self.inner is None:
            self.inner = self.make_inner(max(eye.shape[:2]))
        return self.inner

    def _from_left(self, left_out: np.ndarray, left: np.ndarray, right: np.ndarray, t: int) -> tuple:
        """The painted left eye warped onto the right eye, with its reliability mask."""
        dev = self.device
        b, f = (flow_tensor(x, dev) for x in self.disparity(t, left, right))   # left → right, right → left
        mask = reliability(b, f, self.wrap_x) * (1 - carried_from_edge(f, self.vcfg.edge_band, self.wrap_x))
        return warp(to_tensor(left_out, dev), f, self.wrap_x), mask

    def cold(self, content: np.ndarray, t: int) -> tuple[np.ndarray, int]:
        left, right = self.eyes.split(content)
        painter = self._painter(left)
        lo, n_left = painter.cold(left, t)
        ro, n_right = painter.other_eye(right, [self._from_left(lo, left, right, t)], t)
        return self.eyes.join(lo, ro), n_left + n_right

    def warm(self, content: np.ndarray, previous: list, t: int) -> tuple[np.ndarray, int]:
        left, right = self.eyes.split(content)
        painter = self._painter(left)
        eyes = [(self.eyes.split(w), self.eyes.split(m)) for w, m in previous]
        lo, n_left = painter.warm(left, [(w[0], m[0]) for w, m in eyes], t)
        refs = [self._from_left(lo, left, right, t), *[(w[1], m[1]) for w, m in eyes]]
        ro, n_right = painter.other_eye(right, refs, t)
        return self.eyes.join(lo, ro), n_left + n_right


STEREO_LOOK_FRAMES = 300   # how far into a video (frames) --stereo auto looks for pictures with detail


def stereo_samples(inp: Path, meta, start: float = 0.0, duration: float | None = None):
    """The frames ``--stereo auto`` compares, lazily: every 10th of the window, as shown, long edge
    512 at most, up to frame STEREO_LOOK_FRAMES (``stereo.detect`` stops reading once it has three
    with detail, so a fade from black is passed over)."""
    frames = read_frames(inp, min(512, max(_display_size(meta))), start, duration, as_shown=True)
    try:
        for f in frames:
            if f.index % 10 == 0:
                yield f.image
            if f.index >= STEREO_LOOK_FRAMES:
                break
    finally:
        frames.close()


def stereo_layout(inp: Path, meta, mode: str, vcfg: VideoConfig, on_event: Sink = null_sink,
                  verb: str = "painted") -> str:
    """The stereo layout the frames are painted (or dreamed: ``verb``) with eye by eye, "" for one
    picture: :func:`stereo.choose` on ``mode`` (--stereo), that is, with auto, the layout the
    input's metadata declares, else the one its first frames with detail show (every 10th frame,
    past a fade from black). Says which, or warns when the
    frame at its working size does not split into two equal eyes (then it is one picture)."""
    layout, why = choose_stereo(mode, stereo_samples(inp, meta, vcfg.start, vcfg.duration), meta.stereo)
    if not layout:
        return ""
    w, h = scaled_size(*_display_size(meta), _working_size(vcfg, meta))      # the frames are painted as shown
    if Eyes(layout).splits_evenly(w, h):
        info(on_event, f"{inp.name}: stereo ({layout}: {why}): each eye is {verb} on its own, the right eye "
                       f"from the left one warped by the disparity flow between them" + NOT_STEREO * (mode == "auto"))
        return layout
    warn(on_event, f"{inp.name}: stereo ({layout}: {why}) with an odd side at {w}x{h}: both eyes are {verb} as "
                   f"one picture, so they will not match")
    return ""


def stylize_video(input: str | Path, styles: str | Path | Sequence[str | Path], out: str | Path | None = None,
                  cfg: StyleConfig = StyleConfig(), vcfg: VideoConfig = VideoConfig(), overwrite: bool = False,
                  restart: bool = False, keep_work: bool = False, on_event: Sink = null_sink,
                  make_stylizer: Callable[[StyleConfig, list, Sink], Stylizer] | None = None,
                  wrap_x: bool = False, projection: str = "auto", stereo: str = PanoramaConfig.stereo) -> Path:
    """Stylize a video; returns the output path. Rerunning the same call resumes an interrupted job.

    ``projection``: auto (spherical metadata or a 2:1 frame, or 2:1 eyes → 360), equirect or flat. In
    360 mode the panorama stylizer paints each frame seamlessly and flow and warping wrap around in x.
    A caller's ``make_stylizer`` / ``wrap_x`` take over from the detection. ``stereo``: auto (the
    metadata's layout, else the one the frames' halves show), none, top-bottom or left-right; a
    stereo video is painted eye by eye (:class:`StereoPainter`).
    """
    inp, spaths = check_inputs(input, styles, cfg, "video", sequence.check_video_input)
    validate_video(vcfg)
    out = Path(out) if out else default_video_output(inp, spaths, vcfg.codec)

    # Read the styles, pick the device and load the weights now: a bad one must fail before a work
    # folder is made (the encoder is cached, the stylizer reuses it).
    style_images = [load_image(s, "style image") for s in spaths]
    if vcfg.style_morph and len(spaths) < 2:
        raise BadInput(f"--style-morph goes from the first style to the last: give two or more (-s A -s B), "
                       f"got {len(spaths)}")
    if vcfg.style_morph and cfg.style_blend is not None:
        raise BadInput("--style-morph sets the styles' weights frame by frame: drop --style-blend")
    device = pick_device(cfg.device)
    load_encoder(cfg.encoder, cfg.weights, cfg.offline, device)
    if projection not in PROJECTIONS:
        raise BadInput(f"--projection {projection!r}: choose one of {', '.join(PROJECTIONS)}")
    with readable(inp, on_event, vcfg.fps) as src:
        meta = probe(src)
        stereo = stereo_layout(src, meta, stereo, vcfg, on_event)
        # A stereo frame's projection is its eyes' (a top-bottom 360 video is 1:1, each eye 2:1).
        eye_w, eye_h = Eyes(stereo).eye_size(*_display_size(meta)) if stereo else _display_size(meta)
        if projection == "equirect" or (projection == "auto" and make_stylizer is None and (
                meta.spherical or eye_w == 2 * eye_h)):
            from .panorama import PanoramaStylizer

            why = ("--projection equirect" if projection == "equirect" else "spherical metadata" if meta.spherical
                   else f"{eye_w}x{eye_h} is 2:1" + (" (each eye)" if stereo else ""))
            info(on_event, f"{inp.name}: 360 mode (equirectangular: {why}); --projection flat to turn it off")
            make_stylizer, wrap_x = PanoramaStylizer, True

        morph = None
        if vcfg.style_morph:
            n = count_frames(src, vcfg.start, vcfg.duration)
            morph = lambda t: morph_weights(t, n, len(style_images))     # noqa: E731

        def make_mono(size: int, sink: Sink) -> StylePainter:
            stylizer = (make_stylizer or Stylizer)(replace(cfg, size=size), style_images, sink)
            return StylePainter(stylizer, cfg, vcfg, wrap_x, morph)

        def make_painter(size: int, sink: Sink):
            if not stereo:
                return make_mono(size, sink)
            # The eye's own long edge (the frame's is the painter's size for mono video).
            return StereoPainter(lambda eye: make_mono(eye, sink), stereo, vcfg, wrap_x, device,
                                 flow_options(vcfg, cfg.offline, device))

        return run_video(inp, out, make_painter, vcfg, {"style": to_dict(cfg), "stereo": stereo}, spaths,
                         overwrite=overwrite, restart=restart, keep_work=keep_work, on_event=on_event, wrap_x=wrap_x,
                         record={"styles": [str(s) for s in spaths], "config": to_dict(cfg), "stereo": stereo},
                         use_temporal=vcfg.temporal_weight > 0, offline=cfg.offline, stereo=stereo, read_from=src,
                         device=device)


def flow_options(vcfg: VideoConfig, offline: bool, device) -> dict:
    """The flow estimator's keyword arguments: RAFT's weights and the device it runs on (the
    painting's, so `--device cpu` keeps RAFT off a GPU too); none for DIS and Farneback."""
    return {"weights_path": raft_file(offline), "device": device} if vcfg.flow == "raft" else {}


def run_video(inp: Path, out: Path, make_painter: Callable[[int, Sink], object], vcfg: VideoConfig,
              settings: dict, extra_inputs: Sequence[Path] = (), overwrite: bool = False, restart: bool = False,
              keep_work: bool = False, on_event: Sink = null_sink, wrap_x: bool = False, record: dict | None = None,
              use_temporal: bool = True, offline: bool = False, stereo: str = "", read_from: Path | None = None,
              device=None) -> Path:
    """The resumable frame loop shared by ``stylize_video`` and video dream.

    ``make_painter(long_edge, sink)`` returns an object with ``cold(content, t)`` and
    ``warm(content, previous, t)`` (each → (uint8 image, iterations used)) and a ``device``;
    ``settings`` (with ``vcfg``) key the work folder. ``stereo``: the painter is a
    :class:`StereoPainter` of that layout (flows per eye, see :func:`_run`). ``read_from``: the
    file to read the frames from, where it is not ``inp`` (:func:`readable`). ``device``: the
    painting's, where RAFT runs too (None: RAFT picks CUDA when there is one).
    """
    t_start = time.perf_counter()
    src = read_from or inp
    validate_video(vcfg)
    audio = check_audio_output(vcfg.audio, out) if vcfg.audio else None
    check_output(out, [inp, *extra_inputs, *([audio] if audio else [])], overwrite)
    if sequence.is_pattern(out):
        check_sequence_output(out, overwrite)
    else:
        output_format(out)   # an unsupported extension fails now, not after hours of frames
        check_codec(out, vcfg.codec, vcfg.crf, on_event)
    meta = probe(src)
    window = count_frames(src, vcfg.start, vcfg.duration)
    if window == 0:
        end = "the end" if vcfg.duration is None else f"{vcfg.start + vcfg.duration:g} s"
        raise BadInput(f"{inp}: no frame between {vcfg.start:g} s and {end}")
    work_w, work_h = scaled_size(*_display_size(meta), _working_size(vcfg, meta))
    if min(work_w, work_h) < MIN_IMAGE_SIDE:
        raise BadInput(f"{inp}: frames of {meta.width}x{meta.height} would be painted at {work_w}x{work_h}, "
                       f"under the {MIN_IMAGE_SIDE} px minimum (raise --size)")
    for say, text in _how_it_is_read(meta):
        say(on_event, f"{inp.name}: {text}")
    check_space(out, window, work_w, work_h, on_event)

    # The work folder is keyed by everything that changes the frames (not crf, codec or preview).
    frame_settings = {**settings, "video": {k: v for k, v in to_dict(vcfg).items()
                                            if k not in ("crf", "codec", "preview", "fps", "audio")},
                      "wrap_x": wrap_x, "as_shown": True,
                      "even_sides": True}   # even scaled sizes, lite0's even_sides (2026-11-26): older frames differ
    key_src = json.dumps({"input": input_identity(inp, vcfg.fps), "others": [file_identity(s) for s in extra_inputs],
                          **frame_settings}, sort_keys=True, default=str)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    record_work = {"input": str(inp), "others": [str(s) for s in extra_inputs], **frame_settings}
    with video_job(out, key, record_work, restart, keep_work, on_event) as job:
        stats = _run(src, meta, vcfg, job.work, job.done, job.watch, make_painter, wrap_x, use_temporal,
                     flow_options(vcfg, offline, device), window, stereo)
        job.stage = "mux"
        if sequence.is_pattern(out):
            written = _write_sequence(inp, src, meta, out, job.work, stats["frames"], vcfg, job.watch.check, on_event)
        else:
            # The mux polls the stop flag at every packet: a signal aborts it at once (its temporary
            # file removed, every frame kept) instead of when it ends.
            written = assemble(src, lambda i: finished_frame(job.work, i), out, start=vcfg.start, duration=vcfg.duration,
                               crf=vcfg.crf, codec=vcfg.codec, expected=stats["frames"], overwrite=overwrite,
                               on_event=on_event, check=job.watch.check, as_shown=True, audio=audio)
        job.stage = "done"
        if job.flag:
            info(on_event, f"{out}: the stop request came as the video was being finished; it is complete")
        # A sequence's sidecar and preview are named after it (frame_%04d.png → frame.json).
        named = sequence.named_after(out)
        if vcfg.preview:
            write_preview(src, job.work, vcfg, named.with_suffix(".preview.png"), on_event)
        sidecar(named, {"input": str(inp), "output": str(out), **(record or {}), "video": to_dict(vcfg),
                      "wrap_x": wrap_x, "video_codec": written.codec, "audio": list(written.audio),
                      "soundtrack": str(audio) if audio else None,
                      "subtitles": written.subtitles, "size": [written.width, written.height],
                      "rotation": meta.rotation, "input_colour": {"hdr": meta.hdr, "bt2020": meta.wide_gamut},
                      "deinterlaced": meta.interlaced,
                      **stats,
                      "seconds": {"total": round(time.perf_counter() - t_start, 3)}})
    return out








def check_audio_output(audio, out: Path) -> Path:
    """``--audio FILE`` for output ``out``: a file holding sound, and an output that can carry it (a
    video file, not numbered pictures, a GIF or a WebP). Checked before any frame is painted."""
    if sequence.is_pattern(out):
        raise BadInput(f"--audio {audio}: numbered pictures hold no sound; write a video (.mp4, .mov, .mkv, .webm)")
    check_audio(audio, out)
    return Path(audio)


def check_sequence_output(out: Path, overwrite: bool) -> None:
    """An output named frame_%04d.png: a picture type, no picture of the pattern there already
    (unless ``overwrite``)."""
    image_format(out)
    there = sequence.matches(out)
    if there and not overwrite:
        raise OutputRefused(f"{out}: {len(there)} picture{'s' * (len(there) > 1)} of this pattern exist "
                            f"({min(there)[1].name}, ...); pass --overwrite to replace them")


def _write_sequence(inp: Path, src: Path, meta, out: Path, work: "WorkFolder", count: int, vcfg: VideoConfig,
                    check: Callable[[], None], on_event: Sink) -> Written:
    """The finished frames as numbered pictures: an image sequence keeps its pictures' numbers
    (of the window), anything else is numbered from 1. Each picture is written atomically; no
    sound, no timing (the sidecar records the rate)."""
    if sequence.is_sequence(inp):
        skip = count_frames(src, 0.0, vcfg.start) if vcfg.start else 0
        numbers = [n for n, _ in sequence.frames(inp)][skip:skip + count]
    else:
        numbers = list(range(1, count + 1))
    if meta.audio:
        warn(on_event, f"{out}: pictures hold no sound; the input's audio is not kept")
    return write_pictures(out, work, numbers, check, on_event, len(meta.audio))


def write_pictures(out: Path, work: "WorkFolder", numbers: list[int], check: Callable[[], None], on_event: Sink,
                   audio: int = 0) -> Written:
    """Finished frame i as the picture ``out`` names for ``numbers[i]``, each written atomically;
    older pictures of the pattern outside the new numbers are named, never deleted."""
    count = len(numbers)
    on_event(Progress("pictures", 0, count))
    as_png = image_format(out) == "PNG"
    for i, n in enumerate(numbers):
        check()
        data = work.png(i) if as_png else None      # a PNG out: the finished frame's own file, not encoded again
        if data is not None:
            atomic_write_bytes(sequence.numbered(out, n), data)
        else:
            save_image(finished_frame(work, i), sequence.numbered(out, n))
        on_event(Progress("pictures", i + 1, count))
    left = sorted(n for n, _ in sequence.matches(out) if not numbers[0] <= n <= numbers[-1])
    if left:
        warn(on_event, f"{out}: {len(left)} older pictures of this pattern are left as they were "
                       f"(numbers {left[0]} to {left[-1]})")
    h, w = finished_frame(work, 0).shape[:2]
    return Written(sequence.numbered(out, numbers[0]), count, w, h, out.suffix.lstrip(".").lower(),
                   ("dropped",) * audio, 0)








def _how_it_is_read(meta) -> list[tuple[Callable, str]]:
    """What reading the input changes or cannot keep, said once per job: (info or warn, text)."""
    notes: list[tuple[Callable, str]] = []
    if meta.alpha:
        notes.append((warn, f"its frames carry transparency ({meta.pix_fmt}); the output (H.264) has none: "
                            f"transparent areas are painted as the colour under them decodes"))
    if meta.interlaced:
        notes.append((info, "interlaced: each frame is deinterlaced (FFmpeg's bwdif) as it is read; the output is "
                            "progressive at the same frame rate"))
    if meta.hdr:
        notes.append((warn, f"HDR video ({meta.hdr.upper()}{', BT.2020' if meta.wide_gamut else ''}, {meta.pix_fmt}): "
                            f"tone-mapped to SDR for painting; the output is SDR (BT.709, 8-bit)"))
    elif meta.wide_gamut:
        notes.append((warn, f"BT.2020 colours ({meta.pix_fmt}): converted to BT.709 for painting; the output is "
                            f"BT.709, 8-bit"))
    return notes


def _display_size(meta) -> tuple[int, int]:
    """(width, height) of the frames as painted: as a player shows them (square pixels, upright)."""
    w, h = shown_size(meta.width, meta.height, getattr(meta, "sar", None))
    return (h, w) if turns(getattr(meta, "rotation", 0)) % 2 else (w, h)


def _working_size(vcfg: VideoConfig, meta) -> int:
    """The long edge frames are painted at (0: native); never upscaled."""
    return vcfg.size if vcfg.size and vcfg.size < max(_display_size(meta)) else 0






def _run(inp, meta, vcfg, work, done, watch, make_painter, wrap_x, use_temporal, flow_kw, total: int,
         stereo="") -> dict:
    """Paint every frame of the window (``total`` frames) not yet in the work folder.

    ``stereo`` ("top-bottom" / "left-right"): the flows between frames are each eye's own (in 360
    each eye wraps around by itself), prefetched like the disparity flows between the eyes."""
    on_event = watch.on_event
    size = _working_size(vcfg, meta)
    frames = read_frames(inp, size=size, start=vcfg.start, duration=vcfg.duration, on_event=on_event, as_shown=True)
    painter = None
    cache = FlowCache(work.root / "flows")
    history: dict[int, np.ndarray] = {}     # earlier outputs (uint8, as saved) for warm starts
    contents: dict[int, np.ndarray] = {}    # earlier content frames, for long-term flows
    keep = max(vcfg.long_term)
    needs_flow = vcfg.warm_start or use_temporal
    cold_its, warm_its, cuts, n = [], [], [], 0
    cold_s, warm_s = [], []                 # seconds per painted frame (flow wait included)
    t0 = time.perf_counter()
    eyes = Eyes(stereo) if stereo else None
    # One prefetcher per picture whose flows are needed: the frame, or each eye and the pair of eyes.
    picks = [lambda x: x] if eyes is None else [lambda x: eyes.split(x)[0], lambda x: eyes.split(x)[1]]
    with contextlib.ExitStack() as stack:
        pres = [stack.enter_context(FlowPrefetcher(vcfg.flow, wrap_x, cache=cache, **flow_kw))] if eyes is None else [
            stack.enter_context(FlowPrefetcher(vcfg.flow, wrap_x, cache=FlowCache(cache.folder / name), **flow_kw))
            for name in ("left", "right", "disparity")]
        for pre in pres:            # what an earlier run left for frames finished since
            pre.cache.discard(done - 1)
        it = iter(frames)
        cur = next(it, None)
        while cur is not None:
            nxt = next(it, None)
            t = cur.index
            content = cur.image
            # Start the next frame's flows now: they run in threads while this frame optimizes.
            if nxt is not None and nxt.index >= done and needs_flow:
                for pick, pre in zip(picks, pres):
                    pre.submit(nxt.index, pick(content), pick(nxt.image))
            if nxt is not None and nxt.index >= done and eyes is not None:
                pres[2].submit(nxt.index, *eyes.split(nxt.image))
            result = work.load(t) if t < done else None
            if result is None:
                if painter is None:
                    painter = make_painter(max(content.shape[:2]), watch)
                    if eyes is not None:
                        painter.disparity = pres[2].get
                tf = time.perf_counter()
                previous = []
                if t > 0 and needs_flow:
                    refs = [_references(vcfg, t, content, contents, history, pre, wrap_x, flow_kw, painter.device, pick)
                            for pick, pre in zip(picks, pres)]
                    # A new shot in either eye is a new shot; the eyes' references are joined back
                    # into frames (the stereo painter splits them again).
                    previous = [] if not all(refs) else refs[0] if eyes is None else [
                        (eyes.join(wl, wr), eyes.join(ml, mr)) for (wl, ml), (wr, mr) in zip(*refs)]
                if previous:
                    result, used = painter.warm(content, previous, t)
                    warm_its.append(used)
                    warm_s.append(round(time.perf_counter() - tf, 3))
                else:
                    result, used = painter.cold(content, t)
                    cold_its.append(used)
                    cold_s.append(round(time.perf_counter() - tf, 3))
                    if t > 0:
                        cuts.append(t)
                result = work.save(t, result)
                for pre in pres:    # its flows are never needed again (a resume starts after it)
                    pre.cache.discard(t)
                watch.check()
            on_event(Progress("frames", t + 1, total))
            history[t], contents[t] = result, content
            for old in [k for k in history if k < t + 1 - keep]:
                history.pop(old), contents.pop(old)
            n = t + 1
            cur = nxt
    elapsed = time.perf_counter() - t0
    if cuts and needs_flow:
        info(on_event, f"new shots detected at frames {', '.join(map(str, cuts))}")
    return {"frames": n, "resumed_from": done, "cold_iterations": cold_its, "warm_iterations": warm_its,
            "cold_seconds": cold_s, "warm_seconds": warm_s,
            "shots": [0, *cuts] if needs_flow else None,
            "seconds_per_new_frame": round(elapsed / max(1, n - done), 3)}


def _references(vcfg, t, content, contents, history, pre, wrap_x, flow_kw, dev, pick=lambda x: x) -> list:
    """Earlier outputs warped onto frame t with their reliability masks, nearer first; [] at a new shot.
    ``pick`` takes the part of each frame the flows are for (an eye of a stereo frame; all of it)."""
    content = pick(content)
    fwd, bwd = pre.get(t, pick(contents[t - 1]), content)
    fwd, bwd = flow_tensor(fwd, dev), flow_tensor(bwd, dev)
    mask = reliability(fwd, bwd, wrap_x)
    if float(mask.mean()) < vcfg.cut_threshold:
        return []  # a new shot: the old picture must not be dragged into it
    mask = mask * (1 - carried_from_edge(bwd, vcfg.edge_band, wrap_x))
    previous = [(warp(to_tensor(pick(history[t - 1]), dev), bwd, wrap_x), mask)]
    for j in vcfg.long_term:
        if j > 1 and t - j in history:
            f = flow_tensor(estimate_flow(content, pick(contents[t - j]), vcfg.flow, wrap_x, **flow_kw), dev)
            b = flow_tensor(estimate_flow(pick(contents[t - j]), content, vcfg.flow, wrap_x, **flow_kw), dev)
            m = reliability(b, f, wrap_x) * (1 - carried_from_edge(f, vcfg.edge_band, wrap_x))
            previous.append((warp(to_tensor(pick(history[t - j]), dev), f, wrap_x), m))
    return previous


def write_preview(inp: Path, work: WorkFolder, vcfg: VideoConfig, path: Path, on_event: Sink, count: int = 6) -> Path:
    """A contact sheet: input frames above, output frames below."""
    from PIL import Image

    n = work.done_prefix()
    picks = sorted({round(i * (n - 1) / max(1, count - 1)) for i in range(min(count, n))})
    outs = {t: work.load(t) for t in picks}
    h, w = next(iter(outs.values())).shape[:2]
    ins = {f.index: f.image for f in read_frames(inp, size=max(h, w), start=vcfg.start, duration=vcfg.duration,
                                                 as_shown=True) if f.index in outs}
    sheet = Image.new("RGB", (w * len(picks), h * 2), "white")
    for k, t in enumerate(picks):
        if t in ins:
            sheet.paste(Image.fromarray(ins[t]).resize((w, h)), (k * w, 0))
        sheet.paste(Image.fromarray(outs[t]), (k * w, h))
    save_image(np.asarray(sheet), path)
    info(on_event, f"preview: {path}")
    return path
