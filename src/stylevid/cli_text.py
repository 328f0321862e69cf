"""``stylevid text ...``: train an LSTM on a text, generate from it, fine-tune GPT-2 (L4).

Mounted by :mod:`stylevid.cli` as a sub-command group. Results and paths go to stdout; progress,
samples, warnings and errors go to stderr. Option defaults come from :class:`TextConfig`.
Torch and the text package are imported inside the commands so ``--help`` stays quick.
"""
from __future__ import annotations

import functools
import math
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from .config import TextConfig
from .errors import BadInput, Interrupted, StylevidError
from .events import Message, Progress

_D = TextConfig()

app = typer.Typer(
    help="Text generation: a word- or char-level LSTM trained on any text, or a fine-tuned GPT-2.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(e: StylevidError) -> typer.Exit:
    print(f"error: {e}", file=sys.stderr)
    return typer.Exit(e.code)


_SIGNALS = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}


def _errors(fn):
    """StylevidError -> one line on stderr and its exit code; an interrupt -> one line, 128 + signal."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StylevidError as e:
            raise _fail(e) from None
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", signal.SIGINT)
            raise _fail(Interrupted(f"interrupted by {_SIGNALS.get(signum, 'a signal')}", signum)) from None

    return wrapper


class _Renderer:
    """Renders library events with rich on stderr."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.quiet = quiet
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=self.console, transient=True)
        self.tasks: dict[str, tuple[int, int]] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tasks:
            self.bar.stop()

    def __call__(self, event) -> None:
        if isinstance(event, Message):
            if event.level == "warning":
                self.console.print(f"warning: {event.text}", style="yellow", markup=False, highlight=False)
            elif not self.quiet:
                self.console.print(event.text, markup=False, highlight=False)
            return
        if not isinstance(event, Progress) or self.quiet:
            return
        desc = event.task
        if event.detail:
            desc += f" {event.detail}"
        if event.loss is not None:
            desc += f" loss {event.loss:.3f}"
        if not self.tasks:
            self.bar.start()                # only once there is something to show
        if event.task not in self.tasks:
            tid = self.bar.add_task(desc, total=event.total, completed=event.done)
        else:
            tid, last = self.tasks[event.task]
            if event.done < last:
                self.bar.reset(tid, total=event.total, completed=event.done, description=desc)
            self.bar.update(tid, total=event.total, completed=event.done, description=desc)
        self.tasks[event.task] = (tid, event.done)
        if event.task == "epochs" and event.done and event.detail:
            self.console.print(f"epoch {event.done}/{event.total}: {event.detail}", markup=False, highlight=False)


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of a file, None if missing: a checkpoint is replaced by a rename, so it changes."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _corpus(corpus: Optional[Path], demo: bool) -> str:
    from .text.corpus import demo_corpus, read_corpus

    if demo and corpus is not None:
        raise BadInput("give either CORPUS or --demo-corpus, not both")
    if demo:
        return demo_corpus()
    if corpus is None:
        raise BadInput("missing CORPUS (a UTF-8 text file); or pass --demo-corpus for Python's own docs")
    return read_corpus(corpus)


@app.command()
@_errors
def train(
    corpus: Optional[Path] = typer.Argument(None, help="UTF-8 text file to learn from.", show_default=False),
    output: Path = typer.Option(Path("model.pt"), "-o", "--output", help="Checkpoint written every epoch."),
    level: str = typer.Option(_D.level, help="Tokens: word (punctuation kept as tokens) or char."),
    layers: int = typer.Option(_D.layers, help="LSTM layers."),
    hidden: int = typer.Option(_D.hidden, help="LSTM units per layer."),
    embedding: int = typer.Option(_D.embedding, help="Embedding size."),
    dropout: float = typer.Option(_D.dropout, help="Dropout between layers."),
    vocab_size: int = typer.Option(_D.vocab_size, help="Most frequent tokens kept, <unk> included."),
    seq_len: int = typer.Option(_D.seq_len, help="Tokens per training sequence."),
    batch_size: int = typer.Option(_D.batch_size, help="Sequences per batch."),
    epochs: int = typer.Option(_D.epochs, help="Epochs in all (with --resume: the total to reach)."),
    lr: float = typer.Option(_D.lr, help="Adam learning rate (halved when validation stalls)."),
    val_split: float = typer.Option(_D.val_split, help="Tail fraction held out for validation."),
    seed: int = typer.Option(_D.seed, help="Random seed."),
    sample_every: int = typer.Option(_D.sample_every, help="Print a sample every N epochs (0: at the end)."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from OUTPUT's checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT."),
    minutes: float = typer.Option(0.0, help="Stop after this many minutes (0: no limit); --resume goes on."),
    device: str = typer.Option(_D.device, help="auto, cpu, cuda or mps."),
    demo_corpus: bool = typer.Option(False, "--demo-corpus", help="Train on Python's documentation text."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress, only warnings and the result."),
):
    """Train an LSTM language model on CORPUS; write OUTPUT (prints its path)."""
    text = _corpus(corpus, demo_corpus)
    if not (math.isfinite(minutes) and minutes >= 0):
        raise BadInput(f"--minutes {minutes}: must be 0 (no limit) or more")
    from .runtime import interruptible
    from .text.train import train as run

    cfg = replace(_D, level=level, layers=layers, hidden=hidden, embedding=embedding, dropout=dropout,
                  vocab_size=vocab_size, seq_len=seq_len, batch_size=batch_size, epochs=epochs, lr=lr,
                  val_split=val_split, seed=seed, sample_every=sample_every, device=device)
    # The first Ctrl-C / SIGTERM / SIGHUP stops at the next batch with a checkpoint; a second one at once.
    with interruptible() as flag, _Renderer(quiet) as render:
        before = _identity(output)
        try:
            result = run(text, output, cfg, resume=resume, overwrite=overwrite,
                         max_seconds=minutes * 60 if minutes > 0 else None, stop=lambda: bool(flag),
                         on_event=render, inputs=[corpus] if corpus is not None else [])
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", None) or flag.signum or signal.SIGINT
            after = _identity(output)
            if after is not None and (after != before or resume):
                kept = f"{output} holds the last checkpoint written, intact: continue with --resume"
            else:
                kept = "no checkpoint written" + (f"; {output} is unchanged" if after is not None else "")
            raise _fail(Interrupted(f"{output}: stopped at once by a second {_SIGNALS.get(signum, 'signal')}; "
                                    f"{kept}", signum)) from None
    if result.val_ppl is not None:
        done = f"{result.epochs} epochs" + (f" and {result.position} batches" if result.position else "")
        print(f"validation perplexity {result.val_ppl:.1f} after {done}", file=sys.stderr)
    if flag and result.stopped:
        raise _fail(Interrupted(f"{result.path}: stopped by {_SIGNALS.get(flag.signum, 'a signal')} at epoch "
                                f"{result.epochs + 1}, batch {result.position}; checkpoint kept, continue with "
                                f"--resume", flag.signum))
    print(result.path)


@app.command()
@_errors
def generate(
    model: Path = typer.Argument(..., help="A checkpoint from `text train` or a folder from `text finetune`."),
    prompt: str = typer.Option("", help="Text to continue."),
    words: int = typer.Option(_D.words, help="Words to generate."),
    temperature: float = typer.Option(_D.temperature, help="Below 1: safer; above 1: wilder."),
    top_k: int = typer.Option(_D.top_k, help="Sample among the K most likely tokens (0: all)."),
    top_p: float = typer.Option(_D.top_p, help="Sample among the most likely tokens holding this mass."),
    greedy: bool = typer.Option(_D.greedy, "--greedy", help="Always take the most likely token."),
    seed: int = typer.Option(_D.seed, help="Same seed, same text."),
    count: int = typer.Option(_D.count, help="Number of samples."),
    device: str = typer.Option(_D.device, help="auto, cpu, cuda or mps."),
    verbatim: bool = typer.Option(True, "--verbatim/--no-verbatim",
                                  help="Report the longest run copied from the training text."),
):
    """Generate text from MODEL; the samples go to stdout, separated by blank lines."""
    from .files import check_input
    from .text.generate import generate as run

    if not model.is_dir():
        check_input(model, "model")
    cfg = replace(_D, words=words, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                  seed=seed, count=count, device=device)
    with _Renderer(quiet=True) as render:
        samples = run(model, prompt, cfg, verbatim=verbatim, on_event=render)
    for i, s in enumerate(samples):
        if i:
            print()
        print(s.text)
        if s.verbatim is not None:
            tag = f"sample {i + 1}: " if len(samples) > 1 else ""
            run_text = f": \"{s.verbatim.text}\"" if s.verbatim.length else ""
            n = s.verbatim.length
            print(f"{tag}longest run copied verbatim from the training text: {n} "
                  f"token{'' if n == 1 else 's'}{run_text}", file=sys.stderr)


@app.command()
@_errors
def finetune(
    corpus: Optional[Path] = typer.Argument(None, help="UTF-8 text file.", show_default=False),
    base: str = typer.Option(_D.base, help="GPT-2 to start from: a local folder or a Hugging Face name."),
    output: Path = typer.Option(Path("gpt2-finetuned"), "-o", "--output", help="Folder to write."),
    epochs: int = typer.Option(_D.gpt2_epochs, help="Passes over the corpus."),
    max_steps: int = typer.Option(0, help="Stop after this many steps (0: no limit)."),
    lr: float = typer.Option(_D.gpt2_lr, help="AdamW learning rate."),
    block: int = typer.Option(_D.gpt2_block, help="Tokens per training block."),
    batch_size: int = typer.Option(_D.gpt2_batch_size, help="Blocks per step."),
    val_split: float = typer.Option(_D.val_split, help="Tail fraction held out for validation."),
    seed: int = typer.Option(_D.seed, help="Random seed."),
    device: str = typer.Option(_D.device, help="auto, cpu, cuda or mps."),
    offline: bool = typer.Option(False, "--offline", help="Never try to download the base model."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue a fine-tuning stopped by Ctrl-C (same text and settings)."),
    demo_corpus: bool = typer.Option(False, "--demo-corpus", help="Fine-tune on Python's documentation text."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress, only warnings and the result."),
):
    """Fine-tune GPT-2 on CORPUS (needs the optional transformers); prints the output folder."""
    text = _corpus(corpus, demo_corpus)
    if not 0 <= val_split < 1:
        raise BadInput(f"--val-split {val_split}: must be in [0, 1)")
    from .runtime import interruptible
    from .text.gpt2 import finetune as run

    cfg = replace(_D, base=base, gpt2_epochs=epochs, gpt2_lr=lr, gpt2_block=block, gpt2_batch_size=batch_size,
                  val_split=val_split, seed=seed, device=device)
    # The first Ctrl-C / SIGTERM / SIGHUP stops after the current step and writes the model so far
    # (with what --resume needs); a second one stops at once.
    with interruptible() as flag, _Renderer(quiet) as render:
        try:
            result = run(text, output, cfg, offline=offline, overwrite=overwrite, resume=resume,
                         max_steps=max_steps or None, on_event=render, stop=lambda: bool(flag),
                         inputs=[corpus] if corpus is not None else [])
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", None) or flag.signum or signal.SIGINT
            raise _fail(Interrupted(f"{output}: stopped at once by a second {_SIGNALS.get(signum, 'signal')}; "
                                    f"nothing new written", signum)) from None
    if result.stopped:
        raise _fail(Interrupted(f"{result.path}: stopped by {_SIGNALS.get(flag.signum, 'a signal')} after step "
                                f"{result.steps} of {result.total}; the model so far is written, continue with "
                                f"--resume", flag.signum or signal.SIGINT))
    print(result.path)


def main() -> None:  # pragma: no cover - for `python -m stylevid.cli_text`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
