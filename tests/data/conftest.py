"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Market-style dataset (6 train ids, 4 test ids, 64x32)."""
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synth_small")
    generate_synthetic(
        root, num_ids=6, num_test_ids=4, num_cameras=3, img_h=64, img_w=32, images_per_id=8
    )
    return root
