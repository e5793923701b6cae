"""A source / target pair for the adaptation tests, built once per session.

Source: ``reidkit synth`` (seed 0) and a ResNet-18 trained on it from scratch (64x32, CPU,
seconds). Target: another ``reidkit synth`` (seed 1: other people, other cameras) whose every
image then goes through a night camera the source never saw: dim, low contrast, blue tint.
The target's train split serves as the unlabeled crops (its names are ignored), its query /
gallery (other identities) as the labelled test folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from adapt_helpers import base_params, night_camera

pytest.importorskip("sklearn", reason="adaptation needs the adapt extra (scikit-learn)")


@pytest.fixture(scope="session")
def domains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths: ``source`` data, ``target`` data (night camera), ``run`` (the source model)."""
    from reidkit.app.launch import train
    from reidkit.config import validate_config
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("domains")
    kw = {"num_ids": 12, "num_cameras": 3, "img_h": 64, "img_w": 32, "images_per_id": 12}
    generate_synthetic(root / "source", seed=0, **kw)
    generate_synthetic(root / "target", seed=1, **kw)
    night_camera(root / "target")
    params = base_params(root / "source", root / "runs", sub_working_dir="source")
    train(validate_config(params))
    return {"source": root / "source", "target": root / "target", "run": root / "runs/source"}


@pytest.fixture
def adapt_params(domains: dict[str, Path]):
    """Factory: params adapting the source model to the target (``**over`` replaces keys).

    The learning rate is 1e-4: on this tiny target (155 crops, ~14 clusters of ~5) most of the
    gain comes from the target BatchNorm statistics (mAP ~0.24 -> ~0.41), and 3.5e-4 trained
    it away again within two epochs (~0.27), while 1e-4 keeps it (~0.40-0.42)."""

    def make(work: Path, adapt: dict | None = None, **over) -> dict:
        section = {
            "unlabeled": str(domains["target"] / "bounding_box_train"),
            "eval_data": str(domains["target"]),
            "k1": 10,
            "k2": 3,
            "eps": 0.5,
            "iters": 8,
            "target_bn": True,  # a night camera: the shift AdaBN is for
            **(adapt or {}),
        }
        params = base_params(
            domains["source"],
            work,
            epoch=2,
            pretrain_snapshot=str(domains["run"] / "last.pth"),
            lr={"base_lr": 0.0001, "decay_step": [100], "decay_unit": "epoch"},  # see below
            evaluation_params={"type": "market_evaluate"},
            adapt=section,
        )
        params.update(over)
        return params

    return make
