"""CUDA paths, skipped without a GPU. On a GPU machine: ``python -m pytest tests/test_cuda.py``.

The issue's rule for the GPU: no host round trip inside the iteration loop. CUDA's sync debug
mode ("error") turns every synchronizing call (``.item()``, ``.tolist()``, a tensor used as a
Python bool, ``nonzero`` …) into an exception, so each test below runs optimizer steps of a real
objective under it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stylevid.config import PanoramaConfig, StyleConfig
from stylevid.images import load_image, resize, to_tensor
from stylevid.optimize import LBFGS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def pictures(h: int, w: int) -> tuple[torch.Tensor, np.ndarray]:
    content = resize(to_tensor(load_image(SAMPLES / "chelsea.jpg")), (h, w)).cuda()
    return content, np.asarray(load_image(SAMPLES / "swirls.jpg"))


def steps_without_sync(loss_fn, x0: torch.Tensor, n: int = 5, history_dtype=None) -> torch.Tensor:
    """``n`` L-BFGS steps of ``loss_fn`` (the first one outside sync debug: lazy set-up, cuDNN's
    choice of algorithms); returns the last loss, read back only afterwards. ``history_dtype``:
    bfloat16 is how a huge picture keeps its L-BFGS history."""
    x = x0.detach().clone().requires_grad_(True)
    opt = LBFGS(x, 5, history_dtype=history_dtype)

    def closure():
        x.grad = None
        loss = loss_fn(x)
        loss.backward()
        return loss.detach()

    opt.step(closure)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(n):
            loss = opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return loss


@pytest.mark.parametrize("tile_above, history_dtype", [(0, None), (64, None), (64, torch.bfloat16)])
def test_still_objective_steps_make_no_host_round_trip(tile_above, history_dtype):
    """The still loss (encoder, Grams, content, TV), whole and through tiles; the last case with the
    L-BFGS history in bfloat16, as huge pictures keep it."""
    from stylevid.pipelines.still import Stylizer

    content, style = pictures(96, 128)
    st = Stylizer(StyleConfig(device="cuda", tile_above=tile_above, tile=64, tile_halo=32), [style])
    assert st.tiled(96, 128) == bool(tile_above)
    loss = steps_without_sync(st.objective(content), content, history_dtype=history_dtype)
    assert torch.isfinite(loss).item()


def test_360_objective_steps_make_no_host_round_trip():
    from stylevid.pipelines.panorama import PanoramaStylizer

    content, style = pictures(64, 128)
    st = PanoramaStylizer(StyleConfig(device="cuda"), [style], pano=PanoramaConfig(face_size=48))
    objective = st.objective(content, yaw=0.3)
    loss = steps_without_sync(objective, objective.grid_lat.pack(content))   # the packed variable
    assert torch.isfinite(loss).item()


def test_cuda_and_cpu_agree_on_the_loss_and_its_gradient():
    """One evaluation of the still loss on both devices (cuDNN's TF32 convolutions differ a little
    from the CPU's arithmetic), then a whole stylization on CUDA."""
    from stylevid.pipelines.still import Stylizer

    content, style = pictures(96, 128)
    x = (content + 0.05 * torch.randn_like(content)).clamp(0, 1)
    out = {}
    for device in ("cpu", "cuda"):
        fn = Stylizer(StyleConfig(device=device), [style]).objective(content.to(device))
        xd = x.to(device).requires_grad_(True)
        loss = fn(xd)
        loss.backward()
        out[device] = (loss.item(), xd.grad.cpu())
    (lc, gc), (lg, gg) = out["cpu"], out["cuda"]
    assert lg == pytest.approx(lc, rel=1e-2)
    assert torch.nn.functional.cosine_similarity(gc.flatten(), gg.flatten(), dim=0) > 0.98
    st = Stylizer(StyleConfig(device="cuda", size=96, scales=1, iterations=20), [style])
    picture = np.asarray(load_image(SAMPLES / "chelsea.jpg"))
    result, stats = st.stylize(picture)
    assert result.dtype == np.uint8 and max(result.shape[:2]) == 96 and stats["iterations"][0] > 0


def test_a_wide_360_picture_packs_on_cuda_as_on_the_cpu():
    """The latitude grid shrinks the polar rows of a 1024-wide picture 256:1, which CUDA's
    antialiased resize cannot do (shared memory): packing runs on the CPU and comes back."""
    from stylevid.sphere import LatitudeGrid

    content, _ = pictures(512, 1024)
    grid = LatitudeGrid.for_views(512, 1024, 256, 90.0)
    packed = grid.pack(content)
    assert packed.device.type == "cuda"
    assert torch.allclose(packed.cpu(), grid.pack(content.cpu()), atol=1e-6)
    assert torch.allclose(grid.unpack(packed).cpu(), grid.unpack(packed.cpu()), atol=1e-5)


def test_dream_steps_read_the_loss_back_once_every_ten():
    """A dream octave's gradient steps on CUDA: the loss comes back to the host for the progress
    line every GPU_READBACK steps (and at the last), nowhere else in the loop."""
    import warnings

    from stylevid.config import DreamConfig
    from stylevid.pipelines.dream import Dreamer

    content, _ = pictures(64, 96)
    d = Dreamer(DreamConfig(device="cuda", jitter=8), device="cuda")
    seen = []
    d.on_event = seen.append
    g = torch.Generator().manual_seed(0)
    d._ascend(content, content, None, g, 0, 1, None, 2)       # set-up outside the count
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            d._ascend(content, content, None, g, 0, 1, None, 20)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) <= 2 + 1, [str(w.message)[:120] for w in syncs]   # steps 10 and 20 (+ the objective's set-up)
    losses = [e.loss for e in seen if getattr(e, "loss", None) is not None]
    assert losses
