"""Reading and writing still images (images.py): every odd mode becomes uint8 H×W×3 RGB."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from stylevid.errors import BadInput, InputNotFound, InvalidMedia, TooLarge
from stylevid.images import fit_size, load_image, read_xmp, resize, save_image, to_tensor, to_uint8

W, H = 48, 32


def rgb(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def check_rgb(a: np.ndarray, h: int = H, w: int = W) -> None:
    assert a.dtype == np.uint8 and a.shape == (h, w, 3)


def bomb_png(path, width: int = 20000, height: int = 20000) -> None:
    """A PNG whose header declares ``width×height`` 1-bit pixels, with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_rgb_round_trip(tmp_path):
    a = rgb()
    save_image(a, tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), a)


def test_cmyk(tmp_path):
    Image.new("CMYK", (W, H), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    a = load_image(tmp_path / "c.jpg")
    check_rgb(a)
    r, g, b = a.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (W, H), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # 0: black (transparent), 1: red
    im.paste(1, (0, 0, W // 2, H))
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    assert Image.open(tmp_path / "p.png").mode == "P"
    a = load_image(tmp_path / "p.png")
    check_rgb(a)
    assert tuple(a[0, 0]) == (255, 0, 0)
    assert tuple(a[0, -1]) == (255, 255, 255)  # transparent: composited on white, not black


def test_16_bit_grayscale(tmp_path):
    ramp = np.linspace(0, 65535, W).round().astype(np.uint16)[None].repeat(H, 0)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    a = load_image(tmp_path / "g16.png")
    check_rgb(a)
    assert a[0, 0, 0] == 0 and a[0, -1, 0] == 255
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


def test_dark_16_bit_picture_stays_dark(tmp_path):
    # All values ≤ 255 of 65535: nearly black. Taking them for 8-bit values would make them bright.
    dark = (np.arange(H * W) % 256).astype(np.uint16).reshape(H, W)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert load_image(tmp_path / "dark16.png").max() <= 1


def test_grayscale(tmp_path):
    g = np.random.default_rng(1).integers(0, 256, (H, W), dtype=np.uint8)
    Image.fromarray(g, "L").save(tmp_path / "l.png")
    a = load_image(tmp_path / "l.png")
    check_rgb(a)
    assert np.array_equal(a[..., 0], g) and np.array_equal(a[..., 2], g)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_composited_on_white(tmp_path, mode):
    color = (0, 0) if mode == "LA" else (0, 0, 0, 0)
    im = Image.new(mode, (W, H), color)                   # transparent black
    im.paste((0, 255) if mode == "LA" else (0, 0, 0, 255), (0, 0, W // 2, H))  # opaque black on the left
    im.save(tmp_path / f"{mode}.png")
    a = load_image(tmp_path / f"{mode}.png")
    check_rgb(a)
    assert tuple(a[0, 0]) == (0, 0, 0)
    assert tuple(a[0, -1]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(rgb())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    a = load_image(tmp_path / "rot.jpg")
    check_rgb(a, h=W, w=H)  # dimensions swapped


def test_decompression_bomb_is_too_large(tmp_path):
    p = tmp_path / "bomb.png"
    bomb_png(p)
    assert p.stat().st_size < 200  # a tiny file declaring 400 megapixels
    with pytest.raises(TooLarge, match="bomb.png") as e:
        load_image(p)
    assert e.value.code == 5


def test_just_over_the_pixel_limit_is_too_large(tmp_path):
    from stylevid.config import MAX_IMAGE_PIXELS

    p = tmp_path / "big.png"
    Image.new("1", (MAX_IMAGE_PIXELS // 4096 + 1, 4096)).save(p)  # over the limit, under Pillow's 2x error
    with pytest.raises(TooLarge):
        load_image(p)


def test_truncated_jpeg_is_invalid_media(tmp_path):
    save_image(rgb(), tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidMedia, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_random_bytes_are_invalid_media(tmp_path):
    p = tmp_path / "noise.jpg"
    p.write_bytes(os.urandom(4096))
    with pytest.raises(InvalidMedia, match="noise.jpg") as e:
        load_image(p)
    assert e.value.code == 4


def test_text_file_is_invalid_media(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("not a picture\n")
    with pytest.raises(InvalidMedia):
        load_image(p)


def test_empty_directory_and_missing(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadInput, match="empty") as e:
        load_image(tmp_path / "empty.png")
    assert type(e.value) is BadInput
    with pytest.raises(BadInput, match="directory") as e:
        load_image(tmp_path)
    assert type(e.value) is BadInput
    with pytest.raises(InputNotFound, match="missing.png") as e:
        load_image(tmp_path / "missing.png")
    assert e.value.code == 3


def test_tiny_image_is_bad_input(tmp_path):
    save_image(rgb(h=8, w=8), tmp_path / "tiny.png")
    with pytest.raises(BadInput, match="too small"):
        load_image(tmp_path / "tiny.png")


def test_save_image_is_atomic(tmp_path):
    out = tmp_path / "out.png"
    save_image(rgb(1), out)
    save_image(rgb(2), out)  # replaces
    assert np.array_equal(load_image(out), rgb(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporaries left


def test_save_image_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(BadInput, match="extension"):
        save_image(rgb(), tmp_path / "out.xyz")
    with pytest.raises(BadInput):
        save_image(rgb(), tmp_path / "noext")
    assert list(tmp_path.iterdir()) == []


def test_save_image_failure_leaves_nothing(tmp_path):
    with pytest.raises(Exception):
        save_image(np.zeros((4, 4, 7), np.uint8), tmp_path / "bad.png")  # 7 channels: not a picture
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_xmp_round_trip(tmp_path, ext):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
           b'GPano:ProjectionType="equirectangular"/></rdf:RDF></x:xmpmeta>')
    out = save_image(rgb(), tmp_path / f"pano{ext}", xmp=xmp)
    assert read_xmp(out) == xmp
    check_rgb(load_image(out))
    save_image(rgb(), tmp_path / f"plain{ext}")
    assert read_xmp(tmp_path / f"plain{ext}") is None


def test_tensor_conversions_and_sizes():
    a = rgb()
    t = to_tensor(a)
    assert t.shape == (1, 3, H, W) and t.dtype.is_floating_point
    assert 0 <= t.min() and t.max() <= 1
    assert np.array_equal(to_uint8(t), a)
    assert np.array_equal(to_uint8(t * 2 - 0.5).max(), 255)  # clamped
    assert fit_size(300, 451, 64) == (43, 64)
    assert fit_size(451, 300, 64) == (64, 43)
    assert fit_size(30, 40, 0) == (30, 40)
    assert resize(t, (16, 24)).shape == (1, 3, 16, 24)
    assert resize(t, (H, W)) is t


# -- colour profiles and HEIC ----------------------------------------------------------------------------

P3_D50 = np.array([[0.5151, 0.2919, 0.1572], [0.2412, 0.6922, 0.0666], [-0.0011, 0.0419, 0.7841]])   # columns r g b
SRGB_D50 = np.array([[0.4361, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7141]])


def matrix_profile(columns: np.ndarray, gamma: float = 2.2, name: str = "Test P3") -> bytes:
    """A minimal ICC v2 RGB display profile: primaries (D50 XYZ columns), one gamma for every channel."""
    import struct

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z):
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = name.encode() + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*columns[:, 0])),
            (b"gXYZ", xyz(*columns[:, 1])), (b"bXYZ", xyz(*columns[:, 2])), (b"rTRC", curv), (b"gTRC", curv),
            (b"bTRC", curv), (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def p3_to_srgb(rgb: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """What the profile above means in sRGB: gamma, P3 → XYZ (D50) → linear sRGB, sRGB's curve."""
    lin = (rgb / 255.0) ** gamma @ (np.linalg.inv(SRGB_D50) @ P3_D50).T
    lin = np.clip(lin, 0, 1)
    v = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return v * 255


def test_a_display_p3_picture_is_converted_to_srgb(tmp_path):
    rng = np.random.default_rng(0)
    a = np.kron(rng.integers(30, 220, (4, 6, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    a[:8, :8] = (230, 40, 40)                                       # a red outside sRGB: clipped there
    for ext in (".png", ".jpg"):
        Image.fromarray(a).save(tmp_path / f"p3{ext}", icc_profile=matrix_profile(P3_D50), quality=100)
        got = load_image(tmp_path / f"p3{ext}").astype(float)
        want = p3_to_srgb(a.astype(float))
        assert np.abs(got - want)[2::8, 2::8].max() <= 4, (ext, np.abs(got - want).max())
        assert np.abs(got - a).mean() > 3                           # the profile changed the values
    red = load_image(tmp_path / "p3.png")[2, 2]
    assert red[0] > 245 and red[1] < 10, red                        # outside sRGB: green clipped to 0 (P3 red)
    Image.fromarray(a).save(tmp_path / "plain.png")                 # no profile: the values are sRGB already
    assert np.array_equal(load_image(tmp_path / "plain.png"), a)


def test_srgb_and_broken_profiles_leave_the_values(tmp_path):
    from PIL import ImageCms

    a = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(a).save(tmp_path / "s.png", icc_profile=srgb)
    Image.fromarray(a).save(tmp_path / "b.png", icc_profile=b"not a profile at all")
    assert np.array_equal(load_image(tmp_path / "s.png"), a)
    assert np.array_equal(load_image(tmp_path / "b.png"), a)


def test_heic_photos_are_read(tmp_path):
    yy, xx = np.mgrid[0:48, 0:64]
    a = np.stack([xx * 3, yy * 4, 255 - xx * 2], -1).astype(np.uint8)  # smooth: survives 4:2:0 chroma
    import pillow_heif

    pillow_heif.from_pillow(Image.fromarray(a)).save(tmp_path / "phone.heic", quality=95)   # Pillow alone cannot
    got = load_image(tmp_path / "phone.heic")
    assert got.shape == a.shape and np.abs(got.astype(float) - a).mean() < 3


def test_animations_are_counted_and_read_composed_with_their_durations(tmp_path):
    from stylevid.images import animation, frame_count, is_animated, is_animated_webp

    frames = [np.full((H, W, 3), 40 * k, np.uint8) for k in range(4)]
    frames[2][: H // 2] = 250                       # a frame that differs from the one before in half
    pics = [Image.fromarray(f) for f in frames]
    for ext in ("gif", "webp", "png"):               # png: APNG
        p = tmp_path / f"a.{ext}"
        pics[0].save(p, save_all=True, append_images=pics[1:], duration=[50, 100, 30, 70], loop=0)
        assert frame_count(p) == 4 and is_animated(p) and is_animated_webp(p) == (ext == "webp")
        got = list(animation(p))
        assert [d for _, d in got] == [50, 100, 30, 70]
        for (a, _), f in zip(got, frames):        # whole pictures (WebP and GIF store changed parts only)
            assert a.shape == (H, W, 3) and np.abs(a.astype(int) - f).max() <= (12 if ext == "webp" else 0)
    still = tmp_path / "still.gif"
    pics[0].save(still)
    assert frame_count(still) == 1 and frame_count(tmp_path / "missing.gif") == 1
    assert not is_animated(still) and not is_animated(tmp_path / "missing.gif")
    mpo = tmp_path / "pair.mpo"                      # two views of one moment, not an animation
    pics[0].save(mpo, save_all=True, append_images=[pics[1]])
    assert frame_count(mpo) == 1 and not is_animated(mpo)


def test_a_picture_pillow_cannot_name_is_bad_media_even_without_pillow_heif(tmp_path, monkeypatch):
    """pillow-heif is imported only for a file Pillow cannot identify; where it is missing (an
    install without dependencies: a GPU machine's ran so) such a file is still "not an image",
    exit 4, not a crash."""
    import builtins

    from PIL import Image

    from stylevid import images
    from stylevid.errors import InvalidMedia

    monkeypatch.setattr(Image, "OPEN", {k: v for k, v in Image.OPEN.items() if k != "HEIF"})
    monkeypatch.setattr(Image, "ID", [k for k in Image.ID if k != "HEIF"])
    real = builtins.__import__

    def no_heif(name, *a, **kw):
        if name == "pillow_heif":
            raise ModuleNotFoundError("No module named 'pillow_heif'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_heif)
    f = tmp_path / "x.jpg"
    f.write_bytes(b"\x00" * 200)
    with pytest.raises(InvalidMedia):
        images.load_image(f)
