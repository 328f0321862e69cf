"""Fixtures shared by the pipeline tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A small copy of a bundled sample (80x53)."""
    p = tmp_path_factory.mktemp("pics") / "photo.png"
    im = Image.open(SAMPLES / "chelsea.jpg").convert("RGB")
    im.thumbnail((80, 80))
    im.save(p)
    return p
