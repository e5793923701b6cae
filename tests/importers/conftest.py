"""Fixtures of the importer tests: the third-party install and shared test images."""

from __future__ import annotations

from pathlib import Path

import pytest
from importers_helpers import write_images
from thirdparty import ensure_thirdparty


@pytest.fixture(scope="session")
def thirdparty_site() -> Path:
    """The folder with torchreid / fast-reid (installed on first use; skip if pip cannot)."""
    site, why = ensure_thirdparty()
    if site is None:
        pytest.skip(f"torchreid / fast-reid not installable here: {why}")
    return site


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Five PNG crops at the test input size (64x32)."""
    return write_images(tmp_path_factory.mktemp("crops"))
