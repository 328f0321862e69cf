"""Every default of stylevid, once.

Layer L0: plain dataclasses, no torch. The CLI builds these from its options (its option
defaults are read from here), the pipelines read them, and the JSON sidecar records them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

# Default taps per encoder, chosen by looking at results on ../shared/media paintings and photos.
# Style layers run from fine texture (early) to large motifs (late); one content layer in the middle.
ENCODER_LAYERS: dict[str, dict[str, tuple[str, ...]]] = {
    "lite0": {
        "style": ("stem", "block0", "block2", "block4", "block7", "block10"),
        "content": ("block7",),
        "dream": ("block7", "block10"),
    },
    "vgg16": {
        "style": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "content": ("relu4_2",),
        "dream": ("relu4_3",),
    },
    "vgg19": {
        "style": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "content": ("relu4_2",),
        "dream": ("relu4_4",),
    },
}

ENCODERS = tuple(ENCODER_LAYERS)
INITS = ("content", "noise", "style")
OPTIMIZERS = ("lbfgs", "adam")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Refuse images above this many pixels (Pillow's own bomb guard is set to the same figure).
MAX_IMAGE_PIXELS = 8192 * 8192
# Smallest side the encoders can work with (lite0 downsamples 32x).
MIN_IMAGE_SIDE = 16


@dataclass(frozen=True)
class StyleConfig:
    """Still-image style transfer (Gatys et al.). Also the per-frame core of video and 360."""

    encoder: str = "lite0"
    weights: str | None = None          # explicit weights file (vgg); lite0 ships its own
    offline: bool = False               # never try to download weights
    device: str = "auto"
    # Encoder arithmetic: fp32, or bf16/fp16 under autocast (mixed precision, for GPUs; fp16 needs
    # CUDA). Grams and losses are always summed in fp32.
    precision: str = "fp32"
    size: int = 512                     # long edge of the output, pixels
    scales: int = 2                     # coarse-to-fine levels, each half the size of the next
    iterations: int = 60                # optimizer iterations at the final scale
    coarse_iterations: int = 80         # iterations at each coarser scale
    optimizer: str = "lbfgs"
    lr: float = 0.02                    # Adam step on [0,1] pixels
    lbfgs_history: int = 20             # L-BFGS pairs kept ...
    lbfgs_memory_mb: int = 768          # ... in bfloat16, then fewer, when float32 would take more (huge pictures)
    # Flat pictures (video frames) over tile_above² pixels go through the encoder in tiles of tile px
    # with tile_halo px of context each (0: never); 360 views over view_tile_above². Tiles bound the
    # memory and cost speed: a 1920x1080 or 1920x1280 picture goes whole (bench.py `scale`), while
    # a 3840x1920 360 picture's views are tiled to stay under 4 GB (whole views: 5 GB).
    tile_above: int = 1600
    view_tile_above: int = 1024
    tile: int = 768
    tile_halo: int = 64                 # a multiple of 32
    content_weight: float = 0.05
    style_weight: float = 1.0
    tv_weight: float = 2.0
    style_layers: tuple[str, ...] | None = None      # None: the encoder's default
    content_layers: tuple[str, ...] | None = None
    layer_weights: dict[str, float] = field(default_factory=dict)  # per style layer, default 1
    init: str = "content"
    style_scale: float = 1.0            # style image long edge relative to the output long edge
    style_blend: tuple[float, ...] | None = None    # weights of several styles, normalized
    preserve_colors: bool = False
    seed: int = 0
    early_stop_tol: float = 1e-3        # stop when the loss improved less than this fraction ...
    early_stop_patience: int = 10       # ... over this many iterations
    save_every: int = 0                 # write intermediate images every N iterations (0: never)

    def layers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        d = ENCODER_LAYERS[self.encoder]
        return (self.style_layers or d["style"], self.content_layers or d["content"])


@dataclass(frozen=True)
class VideoConfig:
    """Flow-guided video stylization (Ruder, Dosovitskiy, Brox)."""

    size: int = 360                     # working long edge; 0 = native
    first_iterations: int = 100         # frame 1 (and each new shot) at the final scale
    iterations: int = 30                # warm frames
    # Regions the flow cannot follow (revealed by a pan, behind a moving object) start a warm frame
    # from the content: 30 iterations leave them half painted. When more than reveal_above of the
    # frame is such, a half-size pass of reveal_iterations paints the frame first and fills them.
    reveal_iterations: int = 30         # 0: off
    reveal_above: float = 0.005
    # A painted frame has a line of its own along each edge (the encoder pads there). Paint within
    # edge_band px of the earlier frame's edge is not carried inward by a camera move.
    edge_band: float = 12.0
    temporal_weight: float = 5.0
    # Stereo: the right eye is held to the painted left eye warped by the disparity flow with this
    # weight (where that flow is reliable; elsewhere it is painted freely). Eyes must match more
    # closely than frames: on gvr_andes (384 px) the warping error between the painted eyes was
    # 4.57/255 at weight 5, 3.11 at 50 and 1.27 at 500, against 1.97 between the photo's own eyes.
    stereo_weight: float = 500.0
    warm_start: bool = True
    long_term: tuple[int, ...] = (1,)   # earlier outputs compared against, nearer first
    flow: str = "dis"
    cut_threshold: float = 0.35         # reliable fraction below this: a new shot
    start: float = 0.0                  # seconds
    duration: float | None = None       # seconds; None = to the end
    crf: int = 18                       # quality on H.264's 0-51 scale (VP9: scaled to its 0-63; ProRes ignores it)
    codec: str = "h264"                 # h264 (plays everywhere) | prores (ProRes 422 HQ, 10-bit: for editing) | vp9 (WebM)
    preview: bool = False
    fps: float = 24.0                   # frame rate of an image-sequence input (a folder or frame_%04d.png)
    audio: str | None = None            # a sound file that replaces the input's audio (a render's soundtrack)
    style_morph: bool = False           # several styles: the first at the first frame, the last at the last


FLOWS = ("dis", "farneback", "raft")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class DreamConfig:
    """Deep dream (Mordvintsev et al.): normalized gradient ascent on the pixels, octave by octave."""

    encoder: str = "lite0"
    weights: str | None = None          # explicit weights file (vgg); lite0 ships its own
    offline: bool = False
    device: str = "auto"
    layers: tuple[tuple[str, float], ...] = ()      # (name, weight); empty: the encoder's default dream layers
    channels: tuple[tuple[str, int, float], ...] = ()  # (layer, channel index, weight)
    # The classic notebook's numbers (4 octaves x 10 steps of 1.5/255, jitter 32), chosen by eye on
    # media/photo at 512 px: eyes and dog faces while the scene stays readable; 20 steps or 0.01 overcook.
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10                     # gradient steps per octave
    step_size: float = 0.006            # per step, in [0,1] pixel units, after dividing by the mean |gradient|
    jitter: int = 32                    # random shift (px) before each step, undone after
    size: int = 512                     # long edge of the output; 0 = native
    seed: int = 0
    save_every: int = 0                 # write intermediate images every N steps (0: never)
    wrap_x: bool = False                # equirectangular 360: circular in x (seamless), no jitter in y
    # Zoom (a photo becomes a video, the classic "infinite zoom"): frame k is frame k-1 magnified
    # `zoom` times about its centre, turned `zoom_rotate` degrees, and dreamed `zoom_steps` steps per
    # octave. 1.04 at 24 fps (2.6x a second) with 6 steps, chosen by eye on golden_gate at 384 px over
    # 49 frames: 1 and 3 steps let each magnification blur the frame (soft by frame 48), 10 looks like 6
    # and costs more (6 steps: 80 s for the 49 frames on one CPU thread, 3 steps: 46 s).
    zoom_frames: int = 0                # 0: a photo gives a photo; N > 0: a video of N frames
    zoom: float = 1.04
    zoom_rotate: float = 0.0            # degrees per frame, counter-clockwise
    zoom_steps: int = 6
    zoom_fps: int = 24


@dataclass(frozen=True)
class PanoramaConfig:
    projection: str = "auto"            # auto | equirect | flat
    face_size: int = 0                  # 0: derived from the output size
    views: int = 6                      # cube faces; more adds overlapping views
    stereo: str = "auto"                # auto (metadata, else the halves: stereo.py) | none | top-bottom | left-right


PROJECTIONS = ("auto", "equirect", "flat")
STEREO_LAYOUTS = ("top-bottom", "left-right")
STEREO_MODES = ("auto", "none", *STEREO_LAYOUTS)
VIDEO_CODECS = ("h264", "prores", "vp9")


@dataclass(frozen=True)
class TextConfig:
    """Text generation: a word- or char-level LSTM language model, or a fine-tuned GPT-2."""

    level: str = "word"                 # word | char
    layers: int = 2
    hidden: int = 128
    embedding: int = 128
    dropout: float = 0.2
    tie: bool = True                    # output layer shares the embedding matrix
    vocab_size: int = 10000             # including <unk>; most frequent tokens of the training split
    seq_len: int = 32                   # tokens per training sequence (backprop through time)
    batch_size: int = 64
    epochs: int = 10
    lr: float = 3e-3                    # Adam; halved when validation loss stops improving
    grad_clip: float = 1.0              # max gradient norm (0: no clipping)
    val_split: float = 0.1              # tail fraction of the corpus held out for validation
    seed: int = 0
    sample_every: int = 5               # a sample message every N epochs (0: only at the end)
    device: str = "auto"
    words: int = 60                     # words to generate
    temperature: float = 0.8
    top_k: int = 0                      # 0: no top-k filter
    top_p: float = 1.0                  # 1: no nucleus filter
    greedy: bool = False
    count: int = 1
    base: str = "gpt2"                  # GPT-2 base: a local folder or a Hugging Face name
    gpt2_block: int = 128               # tokens per fine-tuning block
    gpt2_batch_size: int = 4
    gpt2_epochs: int = 1
    gpt2_lr: float = 5e-5


def to_dict(cfg) -> dict:
    """A plain dict of a config (for the JSON sidecars and work-folder keys)."""
    return asdict(cfg)


__all__ = [
    "ENCODER_LAYERS", "ENCODERS", "INITS", "OPTIMIZERS", "DEVICES", "FLOWS", "PROJECTIONS", "STEREO_LAYOUTS", "STEREO_MODES", "VIDEO_CODECS",
    "MAX_IMAGE_PIXELS", "MIN_IMAGE_SIDE",
    "StyleConfig", "VideoConfig", "DreamConfig", "PanoramaConfig", "TextConfig", "to_dict", "replace",
]
