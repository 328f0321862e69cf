"""Issue 8 for ``stylevid text``: bad corpora, bad checkpoints and bad option values are refused with
one line and a documented exit code, nothing written; a foreign checkpoint is never unpickled; a full
disk and signals during training lose nothing. Through the CLI, in process (tiny models)."""
from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest
import torch

from tests.cli_helpers import check_refused, fill, invoke, leftovers, one_error_line, tiny_disk

TINY = ["--hidden", "16", "--embedding", "16", "--seq-len", "16", "--batch-size", "16", "--epochs", "1",
        "--sample-every", "0", "--device", "cpu", "-q"]


class Touch:
    """Unpickling this would run code: it creates the file ``path``."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture(scope="module")
def d(tmp_path_factory, small_corpus, tiny_model):
    d = tmp_path_factory.mktemp("text_bad")
    (d / "corpus.txt").write_text(small_corpus, encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "blank.txt").write_text("  \n\t\n")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (d / "latin1.txt").write_bytes("café crème brûlée ".encode("latin-1") * 40)
    (d / "dir").mkdir()
    os.mkfifo(d / "fifo")
    (d / "model.pt").write_bytes(Path(tiny_model).read_bytes())
    data = (d / "model.pt").read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    (d / "pickle.pt").write_bytes(pickle.dumps(Touch(str(d / "PWNED"))))           # a plain pickle
    torch.save({"format": "stylevid-text-lstm", "x": Touch(str(d / "PWNED"))}, d / "torch.pt")   # torch zip
    torch.save({"format": "something-else", "model": torch.zeros(2)}, d / "other.pt")
    return d


# -- train: bad corpora, bad options, bad outputs ------------------------------------------------------------

CORPORA = [
    ("missing", "nope.txt", 3, "not found"),
    ("directory", "dir", 2, "is a directory"),
    ("fifo", "fifo", 2, "not a regular file"),
    ("concat_protocol", "concat:corpus.txt|corpus.txt", 2, "not accepted"),
    ("empty", "empty.txt", 2, "empty file"),
    ("only_whitespace", "blank.txt", 2, "only whitespace"),
    ("binary", "binary.txt", 2, "binary"),
    ("not_utf8", "latin1.txt", 2, "not UTF-8"),
]


@pytest.mark.parametrize("name, code, words", [c[1:] for c in CORPORA], ids=[c[0] for c in CORPORA])
def test_train_refuses_a_bad_corpus(d, name, code, words):
    path = name if ":" in name else d / name
    check_refused(d, ["text", "train", path, "-o", d / "m.pt", *TINY], code, words)


TRAIN_OPTIONS = [["--epochs", "-1"], ["--lr", "0"], ["--lr", "nan"], ["--dropout", "1"], ["--val-split", "1"],
                 ["--level", "byte"], ["--seq-len", "0"], ["--vocab-size", "1"], ["--batch-size", "0"],
                 ["--hidden", "0"], ["--minutes", "-1"], ["--sample-every", "-1"], ["--device", "tpu"]]


@pytest.mark.parametrize("opt", TRAIN_OPTIONS, ids=[" ".join(o) for o in TRAIN_OPTIONS])
def test_train_refuses_bad_option_values(d, opt):
    line = check_refused(d, ["text", "train", d / "corpus.txt", "-o", d / "m.pt", *TINY, *opt], 2)
    assert opt[0] in line


def test_train_output_equal_to_the_corpus_is_refused(d):
    # It used to replace the corpus with the model.
    for extra in (["--overwrite"], ["--resume"]):
        check_refused(d, ["text", "train", d / "corpus.txt", "-o", d / "corpus.txt", *TINY, *extra], 6,
                      "corpus.txt", "input")


@pytest.mark.parametrize("target, words", [("nodir/m.pt", "does not exist"), ("dir", "directory"),
                                           ("model.pt", "--overwrite")])
def test_train_refuses_an_output_it_cannot_or_may_not_write(d, target, words):
    check_refused(d, ["text", "train", d / "corpus.txt", "-o", d / target, *TINY], 6, words)


def test_finetune_output_holding_the_corpus_is_refused(d):
    check_refused(d, ["text", "finetune", d / "corpus.txt", "-o", d, "--overwrite", "--offline"], 6, "input")


# -- generate: checkpoints that are not ours, bad options ------------------------------------------------------

MODELS = [
    ("missing", "nope.pt", 3, "not found"),
    ("empty", "empty.txt", 2, "empty file"),
    ("fifo", "fifo", 2, "not a regular file"),
    ("text_file", "corpus.txt", 2, "not a stylevid text model"),
    ("random_bytes", "binary.txt", 2, "not a stylevid text model"),
    ("truncated", "truncated.pt", 2, "truncated"),
    ("another_torch_file", "other.pt", 2, "not a stylevid text model"),
    ("pickle_that_runs_code", "pickle.pt", 2, "weights-only loader refused it"),
    ("torch_file_that_runs_code", "torch.pt", 2, "weights-only loader refused it"),
]


@pytest.mark.parametrize("name, code, words", [m[1:] for m in MODELS], ids=[m[0] for m in MODELS])
def test_generate_refuses_a_checkpoint_that_is_not_ours_without_unpickling_it(d, name, code, words):
    check_refused(d, ["text", "generate", d / name], code, name, words)
    assert not (d / "PWNED").exists()                   # the payload never ran


def test_the_code_running_checkpoints_do_run_code_when_unpickled(d, tmp_path):
    # The counter-proof: what the test above refuses really is dangerous.
    pickle.loads(pickle.dumps(Touch(str(tmp_path / "ran"))))
    assert (tmp_path / "ran").exists()


GENERATE_OPTIONS = [["--temperature", "-1"], ["--temperature", "0"], ["--temperature", "nan"], ["--top-p", "2"],
                    ["--top-p", "0"], ["--top-p", "nan"], ["--top-k", "-1"], ["--words", "0"], ["--count", "0"],
                    ["--device", "tpu"]]


@pytest.mark.parametrize("opt", GENERATE_OPTIONS, ids=[" ".join(o) for o in GENERATE_OPTIONS])
def test_generate_refuses_bad_option_values(d, opt):
    line = check_refused(d, ["text", "generate", d / "model.pt", *opt], 2)
    assert opt[0] in line


# -- faults: a full disk, signals during training ----------------------------------------------------------------

def test_train_on_a_full_disk_exits_7_and_leaves_no_partial_file(d, tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        fill(disk)
        r = invoke("text", "train", d / "corpus.txt", "-o", disk / "m.pt", *TINY)
        assert r.exit_code == 7, r.stderr
        one_error_line(r.stderr, "m.pt", "disk full")
        assert r.stdout == "" and not (disk / "m.pt").exists() and not leftovers(disk, "m.pt")


@pytest.fixture
def signal_at_epoch(monkeypatch):
    """``arm(epoch, signum, times)``: send ``signum`` to this process as that epoch's batches are drawn."""
    import importlib

    T = importlib.import_module("stylevid.text.train")     # (the package exports a function of that name)

    def arm(epoch: int, signum: int = signal.SIGINT, times: int = 1):
        draw = T.epoch_batches

        def drawing(ids, seq_len, batch_size, seed, e):
            if e == epoch:
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            return draw(ids, seq_len, batch_size, seed, e)

        monkeypatch.setattr(T, "epoch_batches", drawing)
    return arm


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                                (signal.SIGHUP, 129, "SIGHUP")])
def test_a_signal_stops_training_at_the_next_batch_with_a_checkpoint(d, tmp_path, signal_at_epoch, monkeypatch,
                                                                     signum, code, name):
    from stylevid.text import checkpoint

    out = tmp_path / "m.pt"
    signal_at_epoch(1, signum)
    r = invoke("text", "train", d / "corpus.txt", "-o", out, *TINY, "--epochs", "2")
    assert r.exit_code == code, r.stderr
    one_error_line(r.stderr, out, name, "epoch 2, batch 1", "--resume")
    assert r.stdout == ""
    saved = checkpoint.load(out)["train"]
    assert (saved["epoch"], saved["position"]) == (1, 1)
    monkeypatch.undo()
    r = invoke("text", "train", d / "corpus.txt", "-o", out, *TINY, "--epochs", "2", "--resume")
    assert r.exit_code == 0, r.stderr
    assert checkpoint.load(out)["train"]["epoch"] == 2


def test_a_second_ctrl_c_stops_training_at_once_and_keeps_the_last_checkpoint(d, tmp_path, signal_at_epoch,
                                                                               monkeypatch):
    from stylevid.text import checkpoint

    out = tmp_path / "m.pt"
    signal_at_epoch(1, signal.SIGINT, times=2)
    r = invoke("text", "train", d / "corpus.txt", "-o", out, *TINY, "--epochs", "2")
    assert r.exit_code == 130, r.stderr
    one_error_line(r.stderr, out, "stopped at once by a second Ctrl-C", "intact", "--resume")
    assert r.stdout == "" and not leftovers(tmp_path, "m.pt")
    saved = checkpoint.load(out)["train"]
    assert (saved["epoch"], saved["position"]) == (1, 0)            # the end-of-epoch-1 checkpoint
    monkeypatch.undo()
    r = invoke("text", "train", d / "corpus.txt", "-o", out, *TINY, "--epochs", "2", "--resume")
    assert r.exit_code == 0, r.stderr
    assert checkpoint.load(out)["train"]["epoch"] == 2
