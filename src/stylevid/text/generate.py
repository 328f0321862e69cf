"""Sampling from a trained model, and the longest run copied verbatim from the training text.

``generate(model_path, prompt, cfg)`` reads an LSTM checkpoint file or a fine-tuned GPT-2
folder. Sample ``i`` draws from ``runtime.generator(seed, i)``: the same seed gives the same
texts, whatever ``count`` is.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..config import TextConfig
from ..errors import BadInput
from ..events import Sink, null_sink, warn
from ..runtime import generator, pick_device
from . import checkpoint
from .model import LSTMLM, ModelShape
from .tokenize import PARAGRAPH, UNK, Tokenizer, Vocab, tokenize_words


@dataclass(frozen=True)
class Verbatim:
    """The longest run of the generated text's tokens (words and punctuation) that also occurs,
    in the same order, in the training text."""

    length: int
    text: str


@dataclass(frozen=True)
class Sample:
    text: str                   # prompt and continuation, readable
    continuation: str           # the generated part only
    tokens: int                 # tokens generated
    verbatim: Verbatim | None   # None when not asked for or no training text is known


@dataclass
class LanguageModel:
    """An LSTM checkpoint ready to sample from."""

    model: LSTMLM
    tokenizer: Tokenizer
    vocab: Vocab
    corpus: str | None
    device: torch.device
    path: Path | None = None


def check_generation(cfg: TextConfig) -> None:
    if cfg.words < 1:
        raise BadInput(f"--words {cfg.words}: must be at least 1")
    if not cfg.temperature > 0:
        raise BadInput(f"--temperature {cfg.temperature}: must be above 0")
    if cfg.top_k < 0:
        raise BadInput(f"--top-k {cfg.top_k}: must be 0 (off) or more")
    if not 0 < cfg.top_p <= 1:
        raise BadInput(f"--top-p {cfg.top_p}: must be in (0, 1]")
    if cfg.count < 1:
        raise BadInput(f"--count {cfg.count}: must be at least 1")


# ---------------------------------------------------------------------------------- sampling

def filter_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0) -> torch.Tensor:
    """The distribution actually sampled from: softmax(logits / temperature), restricted to the
    ``top_k`` most likely tokens, then to the smallest most-likely set whose mass reaches
    ``top_p``, renormalized. Returns float probabilities (1-D), zero outside the kept set."""
    logits = logits.detach().float().reshape(-1) / float(temperature)
    v = logits.numel()
    if top_k and top_k < v:
        keep = torch.topk(logits, top_k).indices
        masked = torch.full_like(logits, float("-inf"))
        masked[keep] = logits[keep]
        logits = masked
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_p, 0) - sorted_p     # mass of the more likely tokens
        drop = before >= top_p
        drop[0] = False
        probs = probs.clone()
        probs[order[drop]] = 0.0
        probs = probs / probs.sum()
    return probs


def pick(logits: torch.Tensor, *, temperature: float, top_k: int, top_p: float, greedy: bool,
         gen: torch.Generator) -> int:
    if greedy:
        return int(torch.argmax(logits))
    probs = filter_probs(logits.cpu(), temperature, top_k, top_p)
    return int(torch.multinomial(probs, 1, generator=gen))


class _WordCounter:
    """Counts word starts so generation stops before word ``limit + 1`` begins."""

    def __init__(self, level: str):
        self.level = level
        self.words = 0
        self.prev_wordish = False

    def starts_word(self, token: str) -> bool:
        if self.level == "word":
            return token == UNK or token[:1].isalnum() or token[:1] == "_"
        w = token.isalnum() or token == "_"
        starts = w and not self.prev_wordish
        return starts

    def push(self, token: str) -> None:
        if self.starts_word(token):
            self.words += 1
        if self.level == "char":
            self.prev_wordish = token.isalnum() or token == "_"


@torch.no_grad()
def sample_tokens(lm: LanguageModel, prompt_tokens: Sequence[str], cfg: TextConfig,
                  gen: torch.Generator) -> list[str]:
    """Tokens following ``prompt_tokens`` until ``cfg.words`` words are complete."""
    model, vocab = lm.model, lm.vocab
    was_training = model.training
    model.eval()
    try:
        if prompt_tokens:
            ids = vocab.encode(prompt_tokens)
        else:
            start = PARAGRAPH if lm.tokenizer.level == "word" else "\n"
            ids = [vocab.id(start) if start in vocab else min(1, len(vocab) - 1)]
        counter = _WordCounter(lm.tokenizer.level)
        if lm.tokenizer.level == "char" and prompt_tokens:
            counter.prev_wordish = prompt_tokens[-1].isalnum()
        x = torch.tensor([ids], dtype=torch.long, device=lm.device)
        logits, state = model(x)
        last = logits[0, -1]
        out: list[str] = []
        cap = cfg.words * (60 if lm.tokenizer.level == "char" else 6) + 20
        while len(out) < cap:
            if len(vocab) > 1:
                last[Vocab.unk_id] = float("-inf")     # never write <unk> itself
            t = pick(last, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                     greedy=cfg.greedy, gen=gen)
            token = vocab.decode([t])[0]
            if counter.starts_word(token) and counter.words >= cfg.words:
                break
            counter.push(token)
            out.append(token)
            logits, state = model(torch.tensor([[t]], dtype=torch.long, device=lm.device), state)
            last = logits[0, -1]
        return out
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------ memorization

_P = 0x100000001B3          # FNV prime: odd, so the rolling hash mixes well modulo 2**64


class CorpusIndex:
    """The training text as word tokens, for finding the longest verbatim run of a sample."""

    def __init__(self, text: str):
        tokens = tokenize_words(text)
        self.tokens = tokens
        self.stoi: dict[str, int] = {}
        ids = [self.stoi.setdefault(t, len(self.stoi)) for t in tokens]
        self.ids = torch.tensor(ids, dtype=torch.int64)
        self._cache: dict[int, torch.Tensor] = {}

    @staticmethod
    def _hashes(ids: torch.Tensor, length: int) -> torch.Tensor:
        n = ids.numel() - length + 1
        if n <= 0:
            return ids.new_empty(0)
        h = torch.zeros(n, dtype=torch.int64)
        for j in range(length):         # wraps modulo 2**64
            h = h * _P + ids[j:j + n]
        return h

    def _corpus_hashes(self, length: int) -> torch.Tensor:
        if length not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[length] = self._hashes(self.ids, length)
        return self._cache[length]

    def _match(self, gen: torch.Tensor, length: int) -> int | None:
        """Start of a run of ``length`` generated tokens found in the corpus, or None."""
        gh = self._hashes(gen, length)
        hits = torch.isin(gh, self._corpus_hashes(length)).nonzero().flatten().tolist()
        for s in hits:                 # confirm: hashes can collide
            window = gen[s:s + length]
            ch = self._corpus_hashes(length)
            for c in (ch == self._hashes(window, length)[0]).nonzero().flatten().tolist()[:8]:
                if torch.equal(self.ids[c:c + length], window):
                    return s
        return None

    def longest(self, tokens: Sequence[str]) -> tuple[int, int]:
        """(length, start in ``tokens``) of the longest run also in the corpus; (0, 0) if none."""
        gen = torch.tensor([self.stoi.get(t, -1 - i) for i, t in enumerate(tokens)], dtype=torch.int64)
        lo, hi, best = 0, len(tokens), (0, 0)
        while lo < hi:                 # runs are monotone: a run of L holds runs of L - 1
            mid = (lo + hi + 1) // 2
            s = self._match(gen, mid)
            if s is None:
                hi = mid - 1
            else:
                lo, best = mid, (mid, s)
        return best

    def verbatim(self, text: str) -> Verbatim:
        tokens = tokenize_words(text)
        n, s = self.longest(tokens)
        from .tokenize import detokenize_words
        return Verbatim(n, detokenize_words(tokens[s:s + n]) if n else "")


# ----------------------------------------------------------------------------------- loading

def load_model(path: str | os.PathLike, device: str = "cpu") -> LanguageModel:
    """An LSTM checkpoint as a :class:`LanguageModel`; BadInput for anything else."""
    data = checkpoint.load(path)
    try:
        shape = ModelShape.from_dict(data["shape"])
        tok = Tokenizer(data["tokenizer"]["level"])
        vocab = Vocab(data["tokenizer"]["vocab"])
        if len(vocab) != shape.vocab:
            raise ValueError("vocabulary size differs from the model's")
        model = LSTMLM(shape)
        model.load_state_dict(data["model"])
        corpus = data["corpus"]
        corpus_text = bytes(corpus.numpy().tobytes()).decode("utf-8") if corpus is not None else None
    except BadInput:
        raise
    except Exception as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise BadInput(f"{path}: damaged text model ({reason[:160]})") from None
    dev = pick_device(device)
    model.to(dev).eval()
    return LanguageModel(model, tok, vocab, corpus_text, dev, Path(path))


def generate(model: str | os.PathLike | LanguageModel, prompt: str = "",
             cfg: TextConfig = TextConfig(), *, verbatim: bool = True,
             on_event: Sink = null_sink) -> list[Sample]:
    """``cfg.count`` samples of about ``cfg.words`` words each, continuing ``prompt``.

    ``model`` is an LSTM checkpoint file, a loaded :class:`LanguageModel`, or a folder written by
    :func:`stylevid.text.gpt2.finetune`.
    """
    check_generation(cfg)
    if not isinstance(model, LanguageModel) and Path(model).is_dir():
        from .gpt2 import generate_gpt2
        return generate_gpt2(model, prompt, cfg, verbatim=verbatim, on_event=on_event)
    lm = model if isinstance(model, LanguageModel) else load_model(model, cfg.device)
    prompt_tokens = lm.tokenizer.tokenize(prompt) if prompt else []
    unknown = lm.vocab.unknown(prompt_tokens)
    if unknown:
        shown = ", ".join(repr(t) for t in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
        warn(on_event, f"prompt {'words' if lm.tokenizer.level == 'word' else 'characters'} outside "
                       f"the vocabulary, read as {UNK}: {shown}")
    index = CorpusIndex(lm.corpus) if verbatim and lm.corpus else None
    samples = []
    for i in range(cfg.count):
        out = sample_tokens(lm, prompt_tokens, cfg, generator(cfg.seed, i))
        text = lm.tokenizer.detokenize(list(prompt_tokens) + out).strip()
        cont = lm.tokenizer.detokenize(out).strip()
        samples.append(Sample(text, cont, len(out), index.verbatim(cont) if index else None))
    return samples
