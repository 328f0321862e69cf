"""Shared fixtures for the text tests: one thread (the machines are small and shared; torch's
thread pool slows to a crawl when oversubscribed) and a tiny model trained once."""
from __future__ import annotations

import pytest
import torch

from stylevid.config import TextConfig, replace

TINY = TextConfig(epochs=1, hidden=32, embedding=32, batch_size=16, seq_len=16, device="cpu",
                  sample_every=0, words=12)


@pytest.fixture(scope="session")
def small_corpus() -> str:
    from stylevid.text import demo_corpus

    return demo_corpus()[:20000]


@pytest.fixture(scope="session")
def tiny_cfg() -> TextConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, small_corpus) -> str:
    from stylevid.text import train

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("text") / "tiny.pt"
        train(small_corpus, path, replace(TINY, epochs=2))
    finally:
        torch.set_num_threads(n)
    return str(path)
