"""hdr.py and the reader: HDR (PQ, HLG) and BT.2020 frames read as the SDR pictures they show."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from stylevid.hdr import (BT2020_TO_BT709, HLG, KNEE, PQ, REFERENCE_WHITE, compress_highlights, hlg_to_nits,
                          pq_to_nits, to_sdr, transfer_name)

# -- the inverse transforms (SDR picture → HDR code values), to write test clips ----------------------


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = (np.asarray(nits, np.float64) / 10000) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def nits_to_hlg(nits: np.ndarray, peak: float = 1000.0) -> np.ndarray:
    """Display light (…×3, BT.2020 RGB, nits) to HLG code values: the inverse OOTF, then the OETF."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    d = np.asarray(nits, np.float64) / peak
    yd = (d * np.array([0.2627, 0.6780, 0.0593])).sum(-1, keepdims=True)
    ys = np.maximum(yd, 1e-12) ** (1 / 1.2)
    e = np.clip(d / np.maximum(ys, 1e-12) ** 0.2, 0, 1)
    return np.where(e <= 1 / 12, np.sqrt(3 * e), a * np.log(np.maximum(12 * e - b, 1e-12)) + c)


def sdr_to_hdr(picture: np.ndarray, transfer: str) -> np.ndarray:
    """An SDR uint8 picture as 16-bit BT.2020 R'G'B' code values that show it (SDR white at 203 nits)."""
    light = (picture / 255.0) ** 2.4 @ np.linalg.inv(BT2020_TO_BT709.double().numpy()).T * REFERENCE_WHITE
    code = nits_to_pq(light) if transfer == PQ else nits_to_hlg(light)
    return np.round(np.clip(code, 0, 1) * 65535).astype(np.uint16)


def hdr_clip(path, pictures, transfer: str):
    """A 10-bit H.264 clip of ``pictures`` (lossless) encoded as HDR (BT.2020 primaries and matrix,
    PQ or HLG). Not x265: pillow-heif (loaded once a test reads a HEIC photo) brings its own libx265,
    and PyAV's x265 encoder in the same process then now and then gives packets the MP4 muxer refuses."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = pictures[0].shape[1], pictures[0].shape[0], "yuv420p10le"
        s.time_base = s.codec_context.time_base = Fraction(1, 10)   # both, as tests/clips.py says
        cc = s.codec_context
        cc.color_primaries, cc.colorspace, cc.color_range = 9, 9, 1          # BT.2020, BT.2020 NCL, limited
        cc.color_trc = 16 if transfer == PQ else 18
        for i, p in enumerate(pictures):
            f = av.VideoFrame.from_ndarray(sdr_to_hdr(p, transfer), format="rgb48le")
            f = f.reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=1)
            f.pts, f.time_base = i, Fraction(1, 10)
            for pkt in s.encode(f):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def patches(seed: int = 0) -> np.ndarray:
    """A 64×96 picture of 16 px flat patches of SDR colours under the highlight knee (≤ 215) and
    above the darkest levels (≥ 40), where 10-bit YUV's rounding moves 8-bit gamma values most."""
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(40, 215, (4, 6, 3)), np.ones((16, 16, 1))).astype(np.uint8)


# -- the math ------------------------------------------------------------------------------------------------


def test_transfer_names():
    assert transfer_name(16) == PQ and transfer_name(18) == HLG
    assert transfer_name(1) == transfer_name(2) == transfer_name(None) == transfer_name(14) == ""


def test_pq_is_the_st2084_eotf():
    nits = np.array([0.0, 0.1, 1, 100, 203, 1000, 4000, 10000])
    back = pq_to_nits(torch.tensor(nits_to_pq(nits), dtype=torch.float64)).numpy()
    assert np.allclose(back, nits, rtol=1e-6, atol=1e-6)
    assert nits_to_pq(np.array([100.0]))[0] == pytest.approx(0.5081, abs=1e-4)    # the standard's 100-nit code


def test_hlg_reference_white_is_203_nits():
    """BT.2408: HLG at 75 % signal is reference white, 203 nits on a 1000-nit display."""
    grey = torch.full((1, 3), 0.75, dtype=torch.float64)
    assert hlg_to_nits(grey).numpy() == pytest.approx(203, abs=1.5)
    colours = np.array([[20.0, 80.0, 150.0], [203.0, 203.0, 203.0], [600.0, 300.0, 50.0]])
    assert hlg_to_nits(torch.tensor(nits_to_hlg(colours))).numpy() == pytest.approx(colours, rel=1e-5)


def test_highlights_are_compressed_smoothly():
    m = torch.linspace(0, 8, 801)
    x = torch.stack([m, m / 2, m / 4], -1)
    y = compress_highlights(x)
    top = y[:, 0]
    assert torch.equal(y[m <= KNEE], x[m <= KNEE])                            # untouched below the knee
    assert (top.diff() > 0).all() and (top < 1).all()                         # monotonic, never past white
    assert torch.allclose(y[1:, 1] / y[1:, 0], torch.full_like(m[1:], 0.5), atol=1e-5)             # hue kept
    h = 1e-4                                                                  # no kink at the knee:
    k = torch.tensor([[KNEE - h, 0, 0], [KNEE, 0, 0], [KNEE + h, 0, 0]], dtype=torch.float64)
    f = compress_highlights(k)[:, 0]
    assert float((f[2] - f[1]) / h) == pytest.approx(float((f[1] - f[0]) / h), rel=1e-3)


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_an_hdr_picture_reads_as_the_sdr_picture_it_shows(transfer):
    sdr = patches()
    back = to_sdr(sdr_to_hdr(sdr, transfer), transfer, wide=True)
    assert np.abs(back.astype(float) - sdr).max() <= 1.0
    naive = (sdr_to_hdr(sdr, transfer) // 257).astype(float)                  # code values shown as SDR
    assert np.abs(naive - sdr).mean() > 10
    white = (sdr_to_hdr(np.full((1, 1, 3), 255, np.uint8), transfer) // 257).max()
    assert white == (148 if transfer == PQ else 191)                          # SDR white shown dark
    assert to_sdr(sdr_to_hdr(np.full((1, 1, 3), 255, np.uint8), transfer), transfer, True).min() >= 240


def test_reference_white_is_near_white_and_brighter_stays_below_clipping():
    for nits, low, high in ((REFERENCE_WHITE, 240, 250), (1000.0, 252, 255), (4000.0, 254, 255)):
        code = np.round(nits_to_pq(np.full((1, 1, 3), nits)) * 65535).astype(np.uint16)
        v = int(to_sdr(code, PQ, wide=True)[0, 0, 0])
        assert low <= v <= high, (nits, v)


def test_bt2020_sdr_only_converts_the_primaries():
    red709 = np.array([[[1.0, 0.0, 0.0]]])
    red2020 = red709 @ np.linalg.inv(BT2020_TO_BT709.double().numpy()).T
    code = np.round(red2020 ** (1 / 2.4) * 65535).astype(np.uint16)
    assert to_sdr(code, "", wide=True)[0, 0].tolist() == [255, 0, 0]
    assert (code // 257)[0, 0, 1] > 60                                        # read as is, it is orange-ish


# -- through the reader and the pipeline ---------------------------------------------------------------


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_the_reader_gives_the_sdr_picture_of_an_hdr_clip(tmp_path, transfer):
    from stylevid.video import probe, read_frames

    sdr = [patches(0), patches(1)]
    clip = hdr_clip(tmp_path / f"{transfer}.mp4", sdr, transfer)
    meta = probe(clip)
    assert meta.hdr == transfer and meta.wide_gamut and meta.pix_fmt == "yuv420p10le"
    frames = [f.image for f in read_frames(clip)]
    for got, want in zip(frames, sdr):
        err = np.abs(got[4::16, 4::16].astype(float) - want[4::16, 4::16])    # patch centres (4:2:0 chroma)
        assert err.max() <= 3, err.max()
    with av.open(str(clip)) as c:                                             # the trap: read as rgb24
        naive = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(naive[4::16, 4::16].astype(float) - sdr[0][4::16, 4::16]).mean() > 10


def test_an_hdr_video_is_painted_as_sdr_and_says_so(tmp_path):
    import json

    from stylevid.config import StyleConfig, VideoConfig
    from stylevid.events import Message
    from stylevid.images import save_image
    from stylevid.pipelines.video import stylize_video
    from stylevid.video import probe

    clip = hdr_clip(tmp_path / "hlg.mp4", [patches(0), patches(0)], HLG)
    save_image(patches(2), tmp_path / "style.png")
    events = []
    out = stylize_video(clip, tmp_path / "style.png", tmp_path / "o.mp4", StyleConfig(scales=1, iterations=2),
                        VideoConfig(first_iterations=2, iterations=1, reveal_iterations=0), on_event=events.append)
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert warnings == ["hlg.mp4: HDR video (HLG, BT.2020, yuv420p10le): tone-mapped to SDR for painting; the "
                        "output is SDR (BT.709, 8-bit)"]
    meta = probe(out)
    assert not meta.hdr and not meta.wide_gamut and meta.pix_fmt == "yuv420p"
    assert json.loads((tmp_path / "o.mp4.json").read_text())["input_colour"] == {"hdr": "hlg", "bt2020": True}
