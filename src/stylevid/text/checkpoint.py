"""Text-model checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so loading it never
runs code from the file: a pickle of anything else is refused by torch's weights-only
unpickler and reported as one line. The ``format`` marker and ``version`` tell a stylevid text
model from any other ``.pt`` file.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import torch

from ..errors import BadInput
from ..files import atomic_path, check_input

FORMAT = "stylevid-text-lstm"
VERSION = 1
REQUIRED = ("shape", "tokenizer", "model", "train", "corpus")


def save(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` (which must carry the format marker) under a temporary name, then rename."""
    payload = {"format": FORMAT, "version": VERSION, **payload}
    # Serialized in memory first: torch.save writing to a file on a full disk raises a RuntimeError
    # ("unexpected pos 64 vs 0") that says nothing of the disk; a plain write raises OSError ENOSPC,
    # which atomic_path reports as "disk full".
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())
    return Path(path)


def load(path: str | os.PathLike) -> dict:
    """The checkpoint dict, or BadInput naming the file for anything that is not one."""
    p = check_input(path, "model")
    try:
        with warnings.catch_warnings():     # torch warns about old pickle protocols; we report
            warnings.simplefilter("ignore")
            data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (bad zip), EOFError, ValueError...
        raise BadInput(f"{p}: {_why(e)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(f"{p}: not a stylevid text model (no {FORMAT!r} format marker)")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BadInput(f"{p}: text model format version {version!r}; this stylevid reads up to {VERSION}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise BadInput(f"{p}: incomplete text model (missing {', '.join(missing)})")
    return data


def _why(e: BaseException) -> str:
    msg = str(e)
    m = (re.search(r"WeightsUnpickler error:\s*(.+)", msg)
         or re.search(r"^(Trying to load unsupported .+|Unsupported global: .+)$", msg, re.M))
    if m:
        return (f"not a stylevid text model (the weights-only loader refused it: "
                f"{m.group(1).strip().rstrip('.')[:120]})")
    if msg.startswith("Weights only load failed"):
        return "not a stylevid text model (the weights-only loader refused it)"
    if "zip archive" in msg or "central directory" in msg or isinstance(e, EOFError):
        return "corrupted or truncated checkpoint (not a complete torch zip file)"
    first = (msg.strip().splitlines() or [type(e).__name__])[0]
    return f"not a stylevid text model or corrupted ({first[:120]})"
