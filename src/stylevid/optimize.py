"""The pixel optimizer loop shared by stills, video frames and panoramas (L1: torch only).

``optimize(x0, loss_fn, ...)`` minimizes ``loss_fn(x)`` over the pixels of ``x0`` with L-BFGS or
Adam, keeps pixels in [0,1], reports each iteration through events, and stops early when the
loss has improved by less than ``tol`` (relative) over the last ``patience`` iterations.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .events import Progress, Sink, null_sink


def optimize(x0: Tensor, loss_fn: Callable[[Tensor], Tensor], iterations: int, optimizer: str = "lbfgs",
             lr: float = 0.02, tol: float = 1e-3, patience: int = 10, on_event: Sink = null_sink,
             task: str = "iterations", on_step: Callable[[int, Tensor], None] | None = None,
             ) -> tuple[Tensor, int, float]:
    """Return (result, iterations used, final loss)."""
    x = x0.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)  # L-BFGS views grads flat
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=20, line_search_fn=None)  # a line search doubles the evaluations for the same loss (measured)
    elif optimizer == "adam":
        opt = torch.optim.Adam([x], lr=lr)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")

    last = torch.zeros(())

    def closure() -> Tensor:
        nonlocal last
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x)
        loss.backward()
        last = loss.detach()
        return loss

    history: list[float] = []
    on_event(Progress(task, 0, iterations))
    used = 0
    for i in range(1, iterations + 1):
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        used = i
        value = float(last)  # one sync per iteration, for progress and early stopping
        history.append(value)
        on_event(Progress(task, i, iterations, loss=value))
        if on_step is not None:
            on_step(i, x.detach())
        if len(history) > patience and history[-1 - patience] - value < tol * abs(history[-1 - patience]):
            break
        if not torch.isfinite(last):
            break
    if used < iterations:
        on_event(Progress(task, iterations, iterations, loss=history[-1] if history else None,
                          detail=f"stopped early after {used}"))
    return x.detach(), used, history[-1] if history else float("nan")
