from __future__ import annotations

import pytest
import torch

from stylevid.config import TextConfig, replace
from stylevid.errors import BadInput
from stylevid.events import Message
from stylevid.text import CorpusIndex, filter_probs, generate, load_model

CFG = TextConfig(device="cpu", words=15)


def test_seeded_generation_is_reproducible(tiny_model):
    lm = load_model(tiny_model)
    a = generate(lm, "The if statement", replace(CFG, count=2, seed=7))
    b = generate(tiny_model, "The if statement", replace(CFG, count=2, seed=7))
    assert [s.text for s in a] == [s.text for s in b]
    assert a[0].text != a[1].text
    one = generate(lm, "The if statement", replace(CFG, count=1, seed=7))
    assert one[0].text == a[0].text          # sample i does not depend on count
    other = generate(lm, "The if statement", replace(CFG, count=1, seed=8))
    assert other[0].text != a[0].text
    assert a[0].text.startswith("The if statement")
    words = sum(1 for t in lm.tokenizer.tokenize(a[0].continuation) if t[:1].isalnum() or t[:1] == "_")
    assert words == CFG.words


def test_greedy_ignores_seed(tiny_model):
    a = generate(tiny_model, "", replace(CFG, greedy=True, seed=1))
    b = generate(tiny_model, "", replace(CFG, greedy=True, seed=2))
    assert a[0].text == b[0].text and a[0].text


def test_unknown_prompt_words_warn(tiny_model):
    events = []
    s = generate(tiny_model, "The qqzzx statement", CFG, on_event=events.append)
    warnings = [e for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and "qqzzx" in warnings[0].text and "<unk>" in warnings[0].text
    assert s[0].text.startswith("The qqzzx statement")
    assert "<unk>" not in s[0].continuation


def test_verbatim_report(tiny_model, small_corpus):
    s = generate(tiny_model, "", CFG)[0]
    assert s.verbatim is not None and s.verbatim.length >= 1
    assert s.verbatim.text in small_corpus or s.verbatim.length <= 3
    idx = CorpusIndex("one two three four. five six seven, eight nine ten.")
    assert idx.verbatim("zero two three four. five six x").length == 6     # two three four . five six
    assert idx.verbatim("nothing here").length == 0
    assert idx.verbatim("seven eight").length == 1                          # the comma breaks the run


def test_bad_options(tiny_model):
    for bad in (dict(temperature=0), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-1), dict(words=0), dict(count=0)):
        with pytest.raises(BadInput):
            generate(tiny_model, "", replace(CFG, **bad))


def test_top_k_and_top_p_limits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, generator=g) * 3
    full = torch.softmax(logits, -1)
    for k in (1, 5, 50):
        p = filter_probs(logits, 1.0, top_k=k)
        kept = p.nonzero().flatten()
        assert len(kept) == k
        assert set(kept.tolist()) == set(torch.topk(logits, k).indices.tolist())
        assert torch.isclose(p.sum(), torch.tensor(1.0))
    for top_p in (0.1, 0.5, 0.9, 0.99):
        p = filter_probs(logits, 1.0, top_p=top_p)
        kept = p > 0
        mass = full[kept].sum()
        assert mass >= top_p - 1e-6                         # enough mass kept...
        assert mass - full[kept].min() < top_p              # ...and no more tokens than needed
        assert full[kept].min() >= full[~kept].max()        # the most likely ones
        assert torch.allclose(p[kept], full[kept] / mass, atol=1e-6)
    both = filter_probs(logits, 0.7, top_k=20, top_p=0.8)
    assert 1 <= int((both > 0).sum()) <= 20
    hot = filter_probs(logits, 5.0)
    cold = filter_probs(logits, 0.2)
    assert cold.max() > full.max() > hot.max()


def test_sampling_respects_filter(tiny_model):
    lm = load_model(tiny_model)
    s1 = generate(lm, "The", replace(CFG, top_k=1, seed=1))
    s2 = generate(lm, "The", replace(CFG, greedy=True))
    assert s1[0].text == s2[0].text                      # top-k 1 is greedy (unk aside)
