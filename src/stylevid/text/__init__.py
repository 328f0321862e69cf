"""Text generation: a word- or char-level LSTM language model trained on any text, and GPT-2
fine-tuning through the optional ``transformers`` extra. Imports no image code.

    from stylevid.config import TextConfig
    from stylevid.text import demo_corpus, generate, train

    train(demo_corpus(), "model.pt", TextConfig(epochs=2))
    for s in generate("model.pt", "The if statement"):
        print(s.text, s.verbatim)
"""
from __future__ import annotations

from .corpus import demo_corpus, read_corpus
from .generate import CorpusIndex, LanguageModel, Sample, Verbatim, filter_probs, generate, load_model
from .model import LSTMLM, ModelShape
from .tokenize import Tokenizer, Vocab
from .train import TrainResult, train


def finetune(*args, **kwargs):
    """See :func:`stylevid.text.gpt2.finetune` (needs the optional ``transformers``)."""
    from .gpt2 import finetune as _f

    return _f(*args, **kwargs)


__all__ = [
    "CorpusIndex", "LSTMLM", "LanguageModel", "ModelShape", "Sample", "Tokenizer", "TrainResult",
    "Verbatim", "Vocab", "demo_corpus", "filter_probs", "finetune", "generate", "load_model",
    "read_corpus", "train",
]
