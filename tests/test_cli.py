"""The ``stylevid`` command (cli.py): ``image`` and ``layers``, exit codes, stdout/stderr split."""
from __future__ import annotations

import json
import inspect
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from stylevid.cli import app
from stylevid.images import load_image

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FAST = ["--size", "48", "--scales", "1", "--iterations", "2", "--device", "cpu", "--quiet"]


def runner() -> CliRunner:
    # click < 8.2 mixes stderr into stdout unless told not to; click ≥ 8.2 always keeps them apart.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A temporary current folder with a small photo and a small painting."""
    monkeypatch.chdir(tmp_path)
    for name, src in (("photo.png", "chelsea.jpg"), ("paint.png", "swirls.jpg")):
        im = Image.open(SAMPLES / src).convert("RGB")
        im.thumbnail((64, 64))
        im.save(tmp_path / name)
    return tmp_path


def test_image_success_prints_only_the_output_path(work):
    r = runner().invoke(app, ["image", "photo.png", "--style", "paint.png", "-o", "out.png", *FAST])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "out.png\n"
    assert max(load_image(work / "out.png").shape[:2]) == 48
    side = json.loads((work / "out.png.json").read_text())
    assert side["config"]["size"] == 48 and side["config"]["iterations"] == 2


def test_image_default_output_and_progress_on_stderr(work):
    r = runner().invoke(app, ["image", "photo.png", "-s", "paint.png", *[a for a in FAST if a != "--quiet"]])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "photo_paint.png\n"
    assert (work / "photo_paint.png").is_file()
    assert "photo.png" in r.stderr  # the library's messages went to stderr


def test_image_options_reach_the_config(work):
    r = runner().invoke(app, ["image", "photo.png", "-s", "paint.png", "-s", "photo.png", "--style-blend", "3,1",
                              "--init", "noise", "--optimizer", "adam", "--layer-weight", "stem:2",
                              "--style-layers", "stem,block2", "--content-layers", "block4", "--preserve-colors",
                              "--seed", "3", "-o", "b.png", *FAST])
    assert r.exit_code == 0, r.stderr
    cfg = json.loads((work / "b.png.json").read_text())["config"]
    assert cfg["style_blend"] == [3.0, 1.0] and cfg["init"] == "noise" and cfg["optimizer"] == "adam"
    assert cfg["layer_weights"] == {"stem": 2.0} and cfg["style_layers"] == ["stem", "block2"]
    assert cfg["content_layers"] == ["block4"] and cfg["preserve_colors"] is True and cfg["seed"] == 3


def test_image_paints_several_photos_in_one_run(work):
    (work / "out").mkdir()
    Image.open(work / "photo.png").transpose(Image.FLIP_LEFT_RIGHT).save(work / "other.png")
    r = runner().invoke(app, ["image", "photo.png", "other.png", "-s", "paint.png", "-o", "out", *FAST])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "out/photo_paint.png\nout/other_paint.png\n"          # in order, paths only
    a, b = load_image(work / "out/photo_paint.png"), load_image(work / "out/other_paint.png")
    # each output is its own photo painted: the mirrored photo gives (nearly) the mirrored painting
    assert np.abs(a[:, ::-1].astype(int) - b).mean() < 0.5 * np.abs(a.astype(int) - b).mean()
    r = runner().invoke(app, ["image", "photo.png", "other.png", "-s", "paint.png", *FAST])    # no -o: here
    assert r.exit_code == 0 and r.stdout == "photo_paint.png\nother_paint.png\n"


def test_image_paints_a_folder_of_photos(work):
    (work / "holiday").mkdir()
    (work / "holiday" / "b.png").write_bytes((work / "photo.png").read_bytes())
    Image.open(work / "photo.png").convert("RGB").save(work / "holiday" / "a.jpg")
    (work / "holiday" / "notes.txt").write_text("not a photo")
    (work / "holiday" / "sub").mkdir()                       # not gone into
    (work / "out").mkdir()
    r = runner().invoke(app, ["image", "holiday", "-s", "paint.png", "-o", "out", *FAST])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "out/a_paint.png\nout/b_paint.png\n"
    _fails(["image", "holiday/sub", "-s", "paint.png", *FAST], 2, "a folder with no photos")


def test_a_batch_is_checked_whole_before_the_first_photo_is_painted(work):
    (work / "sub").mkdir()
    (work / "sub" / "photo.png").write_bytes((work / "photo.png").read_bytes())
    _fails(["image", "photo.png", "sub/photo.png", "-s", "paint.png", "-o", "x.png", *FAST], 2, "existing folder")
    _fails(["image", "photo.png", "missing.png", "-s", "paint.png", *FAST], 3, "missing.png")
    _fails(["image", "photo.png", "sub/photo.png", "-s", "paint.png", *FAST], 2, "would both write photo_paint.png")
    (work / "photo_paint.png").write_bytes(b"keep")
    _fails(["image", "sub/photo.png", "-s", "paint.png", "-o", "photo_paint.png", *FAST], 6, "exists")
    _fails(["image", "photo.png", "photo_paint.png", "-s", "paint.png", "--overwrite", *FAST], 6,
           "overwrite an input")                  # photo.png's output would be the second photo
    assert sorted(p.name for p in work.iterdir()) == ["paint.png", "photo.png", "photo_paint.png", "sub"]
    assert (work / "photo_paint.png").read_bytes() == b"keep"


def test_a_batch_that_fails_part_way_still_prints_what_it_finished(work):
    (work / "broken.png").write_bytes((work / "photo.png").read_bytes()[:200])   # truncated: fails to decode
    r = runner().invoke(app, ["image", "photo.png", "broken.png", "-s", "paint.png", *FAST])
    assert r.exit_code == 4, r.stderr
    assert r.stdout == "photo_paint.png\n" and (work / "photo_paint.png").is_file()
    assert "broken.png" in r.stderr


def test_a_batch_run_again_with_skip_existing_goes_on_where_it_stopped(work):
    (work / "two.png").write_bytes((work / "photo.png").read_bytes())
    (work / "out").mkdir()
    (work / "out" / "photo_paint.png").write_bytes(b"painted before the stop")
    r = runner().invoke(app, ["image", "photo.png", "two.png", "-s", "paint.png", "-o", "out", "--skip-existing", *FAST])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "out/photo_paint.png\nout/two_paint.png\n"                 # every output of the batch
    assert (work / "out" / "photo_paint.png").read_bytes() == b"painted before the stop"
    assert max(load_image(work / "out" / "two_paint.png").shape[:2]) == 48
    _fails(["image", "photo.png", "-s", "paint.png", "-o", "out", *FAST], 6, "exists")
    _fails(["image", "photo.png", "-s", "paint.png", "-o", "out", "--skip-existing", "--overwrite", *FAST], 2,
           "choose one")
    _fails(["image", "photo.png", "-s", "paint.png", "-o", "photo.png", "--skip-existing", *FAST], 6,
           "overwrite an input")                  # an input is never taken for a finished output


def test_several_videos_in_one_command(work):
    from tests.cli_helpers import FAST_VIDEO
    from tests.clips import make_clip, moving_square

    for name in ("a.mp4", "b.mp4"):
        make_clip(work / name, moving_square(2, 32, 48))
    (work / "out").mkdir()
    _fails(["video", "a.mp4", "b.mp4", "-s", "paint.png", "-o", "x.mp4", *FAST_VIDEO], 2, "with 2 videos",
           "existing folder")
    _fails(["video", "a.mp4", "c.mp4", "-s", "paint.png", "-o", "out", *FAST_VIDEO], 3, "c.mp4: video not found")
    assert list((work / "out").iterdir()) == []
    r = runner().invoke(app, ["video", "a.mp4", "b.mp4", "-s", "paint.png", "-o", "out", *FAST_VIDEO])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "out/a_paint.mp4\nout/b_paint.mp4\n"
    (work / "out" / "b_paint.mp4").unlink()                                       # as if stopped in b
    r = runner().invoke(app, ["video", "a.mp4", "b.mp4", "-s", "paint.png", "-o", "out", "--skip-existing",
                              *FAST_VIDEO])
    assert r.exit_code == 0 and r.stdout == "out/a_paint.mp4\nout/b_paint.mp4\n", r.stderr
    assert (work / "out" / "b_paint.mp4").is_file()
    r = runner().invoke(app, ["video", "a.mp4", "-s", "paint.png", "--codec", "prores", *FAST_VIDEO])
    assert r.exit_code == 0 and r.stdout == "a_paint.mov\n", r.stderr               # ProRes: .mov by default


def _fails(args: list[str], code: int, *words: str) -> None:
    r = runner().invoke(app, args)
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    err = r.stderr.strip()
    for w in words:
        assert w in err, err


def test_missing_file_exits_3(work):
    _fails(["image", "nope.png", "-s", "paint.png", *FAST], 3, "error:", "nope.png")
    _fails(["image", "photo.png", "-s", "nope.png", *FAST], 3, "nope.png")
    assert sorted(p.name for p in work.iterdir()) == ["paint.png", "photo.png"]


def test_not_an_image_exits_4(work):
    (work / "notes.png").write_text("hello\n")
    _fails(["image", "notes.png", "-s", "paint.png", *FAST], 4, "notes.png")
    assert not (work / "notes_paint.png").exists()


def test_empty_file_and_directory_exit_2(work):
    (work / "empty.png").write_bytes(b"")
    _fails(["image", "empty.png", "-s", "paint.png", *FAST], 2, "empty")
    (work / "nophotos").mkdir()
    _fails(["image", "nophotos", "-s", "paint.png", *FAST], 2, "a folder with no photos")   # a folder of photos is painted


def test_decompression_bomb_exits_5(work):
    from tests.test_images import bomb_png

    bomb_png(work / "bomb.png")
    _fails(["image", "bomb.png", "-s", "paint.png", *FAST], 5, "bomb.png")


@pytest.mark.parametrize("opt", [["--init", "zeros"], ["--optimizer", "sgd"], ["--encoder", "resnet"],
                                 ["--style-weight", "-1"], ["--style-blend", "1,2"], ["--style-blend", "a,b"],
                                 ["--size", "4"], ["--layer-weight", "stem:x"], ["--device", "tpu"],
                                 ["--size", "big"]])
def test_bad_option_exits_2(work, opt):
    r = runner().invoke(app, ["image", "photo.png", "-s", "paint.png", *FAST, *opt])
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert sorted(p.name for p in work.iterdir()) == ["paint.png", "photo.png"]  # nothing written


def test_existing_output_exits_6_and_is_kept(work):
    (work / "out.png").write_bytes(b"precious")
    _fails(["image", "photo.png", "-s", "paint.png", "-o", "out.png", *FAST], 6, "--overwrite")
    assert (work / "out.png").read_bytes() == b"precious"
    _fails(["image", "photo.png", "-s", "paint.png", "-o", "photo.png", "--overwrite", *FAST], 6, "input")
    r = runner().invoke(app, ["image", "photo.png", "-s", "paint.png", "-o", "out.png", "--overwrite", *FAST])
    assert r.exit_code == 0, r.stderr
    assert (work / "out.png").read_bytes() != b"precious"


def test_layers_lists_lite0():
    r = runner().invoke(app, ["layers", "--encoder", "lite0"])
    assert r.exit_code == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert rows["block15"][1:3] == ["320", "32"]
    assert rows["stem"][1:3] == ["32", "2"]
    assert "content" in rows["block7"][-1] and "style" in rows["block7"][-1]
    default = runner().invoke(app, ["layers"])
    assert default.stdout == r.stdout


def test_layers_lists_vgg19():
    r = runner().invoke(app, ["layers", "--encoder", "vgg19"])
    assert r.exit_code == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert rows["relu5_4"][1] == "512" and rows["relu4_2"][-1] == "content"


def test_layers_unknown_encoder_exits_2():
    r = runner().invoke(app, ["layers", "--encoder", "resnet"])
    assert r.exit_code == 2 and "resnet" in r.stderr


def _commands(cmd, path: tuple[str, ...] = ()):
    yield path
    if hasattr(cmd, "commands"):  # a group (typer may ship its own click: no isinstance check)
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))


def test_help_for_every_command():
    paths = list(_commands(typer.main.get_command(app)))
    assert ("image",) in paths and ("layers",) in paths
    for path in paths:
        r = runner().invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.stdout, r.stderr)
        assert "Usage" in r.stdout, path


def test_no_arguments_shows_help():
    r = runner().invoke(app, [])
    assert "image" in r.stdout + r.stderr and "layers" in r.stdout + r.stderr


def test_crf_with_prores_is_said_to_be_ignored(work):
    from tests.cli_helpers import FAST_VIDEO
    from tests.clips import make_clip, moving_square

    make_clip(work / "a.mp4", moving_square(2, 32, 48))
    r = runner().invoke(app, ["video", "a.mp4", "-s", "paint.png", "--codec", "prores", "--crf", "10",
                              *[a for a in FAST_VIDEO if a != "--quiet"]])
    assert r.exit_code == 0 and r.stdout == "a_paint.mov\n", r.stderr
    assert "--crf 10: ProRes has no crf" in r.stderr


def test_log_lines_say_the_time_taken_and_left(monkeypatch, capsys):
    """Without a terminal each progress line carries the time this run has taken and, from its pace
    since it first saw the task (a resumed job's frames count from where it picked up), the time
    left; the last line only the time taken."""
    from stylevid import cli
    from stylevid.events import Progress

    clock = {"t": 1000.0}
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock["t"])
    r = cli.Renderer()
    assert not r.live
    r(Progress("frames", 40, 100))          # resumed at 40 of 100
    clock["t"] += 60
    r(Progress("frames", 50, 100))          # 10 frames a minute: 50 left, 5 minutes
    clock["t"] += 3600
    r(Progress("frames", 100, 100))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["frames: 40/100", "frames: 50/100 (1m00s, about 5m00s left)", "frames: 100/100 (1h01m)"]
    assert [cli.clock(s) for s in (4.4, 65, 7260)] == ["4s", "1m05s", "2h01m"]


def test_help_is_plain_where_panels_would_cut_option_names(monkeypatch):
    """Under 100 columns or into a pipe the help is click's plain layout, where every option name
    is whole (rich's panels at 80 columns printed "--first-iterati…"); no escape backslashes."""
    from stylevid import cli
    from stylevid.cli_text import app as text_app

    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: False, raising=False)
    assert cli.help_mode() is None
    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: __import__("os").terminal_size((99, 40)))
    assert cli.help_mode() is None
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: __import__("os").terminal_size((100, 40)))
    assert cli.help_mode() == "rich"
    monkeypatch.setattr(cli.app, "rich_markup_mode", None)
    monkeypatch.setattr(text_app, "rich_markup_mode", None)
    for path in (["video"], ["dream"], ["text", "train"]):
        out = runner().invoke(cli.app, [*path, "--help"], terminal_width=80).stdout
        assert "…" not in out and "\\[" not in out, path
    out = runner().invoke(cli.app, ["video", "--help"], terminal_width=80).stdout
    for name in ("--first-iterations", "--reveal-iterations", "--temporal-weight", "--no-warm-start"):
        assert name in out
    assert "(default: to the end)" in " ".join(out.split())
