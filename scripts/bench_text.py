#!/usr/bin/env python
"""Text benchmark: validation perplexity after a fixed time of CPU training on the demo corpus
(Python's documentation, ``pydoc_data.topics``) with the default word-level 2x128 LSTM, then
generation speed. Prints a markdown table.

    PYTHONPATH=src python scripts/bench_text.py --minutes 2
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from stylevid.config import TextConfig
from stylevid.events import Progress
from stylevid.text import CorpusIndex, demo_corpus, generate, load_model, train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="CPU training time")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 suits a shared machine)")
    ap.add_argument("--level", default=TextConfig.level, choices=("word", "char"))
    ap.add_argument("--gen-words", type=int, default=300, help="words generated for the speed figure")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    text = demo_corpus()
    cfg = replace(TextConfig(), level=args.level, epochs=10_000, device="cpu", sample_every=0, seed=args.seed)
    batches = [0]

    def count(e):
        if isinstance(e, Progress) and e.task == "batches" and e.loss is not None:
            batches[0] += 1

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.pt"
        res = train(text, out, cfg, max_seconds=args.minutes * 60, on_event=count)
        lm = load_model(out, "cpu")
        n_tokens = len(lm.tokenizer.tokenize(text))
        g = replace(cfg, words=args.gen_words, count=1, temperature=0.8, top_k=40)
        generate(lm, "The", replace(g, words=5), verbatim=False)            # warm-up
        t0 = time.perf_counter()
        s = generate(lm, "", g, verbatim=False)[0]
        gen_s = time.perf_counter() - t0
        sample = generate(lm, "The if statement", replace(g, words=60), verbatim=False)[0]
        t0 = time.perf_counter()
        index = CorpusIndex(text)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        verbatim = index.verbatim(sample.continuation)
        verb_s = time.perf_counter() - t0

    seen = batches[0] * cfg.batch_size * cfg.seq_len
    rows = [
        ("machine", f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                    f"{args.threads} thread(s), CPU"),
        ("corpus", f"pydoc_data.topics: {n_tokens:,} {args.level} tokens, vocab {len(lm.vocab):,}"),
        ("model", f"{cfg.level}-level LSTM {cfg.layers}x{cfg.hidden}, emb {cfg.embedding}, tied, "
                  f"seq {cfg.seq_len}, batch {cfg.batch_size}"),
        ("training time", f"{res.seconds:.0f} s ({args.minutes:g} min budget)"),
        ("progress", f"{res.epochs} epochs + {res.position} batches ({batches[0]} batches)"),
        ("training speed", f"{seen / res.seconds:,.0f} tokens/s"),
        ("validation perplexity", f"{res.val_ppl:.1f}"),
        ("generation speed", f"{s.tokens / gen_s:,.0f} tokens/s ({s.tokens} tokens, top-k 40, batch 1)"),
        ("longest verbatim run", f"{verbatim.length} tokens in a 60-word sample (index {index_s * 1000:.0f} ms, "
                                 f"search {verb_s * 1000:.0f} ms)"),
    ]
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\nsample: {sample.text}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
