"""A GPT-2 built in the test from a tiny config: no download ever. Skipped without transformers."""
from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from stylevid.config import TextConfig  # noqa: E402
from stylevid.errors import BadInput, WeightsError  # noqa: E402
from stylevid.text import generate  # noqa: E402
from stylevid.text.gpt2 import CORPUS_FILE, MARKER, finetune, load_pretrained  # noqa: E402


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from tokenizers import pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    folder = tmp_path_factory.mktemp("gpt2") / "tiny-base"
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())          # byte-level BPE, no merges
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab["<|endoftext|>"] = len(vocab)
    tok = GPT2Tokenizer(vocab=vocab, merges=[])
    config = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=len(vocab) - 1, eos_token_id=len(vocab) - 1)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_finetune_and_generate(tmp_path, tiny_base, small_corpus):
    cfg = TextConfig(device="cpu", gpt2_block=32, gpt2_batch_size=4, words=10, count=2, seed=5)
    events = []
    out = tmp_path / "ft"
    res = finetune(small_corpus[:4000], out, cfg, base=tiny_base, max_steps=4, on_event=events.append)
    assert res.steps == 4 and res.train_loss is not None and res.val_loss is not None
    assert (out / "config.json").is_file() and (out / MARKER).is_file() and (out / CORPUS_FILE).is_file()
    assert events[0].done == 0 and events[-2].done == 4

    a = generate(out, "The if", cfg)
    b = generate(out, "The if", cfg)
    assert [s.text for s in a] == [s.text for s in b] and len(a) == 2
    assert all(s.text.startswith("The if") and s.verbatim is not None for s in a)

    with pytest.raises(Exception) as e:
        finetune(small_corpus[:4000], out, cfg, base=tiny_base, max_steps=1)
    assert "exists" in str(e.value)


def test_missing_base_is_one_line(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(WeightsError) as e:
        load_pretrained("stylevid-test/no-such-model", offline=True)
    msg = str(e.value)
    assert "\n" not in msg and "download" in msg and "--base" in msg
    assert time.monotonic() - t0 < 30
    with pytest.raises(WeightsError):
        load_pretrained(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="config.json"):
        load_pretrained(tmp_path / "empty")


def test_too_short_for_a_block(tmp_path, tiny_base):
    with pytest.raises(BadInput, match="one block"):
        finetune("tiny", tmp_path / "ft", TextConfig(device="cpu", gpt2_block=32), base=tiny_base)


def test_a_stopped_finetune_resumes_to_the_uninterrupted_model(tmp_path, tiny_base, small_corpus):
    """stop() after step 2 of 6 writes the model so far with the optimizer, position and dropout
    RNG; resume=True gives the same weights as an uninterrupted run."""
    from stylevid.text.gpt2 import TRAINER
    from transformers import GPT2LMHeadModel

    cfg = TextConfig(device="cpu", gpt2_block=32, gpt2_batch_size=4, seed=5)
    text = small_corpus[:4000]
    whole = finetune(text, tmp_path / "whole", cfg, base=tiny_base, max_steps=6)
    calls = []
    part = finetune(text, tmp_path / "ft", cfg, base=tiny_base, max_steps=6,
                    stop=lambda: calls.append(1) or len(calls) >= 2)
    assert part.stopped and part.steps == 2 and part.total == 6 and (tmp_path / "ft" / TRAINER).is_file()
    with pytest.raises(BadInput, match="settings"):
        finetune(text, tmp_path / "ft", replace(cfg, gpt2_lr=1e-3), base=tiny_base, max_steps=6, resume=True)
    with pytest.raises(BadInput, match="another corpus"):
        finetune(text[:3000], tmp_path / "ft", cfg, base=tiny_base, max_steps=6, resume=True)
    events = []
    done = finetune(text, tmp_path / "ft", cfg, base=tiny_base, max_steps=6, resume=True, on_event=events.append)
    assert not done.stopped and done.steps == 6 and not (tmp_path / "ft" / TRAINER).exists()
    assert any("resuming" in getattr(e, "text", "") for e in events)
    a = GPT2LMHeadModel.from_pretrained(whole.path).state_dict()
    b = GPT2LMHeadModel.from_pretrained(done.path).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert done.val_loss == whole.val_loss
    with pytest.raises(BadInput, match="finished"):
        finetune(text, tmp_path / "ft", cfg, base=tiny_base, max_steps=6, resume=True)


def test_ctrl_c_during_finetune_keeps_the_model_so_far_and_resume_finishes(tmp_path, tiny_base, small_corpus,
                                                                           monkeypatch):
    import os
    import signal

    import stylevid.text.gpt2 as G
    from tests.cli_helpers import invoke, one_error_line

    corpus = tmp_path / "c.txt"
    corpus.write_text(small_corpus[:4000], encoding="utf-8")
    out = tmp_path / "ft"
    args = ("text", "finetune", corpus, "--base", tiny_base, "-o", out, "--block", "32", "--batch-size", "4",
            "--max-steps", "5", "--device", "cpu")
    draw = G.generator

    def drawing(seed, index):                 # Ctrl-C as the first epoch's order is drawn
        os.kill(os.getpid(), signal.SIGINT)
        return draw(seed, index)

    monkeypatch.setattr(G, "generator", drawing)
    r = invoke(*args)
    assert r.exit_code == 130, r.stderr
    one_error_line(r.stderr, out, "Ctrl-C", "step 1 of 5", "--resume")
    assert r.stdout == "" and (out / G.TRAINER).is_file()
    monkeypatch.undo()
    r = invoke(*args, "--resume")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(out) and not (out / G.TRAINER).exists()
    assert json.loads((out / G.MARKER).read_text())["steps"] == 5
