import cv2
import numpy as np
import pytest
import torch

from stylevid.errors import WeightsError
from stylevid.flow import FlowCache, FlowPrefetcher, estimate_flow, flicker_series, flow_pair, to_tensor
from stylevid.warp import reliability, warp

H, W = 64, 96


def texture(h=H, w=W, seed=0):
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 2.0)
    x = (x - x.min()) / (x.max() - x.min())
    return (x * 255).round().astype(np.uint8)


def interior(f, m=10):
    return f[m:-m, m:-m]


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_known_shift_recovered(method):
    a = texture()
    b = np.roll(a, 3, axis=1)                 # b(x) = a(x - 3): a's pixels moved +3 in x
    f = estimate_flow(a, b, method)
    assert f.shape == (H, W, 2) and f.dtype == np.float32
    err = np.abs(interior(f) - np.array([3.0, 0.0], np.float32))
    assert err.max() < 0.5 and err.mean() < 0.1, (method, err.max())
    # warp(b, flow) ≈ a
    out = warp(torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255, to_tensor(f))
    ref = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    assert (out - ref)[..., 10:-10, 10:-10].abs().mean() < 0.03


def test_flow_pair_backward_is_minus_forward():
    a = texture(seed=1)
    b = np.roll(np.roll(a, 2, axis=1), -1, axis=0)
    fwd, bwd = flow_pair(a, b, "dis")
    assert fwd.shape == (1, 2, H, W) and bwd.shape == (1, 2, H, W)
    i = (..., slice(10, -10), slice(10, -10))
    assert (fwd[i] + bwd[i]).abs().mean() < 0.3
    assert abs(fwd[i][:, 0].mean().item() - 2) < 0.3 and abs(fwd[i][:, 1].mean().item() + 1) < 0.3
    m = reliability(fwd, bwd)
    assert m[i].mean() > 0.9


def test_wrap_x_finds_motion_across_seam():
    a = texture(seed=2)
    b = np.roll(a, 4, axis=1)                 # periodic image, seam moves too
    f = estimate_flow(a, b, "dis", wrap_x=True)
    seam = np.concatenate([f[8:-8, :6], f[8:-8, -6:]], axis=1)
    assert np.abs(seam[..., 0] - 4).mean() < 0.5 and np.abs(seam[..., 1]).mean() < 0.5
    out = warp(torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255, to_tensor(f), wrap_x=True)
    ref = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    assert (out - ref)[..., 8:-8, :].abs().mean() < 0.03


def test_cache_round_trip_and_reuse(tmp_path, monkeypatch):
    a, b = texture(seed=3), np.roll(texture(seed=3), 2, axis=1)
    cache = FlowCache(tmp_path / "flows")
    assert cache.get(5, "dis", False) is None
    f, bw = cache.get_or_compute(5, a, b, "dis")
    assert cache.path(5).is_file()
    assert not list((tmp_path / "flows").glob(".*part*"))
    f2, b2 = FlowCache(tmp_path / "flows").get(5, "dis", False, (H, W))
    np.testing.assert_array_equal(f, f2)
    np.testing.assert_array_equal(bw, b2)
    assert f2.dtype == np.float32
    # a different method, wrap or size is a miss
    assert cache.get(5, "farneback", False) is None
    assert cache.get(5, "dis", True) is None
    assert cache.get(5, "dis", False, (H, W + 1)) is None
    # reuse: no recomputation on a hit
    import stylevid.flow as flow_mod
    monkeypatch.setattr(flow_mod, "flow_pair_np", lambda *a, **k: pytest.fail("recomputed"))
    f3, _ = cache.get_or_compute(5, a, b, "dis")
    np.testing.assert_array_equal(f, f3)
    # a corrupt file counts as missing
    cache.path(6).write_bytes(b"not a zip")
    assert cache.get(6, "dis", False) is None


def test_prefetcher_matches_direct(tmp_path):
    # The same pair, in the same direction, to the bit. (This was loosened to 0.1 px once: in full
    # runs the main thread's DIS object had seen other frame sizes in earlier tests, and such an
    # object gives other flows; see the test below. Alone, the test was bit-equal.)
    def same(a, b):
        assert torch.equal(to_tensor(a), b), float((to_tensor(a) - b).abs().max())

    frames = [np.roll(texture(seed=4), 2 * i * i, axis=1) for i in range(3)]
    direct = [flow_pair(frames[i - 1], frames[i], "dis") for i in (1, 2)]
    with FlowPrefetcher("dis") as pf:
        pf.submit(1, frames[0], frames[1])
        pf.submit(2, frames[1], frames[2])
        for k, t in enumerate((1, 2)):
            f, b = pf.get(t)
            same(f, direct[k][0])
            same(b, direct[k][1])
        f, _ = pf.get(1, frames[0], frames[1])       # not submitted: computed now
        same(f, direct[0][0])
        with pytest.raises(KeyError):
            pf.get(9)
    cache = FlowCache(tmp_path)
    with FlowPrefetcher("dis", cache=cache) as pf:
        pf.submit(1, frames[0], frames[1])
        f, _ = pf.get(1)
    assert cache.path(1).is_file()
    same(f, direct[0][0].half().float())             # float16 on disk: the direct flow rounded so


def test_raft_without_weights_raises(tmp_path):
    a = texture()
    with pytest.raises(WeightsError, match="weights"):
        estimate_flow(a, a, "raft")
    with pytest.raises(WeightsError, match="not found"):
        estimate_flow(a, a, "raft", weights_path=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError):
        estimate_flow(a, a, "raft", weights_path=bad)


def test_raft_from_file_runs(tmp_path):
    # The architecture with a file of (here arbitrary) weights: checks loading, padding and shapes.
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    p = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), p)
    a = texture(h=36, w=44)
    f = estimate_flow(a, a, "raft", weights_path=p, device="cpu", raft_iters=2)
    assert f.shape == (36, 44, 2) and f.dtype == np.float32 and np.isfinite(f).all()


def test_flicker_series():
    base = texture(seed=5)
    inputs = [np.roll(base, 2 * i, axis=1) for i in range(4)]
    assert max(flicker_series(inputs, inputs)) < 0.01
    rng = np.random.default_rng(0)
    noisy = [np.clip(x.astype(np.int16) + rng.integers(-40, 40, x.shape), 0, 255).astype(np.uint8) for x in inputs]
    s = flicker_series(inputs, noisy)
    assert len(s) == 3 and min(s) > 0.02
    # outputs at another size: inputs are resized to them
    small = [cv2.resize(x, (W // 2, H // 2), interpolation=cv2.INTER_AREA) for x in inputs]
    assert len(flicker_series(inputs, small)) == 3


def test_dis_gives_the_same_flow_whatever_sizes_the_thread_saw_before():
    """A DIS object that had computed 33 px wide flows gave 48 px wide ones up to 2.2 px off: a
    resumed video then differed from an uninterrupted one. One object per frame size."""
    import threading

    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    base = cv2.resize(base, (120, 80), interpolation=cv2.INTER_LINEAR)     # smooth enough to track
    a, b = base[:32, :48], base[2:34, 3:51]
    fresh = []
    t = threading.Thread(target=lambda: fresh.append(estimate_flow(a, b)))
    t.start()
    t.join()
    estimate_flow(base[:22, :33], base[1:23, 2:35])       # this thread sees another size first
    assert np.array_equal(estimate_flow(a, b), fresh[0])
