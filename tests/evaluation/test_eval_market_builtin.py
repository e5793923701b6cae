"""market_evaluate / extract_features on a real synthetic dataset with a real ResNet-18."""

from __future__ import annotations

import pytest
import torch

from reidkit.evaluation import extract_features, get_evaluator, run_evaluator


@pytest.fixture(scope="module")
def model():
    from reidkit.models import ReidModel

    torch.manual_seed(0)
    return ReidModel("resnet18", num_classes=4).eval()


def test_market_evaluate_end_to_end(eval_cfg, model) -> None:
    from reidkit.data import build_dataset

    ds = build_dataset(eval_cfg)
    ev = get_evaluator(eval_cfg.evaluation_params.type)
    m = run_evaluator(ev, eval_cfg, model, dataset=ds, device="cpu", writer=None, epoch=1)
    assert set(m) >= {"rank1", "rank3", "mAP", "mINP", "num_queries", "num_valid_queries"}
    assert m["num_queries"] == len(ds.query)
    assert 0 < m["num_valid_queries"] <= len(ds.query)
    assert 0.0 <= m["rank1"] <= m["rank3"] <= 1.0 and 0.0 < m["mAP"] <= 1.0


def test_extract_features_flip_and_training_state(eval_cfg, model) -> None:
    from reidkit.data import build_dataset, build_test_loader

    ds = build_dataset(eval_cfg)
    loader = build_test_loader(eval_cfg, ds.query, ds.source, "cpu")
    model.train()
    f, pids, cams = extract_features(model, loader, "cpu")
    assert model.training  # restored
    model.eval()
    assert f.shape == (len(ds.query), model.embedding_dim)
    assert pids.tolist() == [r.pid for r in ds.query]
    assert cams.tolist() == [r.camid for r in ds.query]
    f_flip, _, _ = extract_features(model, loader, "cpu", flip=True)
    with torch.inference_mode():
        x = next(iter(loader)).images
        manual = (model(x) + model(x.flip(-1))) / 2
    assert torch.allclose(f_flip[: len(x)], manual, atol=1e-5)
    assert not torch.allclose(f_flip, f)
    f_ms, _, _ = extract_features(model, loader, "cpu", scales=(1.0, 0.75))
    assert f_ms.shape == f.shape and not torch.allclose(f_ms, f)
