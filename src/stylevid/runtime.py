"""Device, threads and seeds (L1: torch only)."""
from __future__ import annotations

import torch

from .errors import BadInput


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA, then MPS, then the CPU; naming a missing device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA device is available here")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInput("--device mps: no MPS device is available here")
    if name not in ("cpu", "cuda", "mps"):
        raise BadInput(f"--device {name!r}: expected auto, cpu, cuda or mps")
    return torch.device(name)


def generator(seed: int, index: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, index): frame k of a resumed job draws what it drew before."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(index)) % (2**63))
    return g


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
