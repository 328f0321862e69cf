"""The pixel optimizer loop (optimize.py)."""
from __future__ import annotations

import pytest
import torch

from stylevid.events import Progress
from stylevid.config import StyleConfig
from stylevid.optimize import optimize


def opts(optimizer: str = "lbfgs", lr: float = 0.02, tol: float = 0, patience: int = 1000) -> StyleConfig:
    return StyleConfig(optimizer=optimizer, lr=lr, early_stop_tol=tol, early_stop_patience=patience)


def closure_for(x: torch.Tensor, loss):
    """An optimizer closure: ``loss(x)`` with its gradient in ``x.grad``."""
    def closure():
        x.grad = None
        v = loss(x)
        v.backward()
        return v
    return closure


def quadratic(target: torch.Tensor):
    return lambda x: (x - target).pow(2).sum()


@pytest.fixture
def target():
    return torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


@pytest.mark.parametrize("name,lr", [("lbfgs", 0.02), ("adam", 0.05)])
def test_optimizers_decrease_a_quadratic(target, name, lr):
    x0 = torch.zeros_like(target)
    start = quadratic(target)(x0).item()
    x, used, final = optimize(x0, quadratic(target), 30, opts(name, lr))
    assert used == 30
    assert final < 0.2 * start
    assert quadratic(target)(x).item() < 0.2 * start
    assert not x.requires_grad and x0.abs().sum() == 0  # the input is left alone


def test_lbfgs_solves_the_quadratic(target):
    x, _, _ = optimize(torch.full_like(target, 0.5), quadratic(target), 20, opts())
    assert torch.allclose(x, target, atol=1e-3)


def test_early_stop_on_a_flat_loss():
    events = []
    flat = lambda x: (x * 0).sum() + 1.0  # noqa: E731  constant loss, zero gradient
    x, used, final = optimize(torch.rand(1, 3, 4, 4), flat, 100, opts("adam", tol=1e-3, patience=5),
                              on_event=events.append)
    assert used == 6  # patience + 1 iterations to see that nothing improved
    assert final == pytest.approx(1.0)
    last = events[-1]
    assert isinstance(last, Progress) and last.done == last.total == 100 and "early" in last.detail


def test_no_early_stop_while_improving(target):
    _, used, _ = optimize(torch.zeros_like(target), quadratic(target), 15, opts("adam", 0.01, 1e-3, 3))
    assert used == 15


def test_pixels_stay_in_unit_range():
    # The optimum (-1 and 2) lies outside [0,1]; the result is clamped every iteration.
    target = torch.tensor([-1.0, 2.0]).repeat(1, 3, 4, 2)
    seen = []
    for name in ("lbfgs", "adam"):
        x, _, _ = optimize(torch.full_like(target, 0.5), quadratic(target), 10, opts(name, 0.5),
                           on_step=lambda i, xx: seen.append((xx.min().item(), xx.max().item())))
        assert x.min() >= 0 and x.max() <= 1
        assert x[..., 0].max() == 0 and x[..., 1].min() == 1
    assert all(lo >= 0 and hi <= 1 for lo, hi in seen)


def test_progress_events(target):
    events, steps = [], []
    optimize(torch.zeros_like(target), quadratic(target), 5, opts(),
             on_event=events.append, task="scale 1/1", on_step=lambda i, x: steps.append(i))
    assert all(isinstance(e, Progress) and e.task == "scale 1/1" for e in events)
    assert [e.done for e in events] == [0, 1, 2, 3, 4, 5]
    assert all(e.total == 5 for e in events)
    assert events[0].loss is None and all(e.loss is not None for e in events[1:])
    assert events[-1].loss < events[1].loss
    assert steps == [1, 2, 3, 4, 5]


def test_non_finite_loss_stops(target):
    _, used, final = optimize(torch.zeros_like(target), lambda x: x.sum() * float("nan"), 10, opts("adam"))
    assert used == 1
    assert final != final  # NaN


def test_unknown_optimizer(target):
    with pytest.raises(ValueError, match="sgd"):
        optimize(target, quadratic(target), 1, opts("sgd"))


def test_lbfgs_matches_torch_lbfgs_step_for_step():
    """Same update as torch.optim.LBFGS(max_iter=1, no line search) on a badly scaled quadratic."""
    from stylevid.optimize import LBFGS

    g = torch.Generator().manual_seed(0)
    a = torch.rand(48, generator=g) * 10 + 0.1
    b = torch.rand(48, generator=g)
    loss = lambda x: (a * (x - b).pow(2)).sum() + x.pow(4).sum()  # noqa: E731
    ours = torch.zeros(48, requires_grad=True)
    theirs = torch.zeros(48, requires_grad=True)
    mine = LBFGS(ours, history=5)
    ref = torch.optim.LBFGS([theirs], lr=1.0, max_iter=1, history_size=5, line_search_fn=None)

    for _ in range(12):
        mine.step(closure_for(ours, loss))
        ref.step(closure_for(theirs, loss))
        assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    assert loss(ours) < 0.1 * loss(torch.zeros(48))


@pytest.mark.parametrize("history_dtype", [None, torch.bfloat16])
def test_an_lbfgs_step_reads_nothing_back_to_the_host(monkeypatch, history_dtype):
    """On a GPU each read-back is a sync: the step must stay in tensor ops (checked on CPU by making
    every read-back raise), with the history in float32 or in bfloat16."""
    from stylevid.optimize import LBFGS

    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    target = torch.rand(1, 3, 8, 8)
    opt = LBFGS(x, history=3, history_dtype=history_dtype)
    closure = closure_for(x, lambda x: (x - target).pow(2).sum())

    def refuse(*a, **k):
        raise AssertionError("value read back to the host inside an L-BFGS step")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    for _ in range(6):                       # past the history size, so pairs are dropped too
        opt.step(closure)
    monkeypatch.undo()
    assert (x - target).abs().max().item() < (1e-3 if history_dtype is None else 1e-2)


def test_lbfgs_history_shrinks_for_huge_pictures():
    from stylevid.optimize import history_pairs

    small = torch.zeros(1, 3, 512, 384)
    huge = torch.zeros(1, 3, 1920, 3840)             # 84 MiB a vector
    assert history_pairs(small, 20, 1024) == 20
    assert history_pairs(huge, 20, 1024) == 6       # 6 pairs x 2 x 84 MiB <= 1 GiB
    assert history_pairs(huge, 20, 10) == 3         # never fewer than 3
    assert history_pairs(huge, 20, None) == 20


def test_a_history_past_its_budget_is_kept_in_bfloat16_with_twice_the_pairs():
    from stylevid.optimize import history_plan

    small = torch.zeros(1, 3, 512, 384)
    huge = torch.zeros(1, 3, 1920, 3840)             # 84 MiB a float32 vector, 42 MiB in bfloat16
    assert history_plan(small, 20, 768) == (20, None)             # fits: float32, as torch's
    assert history_plan(huge, 20, 768) == (9, torch.bfloat16)     # float32 would fit 4
    assert history_plan(huge, 20, 10) == (3, torch.bfloat16)      # the minimum, in half the memory
    assert history_plan(huge, 20, None) == (20, None)


def test_lbfgs_with_a_bfloat16_history_follows_the_float32_one():
    """The pairs are stored in bfloat16 (curvature and scale still come from float32); on a badly
    scaled problem it ends about where float32 storage does, and far below where it started."""
    from stylevid.optimize import LBFGS, _combine, _rows_dot

    g = torch.Generator().manual_seed(1)
    a = torch.rand(5000, generator=g) * 10 + 0.1
    b = torch.rand(5000, generator=g)
    loss = lambda x: (a * (x - b).pow(2)).sum() + x.pow(4).sum()  # noqa: E731
    ends = {}
    for dtype in (None, torch.bfloat16):
        x = torch.zeros(5000, requires_grad=True)
        opt = LBFGS(x, history=3, history_dtype=dtype)
        for _ in range(25):
            opt.step(closure_for(x, loss))
        ends[dtype] = float(loss(x.detach()))
        assert opt.hist.dtype == (dtype or torch.float32) and opt.hist.shape == (6, 5000)   # 3 pairs: s and y rows
    start = float(loss(torch.zeros(5000)))
    assert ends[torch.bfloat16] < 0.1 * start and abs(ends[torch.bfloat16] / ends[None] - 1) < 0.01, ends
    m, v, c = torch.rand(6, 10_000, generator=g).bfloat16(), torch.rand(10_000, generator=g), torch.rand(6, generator=g)
    assert torch.allclose(_rows_dot(m, v, chunk=999), m.float() @ v, rtol=1e-5)   # chunked, any remainder
    assert torch.allclose(_combine(m, c, v.clone(), chunk=999), v + m.float().t() @ c, rtol=1e-5)


@pytest.mark.parametrize("history_dtype", [None, torch.bfloat16])
def test_the_compact_direction_is_the_two_loop_one(history_dtype):
    """After steps on a non-convex function past the history size (the ring wraps), and a pair
    without positive curvature (stored as zeros), the compact form's direction equals torch's
    two-loop recursion over the same pairs, oldest first."""
    from stylevid.optimize import LBFGS, _rows_dot

    g0 = torch.Generator().manual_seed(3)
    a = torch.rand(300, generator=g0) * 5
    loss = lambda x: (a * torch.cos(3 * x)).sum() + 0.05 * x.pow(2).sum()  # noqa: E731
    x = torch.randn(300, generator=g0).requires_grad_(True)
    opt = LBFGS(x, history=4, history_dtype=history_dtype)
    for _ in range(10):
        opt.step(closure_for(x, loss))
    # A pair without positive curvature (y·s < 0), as a step might give: stored as zeros.
    s, y = torch.randn(300, generator=g0), torch.randn(300, generator=g0)
    y = y - (y.dot(s) / s.dot(s) + 1) * s
    assert y.dot(s) < 0
    opt._add_pair(s, y, y.dot(s), y.dot(y), y.dot(s) > 1e-10, opt.g_prev)
    assert opt.hist[(opt.stored - 1) % 4].abs().sum() == 0
    n, oldest = opt._window()
    assert n == 4 and opt.stored == 10
    order = [(oldest + i) % 4 for i in range(n)]
    S = [opt.hist[i].float() for i in order]
    Y = [opt.hist[4 + i].float() for i in order]
    g = torch.randn(300, generator=g0)
    q, alphas = -g.clone(), []
    for s, y in zip(reversed(S), reversed(Y)):
        ys = y.dot(s)
        rho = 1 / ys if ys > 0 else 0.0
        alphas.append(rho * s.dot(q))
        q -= alphas[-1] * y
    r = q * opt.h_diag
    for s, y, al in zip(S, Y, reversed(alphas)):
        ys = y.dot(s)
        rho = 1 / ys if ys > 0 else 0.0
        r += s * (al - rho * y.dot(r))
    opt.proj = _rows_dot(opt.hist, g)
    tol = 1e-4 if history_dtype is None else 2e-2          # bfloat16: y·s from float32 vs stored pairs
    assert torch.allclose(opt.direction(g), r, rtol=tol, atol=tol * r.abs().max()), (opt.direction(g) - r).abs().max()
