"""stylevid.text never imports image code."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import stylevid.text

FORBIDDEN = {"encoders", "images", "pipelines", "losses", "warp", "flow", "sphere", "video", "cli"}
ALLOWED_THIRD_PARTY = {"torch", "transformers", "huggingface_hub", "tokenizers"}


def test_text_imports_only_core_modules():
    folder = Path(stylevid.text.__file__).parent
    for f in folder.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level == 2:              # from ..x import y
                    assert mod.split(".")[0] not in FORBIDDEN, f"{f.name}: from ..{mod}"
                elif node.level == 0:
                    top = mod.split(".")[0]
                    assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names, f"{f.name}: {mod}"
                    if top == "stylevid":
                        assert mod.split(".")[1] not in FORBIDDEN, f"{f.name}: {mod}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names, f"{f.name}: {alias.name}"


def test_importing_text_loads_no_image_module():
    code = ("import sys, stylevid.text, stylevid.cli_text; "
            "bad = [m for m in sys.modules if m.startswith('stylevid.') and m.split('.')[1] in "
            f"{sorted(FORBIDDEN - {'cli'})!r}]; "
            "bad += [m for m in ('transformers', 'torchvision', 'PIL', 'av', 'cv2') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
