"""A tiny teacher run and student params for the distillation tests, built once per session.

Data: ``reidkit synth``'s generator, 8 training identities at 32x16. Teacher: a ResNet-18
trained on it for one epoch (seconds). Student: OSNet-x0.25 (128-d, so the feature term
needs a projection to the teacher's 512-d), flip-only augmentation (the teacher's outputs are
cached) unless a test asks otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from distill_helpers import student_params, teacher_params


@pytest.fixture(scope="session")
def distill_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic Market-style data, 8 training ids, 32x16."""
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("distill_data")
    generate_synthetic(root, num_ids=8, num_cameras=3, img_h=32, img_w=16, seed=1,
                       images_per_id=8)  # fmt: skip
    return root


@pytest.fixture(scope="session")
def teacher_run(distill_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained ResNet-18 teacher run folder (best.pth, config.json)."""
    from reidkit.app.launch import train
    from reidkit.config import validate_config

    work = tmp_path_factory.mktemp("teacher")
    train(validate_config(teacher_params(distill_data, work)))
    return work / "teacher"


@pytest.fixture
def make_student(distill_data: Path, teacher_run: Path):
    """Factory: ``make_student(work, **over) -> params`` distilling ``teacher_run``."""

    def make(work: Path, **over) -> dict:
        return student_params(distill_data, work, teacher_run, **over)

    return make
