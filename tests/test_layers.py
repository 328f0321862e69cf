"""The import-layer rule: a module imports only modules of its own layer or lower ones.

L0 config, events, errors · L1 runtime, losses, warp, sphere, files, optimize, tiling · L2 encoders,
weights, images, flow, video · L3 pipelines, text · L4 cli, cli_text. Lazy imports inside
functions count too (they run sooner or later); only the package ``__init__`` may reach up, and
only from inside functions (``stylevid.stylize_image`` → pipelines).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "stylevid"
LAYERS = {
    "config": 0, "events": 0, "errors": 0,
    "runtime": 1, "losses": 1, "warp": 1, "sphere": 1, "files": 1, "optimize": 1, "tiling": 1, "stereo": 1, "hdr": 1,
    "sequence": 1,
    "encoders": 2, "weights": 2, "images": 2, "flow": 2, "video": 2,
    "pipelines": 3, "text": 3,
    "cli": 4, "cli_text": 4,
}
IMAGE_CODE = {"encoders", "images", "pipelines", "losses", "warp", "flow", "sphere", "video", "tiling", "stereo", "hdr",
              "sequence"}
MODULES = sorted(p for p in PKG.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit(name: str) -> str | None:
    """The layered unit of a dotted module name (``stylevid.encoders.vgg`` → ``encoders``)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (its __version__)


def is_module(name: str) -> bool:
    rel = PKG.parent.joinpath(*name.split("."))
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported stylevid module, line, at module level) for each import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    top_level = {id(n) for n in tree.body} | {id(n) for s in tree.body if isinstance(s, (ast.If, ast.Try))
                                              for n in ast.walk(s)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from . import weights``: the names may be submodules themselves.
            names = [f"{mod}.{a.name}" if is_module(f"{mod}.{a.name}") else mod for a in node.names]
        else:
            continue
        for n in names:
            if n == "stylevid" or n.startswith("stylevid."):
                found.append((n, node.lineno, id(node) in top_level))
    return found


def test_every_unit_has_a_layer():
    units = {unit(module_name(p)) for p in MODULES} - {None}
    assert units <= set(LAYERS), units - set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_go_down_the_layers(path):
    me = module_name(path)
    mine = unit(me)
    bad = []
    for target, line, module_level in imports(path):
        theirs = unit(target)
        if mine is None:  # the package __init__: nothing at import time, anything lazily
            if module_level and theirs is not None:
                bad.append(f"line {line}: {target} imported at module level")
            continue
        if theirs is None:
            continue  # ``from .. import __version__``
        if LAYERS[theirs] > LAYERS[mine]:
            bad.append(f"line {line}: {target} (L{LAYERS[theirs]}) from L{LAYERS[mine]}")
    assert not bad, f"{me}: " + "; ".join(bad)


def test_text_imports_no_image_code():
    bad = [f"{module_name(p)} line {line}: {t}" for p in MODULES if unit(module_name(p)) == "text"
           for t, line, _ in imports(p) if unit(t) in IMAGE_CODE]
    assert not bad


def test_nothing_imports_the_cli():
    bad = []
    for p in MODULES:
        me = unit(module_name(p))
        for t, line, _ in imports(p):
            if unit(t) == "cli" or (unit(t) == "cli_text" and me != "cli"):
                bad.append(f"{module_name(p)} line {line}: {t}")
    assert not bad


def test_the_package_root_is_light():
    """``import stylevid`` must not pull torch or the pipelines in."""
    import subprocess
    import sys

    code = "import sys, stylevid; print(sorted(m for m in sys.modules if m.startswith(('stylevid.', 'torch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
