from __future__ import annotations

import os
import pickle
import re

import pytest
import torch

from stylevid.errors import BadInput
from stylevid.text import checkpoint, demo_corpus, generate, read_corpus, train


def test_demo_corpus_is_text():
    text = demo_corpus()
    assert len(text.split()) > 50_000
    assert not re.search(r"^\*{3,}$", text, re.M)      # heading underlines dropped


def test_reads_utf8(tmp_path):
    f = tmp_path / "c.txt"
    f.write_bytes("\ufeffHéllo\r\nworld".encode("utf-8"))
    assert read_corpus(f) == "Héllo\nworld"


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"   \n\t \n", "whitespace"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, "binary"),
    ("caf\u00e9 cr\u00e8me".encode("latin-1") * 10, "UTF-8"),
])
def test_bad_corpora(tmp_path, data, words):
    f = tmp_path / "bad.txt"
    f.write_bytes(data)
    with pytest.raises(BadInput) as e:
        read_corpus(f)
    assert e.value.code == 2 and words in str(e.value) and "\n" not in str(e.value)


def test_corpus_too_short(tmp_path, tiny_cfg):
    with pytest.raises(BadInput, match="one training sequence needs"):
        train("Just a few words here.", tmp_path / "m.pt", tiny_cfg)
    assert not (tmp_path / "m.pt").exists()


def test_missing_corpus(tmp_path):
    with pytest.raises(BadInput):
        read_corpus(tmp_path / "nope.txt")


class Thing:
    pass


@pytest.mark.parametrize("kind", ["object", "code", "plain-dict", "torch-dict", "truncated", "text"])
def test_foreign_checkpoints_refused(tmp_path, kind, tiny_model):
    f = tmp_path / "foreign.pt"
    if kind == "object":
        f.write_bytes(pickle.dumps(Thing()))
    elif kind == "code":
        f.write_bytes(pickle.dumps(os.getcwd))
    elif kind == "plain-dict":
        f.write_bytes(pickle.dumps({"model": 1}))
    elif kind == "torch-dict":
        torch.save({"format": "something-else", "model": torch.zeros(2)}, f)
    elif kind == "truncated":
        data = open(tiny_model, "rb").read()
        f.write_bytes(data[: len(data) // 2])
    else:
        f.write_text("hello")
    with pytest.raises(BadInput) as e:
        generate(f)
    msg = str(e.value)
    assert str(f) in msg and "\n" not in msg and e.value.code == 2


def test_checkpoint_marker(tiny_model):
    data = checkpoint.load(tiny_model)
    assert data["format"] == checkpoint.FORMAT and data["version"] == checkpoint.VERSION


def test_gpt2_without_transformers_is_one_line(tmp_path, monkeypatch):
    import sys

    from stylevid.text import finetune

    monkeypatch.setitem(sys.modules, "transformers", None)      # import fails as if not installed
    with pytest.raises(BadInput) as e:
        finetune("some text " * 50, tmp_path / "ft", base="gpt2")
    assert "pip install" in str(e.value) and "\n" not in str(e.value)
