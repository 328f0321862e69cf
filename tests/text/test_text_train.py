from __future__ import annotations

import math

import pytest
import torch

from stylevid.config import replace
from stylevid.errors import BadInput, OutputRefused
from stylevid.events import Message, Progress
from stylevid.text import Vocab, checkpoint, train


def _same_weights(a, b) -> bool:
    sa, sb = checkpoint.load(a)["model"], checkpoint.load(b)["model"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_exact_resume(tmp_path, small_corpus, tiny_cfg):
    cfg = replace(tiny_cfg, epochs=2)
    full = train(small_corpus, tmp_path / "full.pt", cfg)
    train(small_corpus, tmp_path / "half.pt", replace(cfg, epochs=1))
    resumed = train(small_corpus, tmp_path / "half.pt", cfg, resume=True)
    assert _same_weights(tmp_path / "full.pt", tmp_path / "half.pt")
    assert resumed.val_loss == full.val_loss and resumed.epochs == 2
    a, b = checkpoint.load(tmp_path / "full.pt")["train"], checkpoint.load(tmp_path / "half.pt")["train"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert a["scheduler"] == b["scheduler"]

    # stopped in the middle of an epoch, resumed from the saved batch position
    calls = iter(range(100))
    mid = train(small_corpus, tmp_path / "mid.pt", cfg, stop=lambda: next(calls) == 3)
    assert mid.stopped and mid.epochs == 0 and mid.position == 4
    assert checkpoint.load(tmp_path / "mid.pt")["train"]["position"] == 4
    train(small_corpus, tmp_path / "mid.pt", cfg, resume=True)
    assert _same_weights(tmp_path / "full.pt", tmp_path / "mid.pt")


def test_events_vocab_and_refusals(tmp_path, small_corpus, tiny_cfg):
    events = []
    out = tmp_path / "m.pt"
    res = train(small_corpus, out, replace(tiny_cfg, sample_every=1, vocab_size=300), on_event=events.append)
    epochs = [e for e in events if isinstance(e, Progress) and e.task == "epochs"]
    assert epochs[0].done == 0 and epochs[-1].done == epochs[-1].total == 1
    assert epochs[-1].loss is not None and "val ppl" in epochs[-1].detail
    assert any(isinstance(e, Progress) and e.task == "batches" and e.loss for e in events)
    assert any(isinstance(e, Message) and e.text.startswith("sample after epoch 1") for e in events)
    assert math.isclose(res.val_ppl, math.exp(res.val_loss))

    # the vocabulary is frozen into the checkpoint, built from the training split only
    ck = checkpoint.load(out)
    vocab = Vocab(ck["tokenizer"]["vocab"])
    assert len(vocab) == 300 and ck["shape"]["vocab"] == 300
    assert ck["train"]["val_tokens"] > 0

    with pytest.raises(OutputRefused):
        train(small_corpus, out, tiny_cfg)
    with pytest.raises(BadInput, match="another corpus"):
        train(small_corpus[:-100], out, tiny_cfg, resume=True)
    with pytest.raises(BadInput, match="--level"):
        train(small_corpus, tmp_path / "x.pt", replace(tiny_cfg, level="byte"))


def test_vocab_from_training_split_only(tmp_path, tiny_cfg):
    text = "alpha beta gamma delta. " * 40 + "zebra " * 30
    train(text, tmp_path / "v.pt", replace(tiny_cfg, val_split=0.2, seq_len=8))
    vocab = Vocab(checkpoint.load(tmp_path / "v.pt")["tokenizer"]["vocab"])
    assert "alpha" in vocab and "zebra" not in vocab


def test_char_level(tmp_path, small_corpus, tiny_cfg):
    res = train(small_corpus[:6000], tmp_path / "c.pt", replace(tiny_cfg, level="char", seq_len=32))
    ck = checkpoint.load(tmp_path / "c.pt")
    assert ck["tokenizer"]["level"] == "char" and res.val_loss is not None
