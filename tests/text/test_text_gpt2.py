"""A GPT-2 built in the test from a tiny config: no download ever. Skipped without transformers."""
from __future__ import annotations

import time

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
