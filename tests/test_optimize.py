"""The pixel optimizer loop (optimize.py)."""
from __future__ import annotations

import pytest
import torch

from stylevid.events import Progress
from stylevid.optimize import optimize


def quadratic(target: torch.Tensor):
    return lambda x: (x - target).pow(2).sum()


@pytest.fixture
def target():
    return torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


@pytest.mark.parametrize("name,lr", [("lbfgs", 0.02), ("adam", 0.05)])
def test_optimizers_decrease_a_quadratic(target, name, lr):
    x0 = torch.zeros_like(target)
    start = quadratic(target)(x0).item()
    x, used, final = optimize(x0, quadratic(target), 30, name, lr=lr, tol=0, patience=1000)
    assert used == 30
    assert final < 0.2 * start
    assert quadratic(target)(x).item() < 0.2 * start
    assert not x.requires_grad and x0.abs().sum() == 0  # the input is left alone


def test_lbfgs_solves_the_quadratic(target):
    x, _, _ = optimize(torch.full_like(target, 0.5), quadratic(target), 20, "lbfgs", tol=0, patience=1000)
    assert torch.allclose(x, target, atol=1e-3)


def test_early_stop_on_a_flat_loss():
    events = []
    flat = lambda x: (x * 0).sum() + 1.0  # noqa: E731  constant loss, zero gradient
    x, used, final = optimize(torch.rand(1, 3, 4, 4), flat, 100, "adam", tol=1e-3, patience=5,
                              on_event=events.append)
    assert used == 6  # patience + 1 iterations to see that nothing improved
    assert final == pytest.approx(1.0)
    last = events[-1]
    assert isinstance(last, Progress) and last.done == last.total == 100 and "early" in last.detail


def test_no_early_stop_while_improving(target):
    _, used, _ = optimize(torch.zeros_like(target), quadratic(target), 15, "adam", lr=0.01, tol=1e-3, patience=3)
    assert used == 15


def test_pixels_stay_in_unit_range():
    # The optimum (-1 and 2) lies outside [0,1]; the result is clamped every iteration.
    target = torch.tensor([-1.0, 2.0]).repeat(1, 3, 4, 2)
    seen = []
    for name in ("lbfgs", "adam"):
        x, _, _ = optimize(torch.full_like(target, 0.5), quadratic(target), 10, name, lr=0.5, tol=0, patience=1000,
                           on_step=lambda i, xx: seen.append((xx.min().item(), xx.max().item())))
        assert x.min() >= 0 and x.max() <= 1
        assert x[..., 0].max() == 0 and x[..., 1].min() == 1
    assert all(lo >= 0 and hi <= 1 for lo, hi in seen)


def test_progress_events(target):
    events, steps = [], []
    optimize(torch.zeros_like(target), quadratic(target), 5, "lbfgs", tol=0, patience=1000,
             on_event=events.append, task="scale 1/1", on_step=lambda i, x: steps.append(i))
    assert all(isinstance(e, Progress) and e.task == "scale 1/1" for e in events)
    assert [e.done for e in events] == [0, 1, 2, 3, 4, 5]
    assert all(e.total == 5 for e in events)
    assert events[0].loss is None and all(e.loss is not None for e in events[1:])
    assert events[-1].loss < events[1].loss
    assert steps == [1, 2, 3, 4, 5]


def test_non_finite_loss_stops(target):
    _, used, final = optimize(torch.zeros_like(target), lambda x: x.sum() * float("nan"), 10, "adam", tol=0,
                              patience=1000)
    assert used == 1
    assert final != final  # NaN


def test_unknown_optimizer(target):
    with pytest.raises(ValueError, match="sgd"):
        optimize(target, quadratic(target), 1, "sgd")
