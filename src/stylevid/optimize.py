"""The pixel optimizer loop shared by stills, video frames and panoramas (L1: torch only).

``optimize(x0, loss_fn, iterations, cfg)`` minimizes ``loss_fn(x)`` over the pixels of ``x0`` with
L-BFGS or Adam (``cfg.optimizer``), keeps pixels in [0,1], reports each iteration through events,
and stops early when the loss has improved by less than ``cfg.early_stop_tol`` (relative) over
the last ``cfg.early_stop_patience`` iterations.

No value goes back to the host inside an iteration: :class:`LBFGS` is written with tensor ops
only (``torch.optim.LBFGS`` reads the loss and several dot products back every step, a GPU
sync each), and on a GPU the loss values are read back once every ``GPU_READBACK`` iterations,
for progress and early stopping. On a CPU reading a value costs nothing; it happens each iteration.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .config import StyleConfig
from .events import Progress, Sink, null_sink

GPU_READBACK = 10       # iterations between loss read-backs on a GPU


class _WithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, value: Tensor, grad: Tensor) -> Tensor:
        ctx.save_for_backward(grad)
        return value.clone()

    @staticmethod
    def backward(ctx, g: Tensor):
        (grad,) = ctx.saved_tensors
        return g * grad, None, None


def with_grad(x: Tensor, value: Tensor, grad: Tensor) -> Tensor:
    """A loss ``value`` whose gradient with respect to ``x`` was computed already (in pieces: view
    batches, tiles); ``backward()`` delivers ``grad`` to ``x``."""
    return _WithGrad.apply(x, value.detach(), grad.detach())


def history_pairs(x: Tensor, pairs: int, budget_mb: float | None,
                  dtype: torch.dtype | None = None) -> int:
    """L-BFGS pairs to keep: ``pairs``, fewer when 2 vectors per pair the size of ``x`` (stored as
    ``dtype``, ``x``'s by default) would pass ``budget_mb`` (a 3840×1920 picture is 84 MiB a vector
    in float32: 20 pairs would be 3.3 GiB). At least 3."""
    if budget_mb is None:
        return pairs
    per_pair = 2 * x.numel() * (dtype or x.dtype).itemsize
    return max(3, min(pairs, int(budget_mb * 2**20 // per_pair)))


def history_plan(x: Tensor, pairs: int, budget_mb: float | None) -> tuple[int, torch.dtype | None]:
    """(pairs, storage dtype) of the L-BFGS history: float32 pairs while ``pairs`` of them fit the
    budget; past that, bfloat16 ones, twice as many in the same memory (at least 3: half the memory).

    bfloat16 storage costs the direction little (tubingen and Starry Night at 512 px with the still
    defaults, measured by hand: final loss 0.1643 vs 0.1646 with 20 pairs, 0.1758 vs 0.1749 with 3),
    much less than fewer pairs do (3 pairs instead of 20: 0.1749 vs 0.1646)."""
    full = history_pairs(x, pairs, budget_mb)
    if full >= pairs or not x.is_floating_point() or x.dtype == torch.bfloat16:
        return full, None
    return history_pairs(x, pairs, budget_mb, torch.bfloat16), torch.bfloat16


CHUNK = 1 << 22          # values of a low-precision history converted at a time (16 MiB of float32)


def _rows_dot(m: Tensor, v: Tensor, chunk: int = CHUNK) -> Tensor:
    """``m @ v`` (k×n times n) with ``m`` perhaps in a lower precision, converted ``chunk`` values
    (16 MiB of float32) at a time."""
    if m.dtype == v.dtype:
        return torch.mv(m, v)
    cols = max(1, chunk // m.shape[0])
    return sum(torch.mv(m[:, i:i + cols].to(v.dtype), v[i:i + cols]) for i in range(0, m.shape[1], cols))


def _combine(m: Tensor, c: Tensor, out: Tensor, chunk: int = CHUNK) -> Tensor:
    """``out += mᵀ c`` (n, from k×n and k), ``m`` perhaps in a lower precision (converted as above)."""
    if m.dtype == c.dtype:
        return out.addmv_(m.t(), c)
    cols = max(1, chunk // m.shape[0])
    for i in range(0, m.shape[1], cols):
        out[i:i + cols].addmv_(m[:, i:i + cols].to(c.dtype).t(), c)
    return out


class LBFGS:
    """L-BFGS with a fixed step (no line search), the update of ``torch.optim.LBFGS(max_iter=1,
    line_search_fn=None)``, in tensor ops only: nothing is read back to the host.

    The direction comes from the compact form of the inverse Hessian (Byrd, Nocedal and Schnabel
    1994) rather than torch's two-loop recursion: the same matrix, but the pairs are the rows of one
    buffer, read twice a step in two matrix-vector products ([S Y]ᵀg, then the combination), where
    the two-loop reads each pair twice in 4m vector operations and rewrites a picture-sized vector 2m
    times. The m×m products it needs (SᵀY, YᵀY) are brought up to date from the previous step's
    [S Y]ᵀg: sᵢ·y = sᵢ·g − sᵢ·g_prev. A step's own cost, timed once by hand (closure excluded):
    9.1 → 7.0 ms at 512×384 with 20 pairs, 716 → 341 ms at 3840×1920 with 9 bfloat16 pairs.

    Two conditions torch tests on the host become arithmetic: a pair without positive curvature
    (``yᵀs ≤ 1e-10``) is stored as zeros (it changes nothing), and a direction that is not a
    descent direction gives a step of 0.
    """

    def __init__(self, x: Tensor, history: int = 20, tolerance_change: float = 1e-9,
                 history_dtype: torch.dtype | None = None):
        self.x, self.history, self.tol = x, history, tolerance_change
        self.history_dtype = history_dtype     # None: x's; bfloat16 halves the history's memory
        self.hist: Tensor | None = None        # rows 0..m-1: s, rows m..2m-1: y; a ring, by slot
        self.stored = 0                        # pairs stored so far; the newest is in slot (stored-1) % m
        self.d = self.t = self.g_prev = self.h_diag = None

    def _window(self) -> tuple[int, int]:
        """(pairs kept, slot of the oldest): a roll by the latter turns slot order into age order."""
        count = min(self.stored, self.history)
        return count, (self.stored - count) % self.history

    def _add_pair(self, s: Tensor, y: Tensor, ys: Tensor, yy: Tensor, ok: Tensor, g: Tensor) -> None:
        """Store (s, y), zeros where ``ok`` is false, and bring SᵀY and YᵀY (oldest first) and
        ``self.proj`` = [S Y]ᵀg (by slot) up to date."""
        m = self.history
        if self.hist is None:
            self.hist = g.new_zeros((2 * m, g.numel()), dtype=self.history_dtype or g.dtype)
            self.sy = g.new_zeros((m, m))          # sᵢ·yⱼ, oldest first
            self.yy = g.new_zeros((m, m))          # yᵢ·yⱼ, oldest first
            self.proj = g.new_zeros(2 * m)         # [S Y]ᵀ g_prev, by slot
        if self.stored >= m:                       # the oldest pair goes: its row and column to the end
            self.sy, self.yy = self.sy.roll((-1, -1), (0, 1)), self.yy.roll((-1, -1), (0, 1))
        j = self.stored % m
        self.hist[j].copy_(s * ok)
        self.hist[m + j].copy_(y * ok)
        self.stored += 1
        n, oldest = self._window()
        proj = _rows_dot(self.hist, g)
        change = proj - self.proj                  # sᵢ·y and yᵢ·y for the pairs kept before
        ps = torch.cat([change[:m].roll(-oldest)[:n - 1], ys[None]]) * ok     # a pair stored as zeros: 0
        py = torch.cat([change[m:].roll(-oldest)[:n - 1], yy[None]]) * ok
        self.sy[:n, n - 1] = ps
        self.yy[:n, n - 1], self.yy[n - 1, :n] = py, py
        self.proj = proj

    def direction(self, g: Tensor) -> Tensor:
        """``-H·g`` from the compact form: H = γI + [S γY] M [S γY]ᵀ with
        M = [[R⁻ᵀ(D + γYᵀY)R⁻¹, −R⁻ᵀ], [−R⁻¹, 0]], R the upper triangle of SᵀY (oldest first), D its
        diagonal, γ = ``h_diag``. Uses ``self.proj`` = [S Y]ᵀg."""
        m, (n, oldest) = self.history, self._window()
        a, b = self.proj[:m].roll(-oldest)[:n], self.proj[m:].roll(-oldest)[:n]
        sy = self.sy[:n, :n]
        diag = sy.diagonal()
        r = torch.triu(sy) + torch.diag((diag == 0).to(sy.dtype))    # an empty pair: 1 on the diagonal
        gamma = self.h_diag
        ra = torch.linalg.solve_triangular(r, a[:, None], upper=True)[:, 0]                      # R⁻¹a
        inner = diag * ra + gamma * (self.yy[:n, :n] @ ra) - gamma * b                           # (D + γYᵀY)R⁻¹a − γb
        p = torch.linalg.solve_triangular(r.t(), inner[:, None], upper=False)[:, 0]            # R⁻ᵀ(…)
        coeff = g.new_zeros(2, m)
        coeff[0, :n], coeff[1, :n] = p, -gamma * ra
        hg = _combine(self.hist, coeff.roll(oldest, 1).reshape(-1), g * gamma)                 # γg + Sp − γY R⁻¹a
        return hg.neg_()

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:
        with torch.enable_grad():
            loss = closure()
        # The step keeps the gradient as the next step's g_prev (no copy): x lets go of it, so a
        # closure cannot accumulate into it.
        g, self.x.grad = self.x.grad.reshape(-1), None
        if self.d is None:
            d = -g
            t = (1.0 / g.abs().sum()).clamp(max=1.0)       # first step: at most a unit L1 move
            self.h_diag = g.new_ones(())
        else:
            # In place: the previous gradient and direction are not needed after this.
            y, s = self.g_prev.neg_().add_(g), self.d.mul_(self.t)
            ys, yy = y.dot(s), y.dot(y)
            ok = ys > 1e-10
            self.h_diag = torch.where(ok, ys / yy, self.h_diag)
            self._add_pair(s, y, ys, yy, ok, g)
            d = self.direction(g)
            t = g.new_ones(())
        t = torch.where(g.dot(d) > -self.tol, torch.zeros_like(t), t)
        self.x.view(-1).addcmul_(d, t)
        self.d, self.t, self.g_prev = d, t, g
        return loss


def optimize(x0: Tensor, loss_fn: Callable[[Tensor], Tensor], iterations: int, cfg: StyleConfig,
             on_event: Sink = null_sink, task: str = "iterations",
             on_step: Callable[[int, Tensor], None] | None = None) -> tuple[Tensor, int, float]:
    """Return (result, iterations used, final loss). From ``cfg``: the optimizer, Adam's ``lr``,
    early stopping (``early_stop_tol``, ``early_stop_patience``) and the L-BFGS history
    (``lbfgs_history`` pairs within ``lbfgs_memory_mb``, see :func:`history_plan`)."""
    optimizer, tol, patience = cfg.optimizer, cfg.early_stop_tol, cfg.early_stop_patience
    x = x0.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)  # L-BFGS views grads flat
    if optimizer == "lbfgs":
        # A line search doubles the evaluations for the same loss (measured), so none.
        pairs, dtype = history_plan(x, cfg.lbfgs_history, cfg.lbfgs_memory_mb)
        opt = LBFGS(x, pairs, history_dtype=dtype)
    elif optimizer == "adam":
        opt = torch.optim.Adam([x], lr=cfg.lr)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")

    def closure() -> Tensor:
        x.grad = None
        loss = loss_fn(x)
        loss.backward()
        return loss.detach()

    readback = 1 if x.device.type == "cpu" else GPU_READBACK
    history_: list[float] = []
    pending: list[Tensor] = []
    on_event(Progress(task, 0, iterations))
    used, stop = 0, False
    for i in range(1, iterations + 1):
        pending.append(opt.step(closure))
        with torch.no_grad():
            x.clamp_(0, 1)
        used = i
        if on_step is not None:
            on_step(i, x.detach())
        if len(pending) < readback and i < iterations:
            continue
        values = torch.stack(pending).tolist() if len(pending) > 1 else [float(pending[0])]
        pending.clear()
        for k, value in enumerate(values, start=i - len(values) + 1):
            history_.append(value)
            on_event(Progress(task, k, iterations, loss=value))
            if value != value or abs(value) == float("inf"):                # not finite: give up
                stop = True
            elif len(history_) > patience and history_[-1 - patience] - value < tol * abs(history_[-1 - patience]):
                stop = True
        if stop:
            break
    if used < iterations:
        on_event(Progress(task, iterations, iterations, loss=history_[-1] if history_ else None,
                          detail=f"stopped early after {used}"))
    return x.detach(), used, history_[-1] if history_ else float("nan")
