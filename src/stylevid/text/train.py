"""Training the LSTM language model, with a checkpoint every epoch and exact resume.

The corpus is tokenized, its tail ``val_split`` held out for validation, and the vocabulary
built from the rest. Each epoch cuts the training tokens into sequences of ``seq_len`` from an
offset and in an order drawn from ``runtime.generator(seed, epoch)``, so a resumed run sees the
very batches an uninterrupted one would. A checkpoint holds the model, Adam, the plateau
scheduler, the torch (and CUDA) and Python random states, and the epoch and batch position;
``resume=True`` continues from it bit for bit.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..config import TextConfig
from ..errors import BadInput
from ..events import Message, Progress, Sink, info, null_sink
from ..files import check_output
from ..runtime import generator, pick_device, seed_all
from . import checkpoint
from .corpus import text_sha256, too_short
from .generate import LanguageModel, sample_tokens
from .model import LSTMLM, ModelShape
from .tokenize import LEVELS, Tokenizer, Vocab

_SAMPLE_INDEX = 1 << 20     # generator index of training samples, apart from the epoch draws


@dataclass
class TrainResult:
    path: Path
    epochs: int                     # epochs completed
    position: int                   # batches done in the unfinished epoch (0: none)
    train_loss: float | None        # mean over the last completed epoch
    val_loss: float | None          # of the final weights
    stopped: bool                   # stopped by max_seconds or stop() before the last epoch
    seconds: float
    history: list[dict] = field(default_factory=list)

    @property
    def val_ppl(self) -> float | None:
        return _ppl(self.val_loss)


def _ppl(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 50.0))


def check_training(cfg: TextConfig) -> None:
    if cfg.level not in LEVELS:
        raise BadInput(f"--level {cfg.level!r}: expected word or char")
    for name in ("layers", "hidden", "embedding", "seq_len", "batch_size"):
        if getattr(cfg, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} {getattr(cfg, name)}: must be at least 1")
    if cfg.epochs < 0:
        raise BadInput(f"--epochs {cfg.epochs}: must be 0 or more")
    if cfg.vocab_size < 2:
        raise BadInput(f"--vocab-size {cfg.vocab_size}: must be at least 2")
    if not cfg.lr > 0:
        raise BadInput(f"--lr {cfg.lr}: must be above 0")
    if not 0 <= cfg.val_split < 1:
        raise BadInput(f"--val-split {cfg.val_split}: must be in [0, 1)")
    if not 0 <= cfg.dropout < 1:
        raise BadInput(f"--dropout {cfg.dropout}: must be in [0, 1)")
    if cfg.sample_every < 0:
        raise BadInput(f"--sample-every {cfg.sample_every}: must be 0 (only at the end) or more")


@dataclass
class _Data:
    tokenizer: Tokenizer
    vocab: Vocab
    train: torch.Tensor
    val: torch.Tensor


def _prepare(text: str, cfg: TextConfig, vocab: Vocab | None = None) -> _Data:
    tok = Tokenizer(cfg.level)
    tokens = tok.tokenize(text)
    n_val = 0
    if cfg.val_split > 0:
        n_val = max(2, int(round(len(tokens) * cfg.val_split)))
    train_tokens, val_tokens = tokens[:len(tokens) - n_val], tokens[len(tokens) - n_val:]
    if len(train_tokens) < cfg.seq_len + 1:
        raise too_short(len(train_tokens), cfg.seq_len + 1)
    if vocab is None:
        vocab = Vocab.build(train_tokens, cfg.vocab_size)
    return _Data(tok, vocab, torch.tensor(vocab.encode(train_tokens), dtype=torch.long),
                 torch.tensor(vocab.encode(val_tokens), dtype=torch.long))


def epoch_batches(ids: torch.Tensor, seq_len: int, batch_size: int, seed: int, epoch: int):
    """(inputs, targets, batches of row indices) for one epoch: a random offset below
    ``seq_len``, non-overlapping sequences from there, in a random order."""
    g = generator(seed, epoch)
    n = ids.numel()
    high = min(seq_len, n - seq_len)
    off = int(torch.randint(0, high, (1,), generator=g)) if high > 1 else 0
    n_seq = (n - off - 1) // seq_len
    data = ids[off:off + n_seq * seq_len + 1]
    inputs = data[:-1].view(n_seq, seq_len)
    targets = data[1:].view(n_seq, seq_len)
    order = torch.randperm(n_seq, generator=g).split(batch_size)
    return inputs, targets, order


@torch.no_grad()
def evaluate(model: LSTMLM, ids: torch.Tensor, seq_len: int, batch_size: int,
             device: torch.device) -> float | None:
    """Mean cross-entropy per token over ``ids``, read as parallel streams with carried state."""
    n = ids.numel() - 1
    if n < 1:
        return None
    was = model.training
    model.eval()
    streams = max(1, min(batch_size, n // max(seq_len, 1)))
    per = n // streams
    x = ids[:streams * per].view(streams, per).to(device)
    y = ids[1:streams * per + 1].view(streams, per).to(device)
    state, total, count = None, 0.0, 0
    for s in range(0, per, seq_len):
        logits, state = model(x[:, s:s + seq_len], state)
        t = y[:, s:s + seq_len]
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), reduction="sum"))
        count += t.numel()
    model.train(was)
    return total / count


def _rng_state(device: torch.device) -> dict:
    st = {"torch": torch.get_rng_state(), "python": random.getstate()}
    st["cuda"] = torch.cuda.get_rng_state_all() if device.type == "cuda" else []
    return st


def _set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    v, internal, gauss = st["python"]
    random.setstate((v, tuple(internal), gauss))
    if device.type == "cuda" and st.get("cuda"):
        torch.cuda.set_rng_state_all(st["cuda"])


def train(text: str, out: str | os.PathLike, cfg: TextConfig = TextConfig(), *, resume: bool = False,
          overwrite: bool = False, max_seconds: float | None = None,
          stop: Callable[[], bool] | None = None, on_event: Sink = null_sink,
          inputs: Sequence[str | os.PathLike] = ()) -> TrainResult:
    """Train on ``text`` and write the checkpoint ``out`` after every epoch.

    ``resume``: continue from ``out`` if it exists (its settings win, except ``epochs``,
    ``sample_every`` and ``device``). ``max_seconds`` / ``stop()``: end early at a batch
    boundary, checkpoint included, so a later ``resume`` goes on from there. ``inputs``: the
    files the text came from; ``out`` may never be one of them, even with ``overwrite``.
    """
    t0 = time.monotonic()
    check_training(cfg)
    if max_seconds is not None and not max_seconds > 0:
        raise BadInput(f"time limit {max_seconds!r} s: must be above 0")
    out = Path(out)
    sha = text_sha256(text)
    saved = None
    inputs = [Path(i) for i in inputs]
    if resume and out.exists():
        check_output(out, inputs, overwrite=True)        # never an input, even to resume from
        saved = checkpoint.load(out)
        tr = saved["train"]
        if tr.get("corpus_sha256") != sha:
            raise BadInput(f"{out}: was trained on another corpus; --resume needs the same text")
        cfg = replace(TextConfig(**tr["config"]), epochs=cfg.epochs, sample_every=cfg.sample_every,
                      device=cfg.device)
        check_training(cfg)
    else:
        check_output(out, inputs, overwrite=overwrite or resume)
    device = pick_device(cfg.device)

    data = _prepare(text, cfg, Vocab(saved["tokenizer"]["vocab"]) if saved else None)
    shape = ModelShape(len(data.vocab), cfg.embedding, cfg.hidden, cfg.layers, cfg.dropout, cfg.tie)
    seed_all(cfg.seed)
    random.seed(cfg.seed)
    model = LSTMLM(shape).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1)
    corpus_bytes = torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8)

    epoch, position, loss_sum, loss_tokens, history = 0, 0, 0.0, 0, []
    if saved:
        tr = saved["train"]
        try:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(tr["optimizer"])
            sched.load_state_dict(tr["scheduler"])
            _set_rng_state(tr["rng"], device)
            epoch, position = int(tr["epoch"]), int(tr["position"])
            loss_sum, loss_tokens = float(tr["loss_sum"]), int(tr["loss_tokens"])
            history = list(tr["history"])
        except Exception as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BadInput(f"{out}: cannot resume from this checkpoint ({reason[:160]})") from None
        info(on_event, f"resuming {out} at epoch {epoch + 1}, batch {position}")

    def save(ep: int, pos: int) -> None:
        checkpoint.save(out, {
            "shape": shape.to_dict(),
            "tokenizer": {"level": cfg.level, "vocab": data.vocab.to_list()},
            "model": model.state_dict(),
            "corpus": corpus_bytes,
            "train": {
                "config": asdict(cfg), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": _rng_state(device), "epoch": ep, "position": pos,
                "loss_sum": loss_sum, "loss_tokens": loss_tokens, "history": history,
                "corpus_sha256": sha, "train_tokens": data.train.numel(), "val_tokens": data.val.numel(),
            },
        })

    def time_up() -> bool:
        return (max_seconds is not None and time.monotonic() - t0 >= max_seconds) or bool(stop and stop())

    lm = LanguageModel(model, data.tokenizer, data.vocab, None, device)
    stopped = False
    if epoch < cfg.epochs:
        on_event(Progress("epochs", epoch, cfg.epochs))
    if saved is None and cfg.epochs == 0:
        save(0, 0)
    model.train()
    while epoch < cfg.epochs:
        inputs, targets, order = epoch_batches(data.train, cfg.seq_len, cfg.batch_size, cfg.seed, epoch)
        nb = len(order)
        on_event(Progress("batches", position, nb, detail=f"epoch {epoch + 1}/{cfg.epochs}"))
        for b in range(position, nb):
            x, y = inputs[order[b]].to(device), targets[order[b]].to(device)
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            lv = loss.item()
            loss_sum += lv * y.numel()
            loss_tokens += y.numel()
            on_event(Progress("batches", b + 1, nb, loss=lv, detail=f"epoch {epoch + 1}/{cfg.epochs}"))
            if b + 1 < nb and time_up():
                position = b + 1
                save(epoch, position)
                stopped = True
                break
        if stopped:
            break
        train_loss = loss_sum / max(loss_tokens, 1)
        val_loss = evaluate(model, data.val, cfg.seq_len, cfg.batch_size, device)
        sched.step(val_loss if val_loss is not None else train_loss)
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                        "lr": opt.param_groups[0]["lr"], "seconds": time.monotonic() - t0})
        epoch, position, loss_sum, loss_tokens = epoch + 1, 0, 0.0, 0
        save(epoch, 0)
        detail = f"train ppl {_ppl(train_loss):.1f}"
        if val_loss is not None:
            detail += f", val ppl {_ppl(val_loss):.1f}"
        on_event(Progress("epochs", epoch, cfg.epochs, loss=val_loss if val_loss is not None else train_loss,
                          detail=detail))
        every = cfg.sample_every
        if (every and epoch % every == 0) or epoch == cfg.epochs:
            sample_cfg = replace(cfg, words=min(cfg.words, 40), count=1, greedy=False)
            toks = sample_tokens(lm, [], sample_cfg, generator(cfg.seed, _SAMPLE_INDEX + epoch))
            on_event(Message(f"sample after epoch {epoch}: {data.tokenizer.detokenize(toks).strip()}"))
        if epoch < cfg.epochs and time_up():
            stopped = True
            break

    last = history[-1] if history else {}
    val_loss = last.get("val_loss") if position == 0 and history else \
        evaluate(model, data.val, cfg.seq_len, cfg.batch_size, device)
    return TrainResult(out, epoch, position, last.get("train_loss"), val_loss, stopped,
                       time.monotonic() - t0, history)
