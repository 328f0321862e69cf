"""HDR and wide-gamut video frames as the SDR pictures stylevid paints.

Phones record HDR by default (an iPhone's video is HLG, BT.2020, 10-bit). Read as if it were an SDR
picture, an HDR frame is too dark and dull: SDR white, shown at HDR's reference white (203 nits),
has the code value 148/255 in PQ and 191/255 in HLG, and BT.2020's primaries shown as BT.709's lose
saturation (tests/test_hdr.py measures both). So the reader asks swscale for 16-bit
R'G'B' (the YUV matrix and range undone, nothing rounded to 8 bits yet) and :func:`to_sdr` makes it
an SDR picture:

1. the transfer function undone to display light in nits (PQ: SMPTE ST 2084 absolutely; HLG: its
   inverse OETF and the BT.2100 OOTF for a 1000-nit display, system gamma 1.2);
2. BT.2408's HDR reference white (203 nits) made SDR white (1.0);
3. BT.2020 primaries converted to BT.709 in linear light;
4. highlights above ``KNEE`` compressed smoothly towards 1 on the largest channel (hue kept);
5. encoded for a BT.1886 display (gamma 2.4), as 8 bits.

An SDR video with BT.2020 primaries (rare) only gets step 3, between BT.1886 decoding and encoding.
The output video is SDR BT.709: painting changes every pixel anyway, and an 8-bit style image has no
HDR to give. Torch-only math on arrays.
"""
from __future__ import annotations

import numpy as np
import torch

PQ, HLG = "pq", "hlg"
TRANSFERS = {16: PQ, 18: HLG}      # AVColorTransferCharacteristic: SMPTE ST 2084, ARIB STD-B67
BT2020 = 9                         # AVColorPrimaries
REFERENCE_WHITE = 203.0            # nits (ITU-R BT.2408): HDR reference white, made SDR white
HLG_PEAK = 1000.0                  # nits: the display HLG is rendered for (BT.2100's reference)
KNEE = 0.75                        # SDR level above which highlights are compressed, not clipped

# Linear BT.2020 RGB to linear BT.709 RGB (ITU-R BT.2087).
BT2020_TO_BT709 = torch.tensor([[1.6605, -0.5876, -0.0728],
                                [-0.1246, 1.1329, -0.0083],
                                [-0.0182, -0.1006, 1.1187]])
BT2020_LUMA = torch.tensor([0.2627, 0.6780, 0.0593])


def transfer_name(trc: int | None) -> str:
    """"pq", "hlg", or "" (an SDR transfer) for a frame's ``color_trc``."""
    return TRANSFERS.get(int(trc or 0), "")


def pq_to_nits(e: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 EOTF: PQ code values in [0, 1] to display light in nits (0-10000)."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = e.clamp(0, 1) ** (1 / m2)
    return 10000 * ((p - c1).clamp(min=0) / (c2 - c3 * p)) ** (1 / m1)


def hlg_to_nits(e: torch.Tensor, peak: float = HLG_PEAK) -> torch.Tensor:
    """HLG code values (…×3, RGB in [0, 1]) to display light in nits: the inverse OETF (scene light),
    then the BT.2100 OOTF for a ``peak``-nit display (gamma 1.2 on the luminance)."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = e.clamp(0, 1)
    scene = torch.where(e <= 0.5, e * e / 3, (torch.exp((e - c) / a) + b) / 12)
    luma = (scene * BT2020_LUMA).sum(-1, keepdim=True)
    return peak * luma.clamp(min=1e-12) ** 0.2 * scene


def compress_highlights(x: torch.Tensor, knee: float = KNEE) -> torch.Tensor:
    """Linear RGB (…×3, SDR white 1) with its largest channel m mapped through a curve that is m up
    to ``knee`` and then approaches 1 (a Reinhard curve, same slope at the knee): reference white
    (m = 1) becomes 0.875, 1000 nits 0.986, 10000 nits 0.999; hue kept."""
    m = x.amax(-1, keepdim=True).clamp(min=1e-12)
    room = 1 - knee
    over = (m - knee).clamp(min=0)
    curve = torch.where(m <= knee, m, knee + room * over / (over + room))
    return x * (curve / m)


def to_sdr(rgb16: np.ndarray, transfer: str, wide: bool) -> np.ndarray:
    """An H×W×3 uint16 R'G'B' frame (full range) to an SDR BT.709 uint8 picture. ``transfer``:
    "pq", "hlg" or "" (SDR: BT.1886); ``wide``: BT.2020 primaries."""
    e = torch.from_numpy(rgb16.astype(np.float32)) / 65535
    if transfer == PQ:
        light = pq_to_nits(e) / REFERENCE_WHITE
    elif transfer == HLG:
        light = hlg_to_nits(e) / REFERENCE_WHITE
    elif transfer == "":
        light = e ** 2.4
    else:
        raise ValueError(f"transfer {transfer!r}: pq, hlg or ''")
    if wide:
        light = (light @ BT2020_TO_BT709.T).clamp(min=0)
    if transfer:
        light = compress_highlights(light)
    v = light.clamp(0, 1) ** (1 / 2.4)
    return (v * 255).round().to(torch.uint8).numpy()


__all__ = ["PQ", "HLG", "BT2020", "REFERENCE_WHITE", "HLG_PEAK", "KNEE", "transfer_name", "pq_to_nits",
           "hlg_to_nits", "compress_highlights", "to_sdr"]
