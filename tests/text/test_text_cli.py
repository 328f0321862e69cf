from __future__ import annotations

import pickle

from typer.testing import CliRunner

from stylevid.cli_text import app

runner = CliRunner()
TINY = ["--hidden", "16", "--embedding", "16", "--seq-len", "16", "--device", "cpu", "-q"]


def test_train_and_generate_on_demo_corpus(tmp_path):
    out = tmp_path / "demo.pt"
    r = runner.invoke(app, ["train", "--demo-corpus", "-o", str(out), "--epochs", "1", "--minutes", "0.01", *TINY])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(out) and out.is_file()
    assert "validation perplexity" in r.stderr

    r = runner.invoke(app, ["train", "--demo-corpus", "-o", str(out), "--epochs", "1", *TINY])
    assert r.exit_code == 6 and "exists" in r.stderr

    args = ["generate", str(out), "--prompt", "The qqzzx statement", "--words", "8", "--seed", "3",
            "--count", "2", "--device", "cpu"]
    r1, r2 = runner.invoke(app, args), runner.invoke(app, args)
    assert r1.exit_code == 0, r1.stderr
    assert r1.stdout == r2.stdout
    samples = r1.stdout.strip().split("\n\nThe qqzzx")
    assert r1.stdout.startswith("The qqzzx statement") and len(samples) >= 2
    assert "warning:" in r1.stderr and "qqzzx" in r1.stderr
    assert "longest run copied verbatim from the training text" in r1.stderr


def test_bad_inputs_exit_2(tmp_path):
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(pickle.dumps({"not": "a model"}))
    r = runner.invoke(app, ["generate", str(foreign)])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "not a stylevid text model" in r.stderr

    binary = tmp_path / "b.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    r = runner.invoke(app, ["train", str(binary), "-o", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "binary" in r.stderr

    empty = tmp_path / "e.txt"
    empty.write_text("")
    assert runner.invoke(app, ["train", str(empty)]).exit_code == 2
    r = runner.invoke(app, ["train", "-o", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "--demo-corpus" in r.stderr
    short = tmp_path / "s.txt"
    short.write_text("Too short to learn anything.")
    r = runner.invoke(app, ["train", str(short), "-o", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "seq-len" in r.stderr
    r = runner.invoke(app, ["train", "--demo-corpus", "--level", "byte", "-o", str(tmp_path / "m.pt")])
    assert r.exit_code == 2
    assert runner.invoke(app, ["generate", str(tmp_path / "missing.pt")]).exit_code == 3
