"""GPT-2 fine-tuning and generation through the optional ``transformers`` package.

``transformers`` is imported only here and only when called (``pip install 'stylevid[gpt2]'``).
The base is a local folder (``config.json``, weights, tokenizer files) or a Hugging Face name
found in the local cache or downloaded; when neither works, one line says what to download and
where to put it. The fine-tuned folder also holds ``stylevid-corpus.txt`` (the training text, for
the verbatim-run report) and ``stylevid-text.json`` (what was done).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..config import TextConfig
from ..errors import BadInput, OutputRefused, WeightsError
from ..events import Progress, Sink, info, null_sink
from ..files import write_failed
from ..runtime import generator, pick_device, seed_all
from .generate import CorpusIndex, Sample, check_generation, pick

FORMAT = "stylevid-text-gpt2"
MARKER = "stylevid-text.json"
CORPUS_FILE = "stylevid-corpus.txt"
_HUB_NAME = re.compile(r"^[A-Za-z0-9_][\w.-]*(/[\w.-]+)?$")


TRAINER = "stylevid-trainer.pt"     # optimizer and position of a stopped fine-tuning (for --resume)


@dataclass
class FinetuneResult:
    path: Path
    steps: int
    train_loss: float | None
    val_loss: float | None
    seconds: float
    stopped: bool = False           # stopped by stop() before the last step; --resume goes on
    total: int = 0                  # steps of the whole run

    @property
    def val_ppl(self) -> float | None:
        return None if self.val_loss is None else math.exp(min(self.val_loss, 50.0))


def _transformers():
    try:
        import transformers
    except ImportError:
        raise BadInput("GPT-2 needs the optional transformers package: pip install 'stylevid[gpt2]'") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:  # the hub client logs its retries; the library reports through events only
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except Exception:  # pragma: no cover
        pass
    return transformers


def _missing(base: str) -> str:
    name = base.rstrip("/").split("/")[-1] or "gpt2"
    return (f"GPT-2 base {base!r} is not available locally and could not be downloaded: on a machine "
            f"with network run `hf download {base} --local-dir {name}` (or fetch config.json, "
            f"model.safetensors, vocab.json, merges.txt from https://huggingface.co/{base}), copy the "
            f"folder here and pass --base ./{name}")


def _first_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:160]


def load_pretrained(base: str | os.PathLike, *, offline: bool = False):
    """(tokenizer, model) from a local folder, the Hugging Face cache, or a download."""
    tf = _transformers()
    base = os.fspath(base)
    p = Path(base).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise BadInput(f"{p}: not a GPT-2 model folder (no config.json)")
        try:
            tok = tf.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
            model = tf.AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True)
        except Exception as e:
            raise BadInput(f"{p}: cannot load a GPT-2 model from this folder ({_first_line(e)})") from None
        return tok, model
    if p.exists():
        raise BadInput(f"{p}: expected a model folder or a Hugging Face model name")
    if not _HUB_NAME.match(base):
        raise WeightsError(f"{base}: model folder not found; pass a folder holding config.json, the "
                           f"weights and the tokenizer files, or a Hugging Face name such as gpt2")
    try:
        return (tf.AutoTokenizer.from_pretrained(base, local_files_only=True),
                tf.AutoModelForCausalLM.from_pretrained(base, local_files_only=True))
    except Exception:
        pass
    if offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not _hub_reachable():
        raise WeightsError(_missing(base))
    try:
        return (tf.AutoTokenizer.from_pretrained(base), tf.AutoModelForCausalLM.from_pretrained(base))
    except Exception as e:
        raise WeightsError(_missing(base) + f" ({_first_line(e)})") from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the hub, so that no network means one line at once, not minutes of retries."""
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _blocks(ids: list[int], block: int) -> torch.Tensor:
    n = len(ids) // block
    return torch.tensor(ids[:n * block], dtype=torch.long).view(n, block)


@torch.no_grad()
def _evaluate(model, blocks: torch.Tensor, batch: int, device) -> float | None:
    if blocks.numel() == 0:
        return None
    model.eval()
    total, count = 0.0, 0
    for i in range(0, blocks.shape[0], batch):
        x = blocks[i:i + batch].to(device)
        n = x[:, 1:].numel()
        total += float(model(input_ids=x, labels=x).loss) * n
        count += n
    model.train()
    return total / count


def finetune(text: str, out: str | os.PathLike, cfg: TextConfig = TextConfig(), *,
             base: str | os.PathLike | None = None, offline: bool = False, overwrite: bool = False,
             max_steps: int | None = None, on_event: Sink = null_sink,
             inputs: Sequence[str | os.PathLike] = (), resume: bool = False,
             stop: Callable[[], bool] | None = None) -> FinetuneResult:
    """Fine-tune GPT-2 (``base``, default ``cfg.base``) on ``text``; write the folder ``out``.

    ``inputs``: the files the text came from; ``out`` (replaced whole) may not be or hold one.
    ``stop()``: checked after every step; when true before the last one, the model so far is
    written with the optimizer and the position (``stylevid-trainer.pt``), and ``resume=True``
    with the same text and settings goes on from there to the very model an uninterrupted run
    gives (the batch order comes from the seed; the dropout RNG is saved)."""
    t0 = time.monotonic()
    out = Path(out)
    for i in inputs:
        r, o = Path(i).resolve(), out.resolve()
        if r == o or o in r.parents:
            raise OutputRefused(f"{out}: output would overwrite an input ({i})")
    if out.exists() and not out.is_dir():
        raise OutputRefused(f"{out}: exists and is not a folder")
    state = _trainer_state(out, text, cfg, max_steps) if resume else None
    if state is None and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputRefused(f"{out}: exists; pass --overwrite to replace it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputRefused(f"{out}: folder {parent} does not exist (make it first: mkdir -p {parent})")
    for name, v in (("gpt2-block", cfg.gpt2_block), ("gpt2-batch-size", cfg.gpt2_batch_size),
                    ("gpt2-epochs", cfg.gpt2_epochs)):
        if v < 1:
            raise BadInput(f"--{name} {v}: must be at least 1")
    if not cfg.gpt2_lr > 0:
        raise BadInput(f"--lr {cfg.gpt2_lr}: must be above 0")
    base = os.fspath(base if base is not None else cfg.base)
    device = pick_device(cfg.device)
    tok, model = load_pretrained(out if state else base, offline=offline)
    if state:
        base = state["base"]
    block = min(cfg.gpt2_block, int(getattr(model.config, "n_positions", cfg.gpt2_block) or cfg.gpt2_block))
    ids = tok(text, return_attention_mask=False)["input_ids"]
    blocks = _blocks(ids, block)
    n_val = int(blocks.shape[0] * cfg.val_split) if blocks.shape[0] > 1 else 0
    train_blocks, val_blocks = blocks[:blocks.shape[0] - n_val], blocks[blocks.shape[0] - n_val:]
    if train_blocks.shape[0] < 1:
        raise BadInput(f"corpus: {len(ids)} GPT-2 tokens; fine-tuning needs at least {block} "
                       f"(one block) after the validation split")
    seed_all(cfg.seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.gpt2_lr)
    per_epoch = math.ceil(train_blocks.shape[0] / cfg.gpt2_batch_size)
    total = per_epoch * cfg.gpt2_epochs
    if max_steps is not None:
        total = min(total, max_steps)
    done, loss_sum, loss_n = 0, 0.0, 0
    if state:
        try:
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            done, loss_sum, loss_n = int(state["step"]), float(state["loss_sum"]), int(state["loss_n"])
        except Exception as e:
            raise BadInput(f"{out}: cannot resume from this folder ({_first_line(e)})") from None
        info(on_event, f"resuming {out} at step {done} of {total}")
    on_event(Progress("steps", done, total, detail=f"fine-tuning {base}"))
    step, stopped = 0, False
    for epoch in range(cfg.gpt2_epochs):
        order = torch.randperm(train_blocks.shape[0], generator=generator(cfg.seed, epoch))
        for idx in order.split(cfg.gpt2_batch_size):
            if step >= total or stopped:
                break
            if step < done:             # resuming: these batches were trained before the stop
                step += 1
                continue
            x = train_blocks[idx].to(device)
            loss = model(input_ids=x, labels=x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            lv = loss.item()
            loss_sum, loss_n = loss_sum + lv, loss_n + 1
            on_event(Progress("steps", step, total, loss=lv, detail=f"epoch {epoch + 1}/{cfg.gpt2_epochs}"))
            stopped = step < total and bool(stop and stop())
    meta = {"format": FORMAT, "base": base, "steps": step, "block": block, "config": asdict(cfg),
            "train_loss": loss_sum / loss_n if loss_n else None, "max_steps": max_steps}
    if stopped:
        meta["val_loss"] = val_loss = None
        trainer = {"optimizer": opt.state_dict(), "rng": torch.get_rng_state(), "step": step,
                   "loss_sum": loss_sum, "loss_n": loss_n}
        model.to("cpu")
        _write_folder(out, tok, model, text, {**meta, "stopped_at": step, "total": total}, trainer)
    else:
        val_loss = _evaluate(model, val_blocks, cfg.gpt2_batch_size, device)
        if val_loss is not None:
            info(on_event, f"validation perplexity {math.exp(min(val_loss, 50)):.1f}")
        model.to("cpu")
        _write_folder(out, tok, model, text, {**meta, "val_loss": val_loss})
    return FinetuneResult(out, step, loss_sum / loss_n if loss_n else None, val_loss, time.monotonic() - t0,
                          stopped, total)


def _trainer_state(out: Path, text: str, cfg: TextConfig, max_steps: int | None) -> dict | None:
    """What ``--resume`` goes on from: the state a stopped fine-tuning left in ``out``; None when
    there is no folder yet (a fresh start). Refuses a folder that cannot be resumed, in one line."""
    if not out.exists():
        return None
    marker = out / MARKER
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BadInput(f"{out}: not a stylevid GPT-2 folder (no readable {MARKER}); nothing to resume") from None
    if not (out / TRAINER).is_file():
        raise BadInput(f"{out}: its fine-tuning finished ({meta.get('steps')} steps); nothing to resume "
                       f"(start again with --overwrite, or from it with --base {out})")
    if (out / CORPUS_FILE).read_text(encoding="utf-8") != text:
        raise BadInput(f"{out}: was fine-tuned on another corpus; --resume needs the same text")
    keys = ("gpt2_block", "gpt2_batch_size", "gpt2_epochs", "gpt2_lr", "seed", "val_split", "grad_clip")
    changed = [k for k in keys if meta.get("config", {}).get(k) != getattr(cfg, k)]
    if meta.get("max_steps") != max_steps:
        changed.append("max_steps")
    if changed:
        raise BadInput(f"{out}: --resume needs the settings it was started with ({', '.join(changed)} differ)")
    try:
        state = torch.load(out / TRAINER, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BadInput(f"{out}: {TRAINER} does not read ({_first_line(e)})") from None
    return {**state, "base": meta.get("base")}


def _write_folder(out: Path, tok, model, text: str, meta: dict, trainer: dict | None = None) -> None:
    """Write into a temporary folder beside ``out``, then swap it in (with ``trainer``: the state
    that --resume goes on from)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent if str(out.parent) else "."))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / CORPUS_FILE).write_text(text, encoding="utf-8")
        if trainer is not None:
            torch.save(trainer, tmp / TRAINER)
        (tmp / MARKER).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failed(out, e) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _cache_of(res):
    c = getattr(res, "cache", None)
    return c if c is not None else getattr(res, "past_key_values", None)


def _count_words(text: str) -> int:
    n, prev = 0, False
    for ch in text:
        w = ch.isalnum() or ch == "_"
        n += w and not prev
        prev = w
    return n


@torch.no_grad()
def generate_gpt2(folder: str | os.PathLike, prompt: str = "", cfg: TextConfig = TextConfig(), *,
                  verbatim: bool = True, on_event: Sink = null_sink) -> list[Sample]:
    """Like :func:`stylevid.text.generate.generate`, for a GPT-2 folder."""
    check_generation(cfg)
    folder = Path(folder)
    tok, model = load_pretrained(folder)
    device = pick_device(cfg.device)
    model.to(device).eval()
    eos = tok.eos_token_id
    prompt_ids = tok(prompt, return_attention_mask=False)["input_ids"] if prompt else []
    start = prompt_ids or ([eos] if eos is not None else [0])
    n_pos = int(getattr(model.config, "n_positions", 1024) or 1024)
    if len(start) >= n_pos:
        raise BadInput(f"--prompt: {len(start)} tokens; this model reads at most {n_pos - 1}")
    # transformers 5.x renames past_key_values to cache
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    corpus = folder / CORPUS_FILE
    index = CorpusIndex(corpus.read_text(encoding="utf-8")) if verbatim and corpus.is_file() else None
    samples = []
    for i in range(cfg.count):
        gen = generator(cfg.seed, i)
        x = torch.tensor([start], dtype=torch.long, device=device)
        res = model(input_ids=x, use_cache=True)
        past, last = _cache_of(res), res.logits[0, -1]
        out: list[int] = []
        while len(start) + len(out) < n_pos:
            t = pick(last, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                     greedy=cfg.greedy, gen=gen)
            if t == eos:
                break
            if _count_words(tok.decode(out + [t])) > cfg.words:
                break
            out.append(t)
            res = model(input_ids=torch.tensor([[t]], device=device), use_cache=True, **{cache_arg: past})
            past, last = _cache_of(res), res.logits[0, -1]
        cont = tok.decode(out).strip()
        text = (prompt + tok.decode(out)).strip() if prompt else cont
        samples.append(Sample(text, cont, len(out), index.verbatim(cont) if index else None))
    return samples
