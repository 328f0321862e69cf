"""Still images in and out (L2: Pillow), and conversions between uint8 arrays and tensors.

User images are read with Pillow, never OpenCV: Pillow refuses decompression bombs and raises
on truncated files where ``cv2.imread`` returns half-grey pictures. EXIF orientation is applied;
CMYK, palette, 16-bit, grayscale and alpha images become RGB (alpha composited on white). Every
array here is sRGB: a picture with an embedded ICC profile (Display P3 from a phone, Adobe RGB
from a camera, a CMYK press profile) is converted from it (LittleCMS, through Pillow's ImageCms).
HEIC/HEIF (a phone's photos) is read through pillow-heif.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .config import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from .errors import BadInput, InvalidMedia, TooLarge
from .files import atomic_path, check_input

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
_SRGB = ImageCms.createProfile("sRGB")


def _open(p: Path) -> Image.Image:
    """Image.open, with HEIC/HEIF (pillow-heif) registered the first time a picture needs it: it
    loads codec libraries of its own (libheif, libde265, x265), which most runs never need."""
    try:
        return Image.open(p)
    except UnidentifiedImageError:
        if "HEIF" in Image.OPEN:
            raise
        try:
            from pillow_heif import register_heif_opener
        except ImportError:   # installed without its dependencies: not a picture Pillow knows, then
            raise UnidentifiedImageError(f"cannot identify image file {str(p)!r} (pillow-heif, for HEIC, "
                                         f"is not installed)") from None
        register_heif_opener()
        return Image.open(p)


def open_image(path: str | Path, what: str = "image") -> Image.Image:
    """Open, check size, apply EXIF orientation; returns a loaded Pillow image (any mode)."""
    p = check_input(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = _open(p)
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise TooLarge(f"{p}: {w}x{h} is over the limit of {MAX_IMAGE_PIXELS} pixels")
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"{p}: image is over the limit of {MAX_IMAGE_PIXELS} pixels (decompression bomb?)") from None
    except UnidentifiedImageError:
        raise InvalidMedia(f"{p}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidMedia(f"{p}: broken or truncated image ({str(e).splitlines()[0][:120]})") from None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not stop us; the pixels are fine
        pass
    if min(im.size) < MIN_IMAGE_SIDE:
        raise BadInput(f"{p}: {im.size[0]}x{im.size[1]} is too small (at least {MIN_IMAGE_SIDE} px a side)")
    return im


def to_srgb(im: Image.Image) -> Image.Image:
    """``im`` converted from its embedded ICC profile to sRGB (modes RGB, RGBA, CMYK and L; the
    result is RGB or RGBA). Pictures without a profile, with an sRGB one, or with a profile
    LittleCMS cannot use are returned as they are: their values are taken as sRGB."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(src).lower().replace(" ", ""):
            return im
        return ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGBA" if im.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode → uint8 H×W×3 RGB (sRGB: see :func:`to_srgb`)."""
    im = to_srgb(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        # 16-bit modes always span 0..65535 (a dark 16-bit picture must stay dark); a 32-bit "I"
        # image may hold 8-bit values, so only there the range is guessed from the data.
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGB" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def load_image(path: str | Path, what: str = "image") -> np.ndarray:
    return to_rgb(open_image(path, what))


def stereo_pair(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The two eyes of an MPO stereo photo (a 3D camera's .mpo: its second picture a disparity
    image, or of no stated type but the first one's size), else None: an MPO whose second picture
    is a thumbnail or another angle, or any other file, is one picture."""
    p = check_input(path)
    try:
        with Image.open(p) as im:           # the header alone: most photos end here
            if im.format != "MPO" or getattr(im, "n_frames", 1) < 2:
                return None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None                         # load_image says what is wrong with it
    left = load_image(p)                    # every check of open_image (size, truncation), orientation
    with Image.open(p) as im:
        entries = (getattr(im, "mpinfo", None) or {}).get(0xB002) or []
        kind = entries[1]["Attribute"]["MPType"] if len(entries) > 1 else "Undefined"
        im.seek(1)
        im.load()
        right = to_rgb(ImageOps.exif_transpose(im))
    if kind != "Multi-Frame Image: Disparity" and (kind != "Undefined" or right.shape != left.shape):
        return None
    if right.shape != left.shape:
        right = np.asarray(Image.fromarray(right).resize(left.shape[1::-1], Image.LANCZOS))
    return left, right


def frame_count(path: str | Path) -> int:
    """How many pictures an animated GIF, WebP or PNG (APNG) holds; 1 for any other file, and for
    an MPO (its second picture is another view, see :func:`stereo_pair`, not a later moment)."""
    try:
        with _open(Path(path)) as im:
            if im.format in ("GIF", "WEBP", "PNG") and getattr(im, "is_animated", False):
                return int(im.n_frames)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass                                # load_image says what is wrong with it
    return 1


def is_animated(path: str | Path) -> bool:
    """Whether ``path`` is an animated GIF, WebP or PNG (APNG), known without counting its pictures
    (Pillow looks for a second one only; counting a GIF's reads it all)."""
    try:
        with _open(Path(path)) as im:
            return im.format in ("GIF", "WEBP", "PNG") and bool(getattr(im, "is_animated", False))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False                        # load_image says what is wrong with it


def is_animated_webp(path: str | Path) -> bool:
    """An animated WebP: FFmpeg's WebP decoder reads still pictures only (see :func:`animation`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and is_animated(path)


def animation(path: str | Path):
    """The pictures of an animated GIF, WebP or APNG, each as (uint8 H×W×3 RGB, milliseconds it
    shows), composed as a viewer shows them (Pillow composes partial frames on the canvas; alpha
    on white, as :func:`to_rgb`). For the animated WebP that FFmpeg's decoder cannot read."""
    p = check_input(path)
    with _open(p) as im:
        for k in range(getattr(im, "n_frames", 1)):
            try:
                im.seek(k)
                im.load()
            except (OSError, ValueError, SyntaxError, EOFError) as e:
                raise InvalidMedia(f"{p}: frame {k} is broken ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
            yield to_rgb(im), int(im.info.get("duration") or 0)


def read_xmp(path: str | Path) -> bytes | None:
    """The raw XMP packet of a JPEG/PNG/WebP, if any (360 photos carry GPano there)."""
    with Image.open(path) as im:
        xmp = im.info.get("xmp")
        if xmp is None and hasattr(im, "applist"):
            for marker, data in im.applist:
                if marker == "APP1" and data.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
                    xmp = data.split(b"\x00", 1)[1]
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return xmp


_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
            ".bmp": "BMP", ".mpo": "MPO"}


def image_format(path: str | Path) -> str:
    """Pillow format name for an output path, from its extension; BadInput for an unknown one.

    Pipelines call this before the work starts so a typo in ``-o`` fails at once, not at the end.
    """
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise BadInput(f"{path}: unknown image extension (use .png, .jpg, .webp, .tif or .mpo)")
    return fmt


def save_image(image: np.ndarray, path: str | Path, xmp: bytes | None = None, quality: int = 95,
               eyes: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write uint8 H×W×3 atomically (temporary name, fsync, rename); format from the extension. An
    .mpo written with ``eyes`` holds the two pictures (a stereo pair, left eye first) instead."""
    path = Path(path)
    fmt = image_format(path)
    im = Image.fromarray(np.ascontiguousarray(image))
    kw: dict = {}
    if fmt == "MPO" and eyes is not None:
        im = Image.fromarray(np.ascontiguousarray(eyes[0]))
        kw.update(save_all=True, append_images=[Image.fromarray(np.ascontiguousarray(eyes[1]))])
    if fmt in ("JPEG", "WEBP", "MPO"):
        kw["quality"] = quality
    if xmp is not None and fmt in ("JPEG", "WEBP"):
        kw["xmp"] = xmp
    elif xmp is not None and fmt == "PNG":      # Pillow's PNG writer ignores xmp=: an iTXt chunk
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
        kw["pnginfo"] = info
    elif xmp is not None and fmt == "TIFF":     # tag 700 = XMP
        kw["tiffinfo"] = {700: xmp}
    with atomic_path(path) as tmp:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        tmp.write_bytes(buf.getvalue())
    return path


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 H×W×3 → float32 1×3×H×W in [0,1]."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:     # torch warns on read-only arrays (a decoded frame, np.asarray(PIL))
        image = image.copy()
    t = torch.from_numpy(image).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """1×3×H×W in [0,1] → uint8 H×W×3."""
    return (x.detach()[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())


def fit_size(h: int, w: int, long_edge: int) -> tuple[int, int]:
    """(h, w) scaled so the long edge is ``long_edge`` (0: unchanged)."""
    if not long_edge:
        return h, w
    s = long_edge / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a B×C×H×W tensor."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
