from __future__ import annotations

import pytest

from stylevid.errors import BadInput
from stylevid.text import Tokenizer, Vocab, demo_corpus
from stylevid.text.tokenize import PARAGRAPH, UNK


def test_word_tokens_keep_punctuation_and_read_back():
    tok = Tokenizer("word")
    text = 'Hello, world! It\'s "quoted" (really) well-known: 3.14 and/or x.\n\nNew paragraph... end.'
    tokens = tok.tokenize(text)
    assert tokens[:4] == ["Hello", ",", "world", "!"]
    assert "It's" in tokens and "3.14" in tokens and PARAGRAPH in tokens
    assert tokens.count(".") == 5
    assert tok.detokenize(tokens) == text


def test_word_round_trip_on_demo_corpus():
    tok = Tokenizer("word")
    tokens = tok.tokenize(demo_corpus())
    assert len(tokens) > 50_000
    assert tok.tokenize(tok.detokenize(tokens)) == tokens


def test_char_round_trip_is_exact():
    tok = Tokenizer("char")
    text = "Ünïcode, tabs\tand\nnewlines  spaced."
    assert tok.detokenize(tok.tokenize(text)) == text


def test_bad_level():
    with pytest.raises(BadInput):
        Tokenizer("byte")


def test_vocab_capped_by_frequency_and_frozen():
    tokens = "a a a b b c d".split()
    v = Vocab.build(tokens, 3)
    assert v.tokens == (UNK, "a", "b")
    assert v.encode(["a", "c", "zzz", "b"]) == [1, 0, 0, 2]
    assert v.decode([0, 1]) == [UNK, "a"]
    assert v.unknown(["a", "c", "zzz", "c"]) == ["c", "zzz"]
    assert not hasattr(v, "add")
    assert Vocab(v.to_list()) == v
    # ties broken by token, so the vocabulary does not depend on dict order
    assert Vocab.build("y x y x z".split(), 10).tokens == (UNK, "x", "y", "z")
    with pytest.raises(BadInput):
        Vocab.build(tokens, 1)
    with pytest.raises(BadInput):
        Vocab(["a", UNK])
