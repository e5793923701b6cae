"""Same-person thresholds: exact against brute force, monotone, stored and read back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.evaluation.thresholds import (
    ThresholdTable,
    thresholds_from_features,
    thresholds_from_scores,
)
from reidkit.utils.errors import DataError


def _features(seed: int = 0):
    """Query / gallery features around identity centres, with cameras and a junk item."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(30, 24, generator=g) * 1.2
    q_pids, g_pids = torch.arange(300) % 30, torch.arange(900) % 30
    g_pids[:5] = -1  # junk: never a pair
    qf = centres[q_pids] + torch.randn(300, 24, generator=g)
    gf = centres[g_pids.clamp(min=0)] + torch.randn(900, 24, generator=g)
    return qf, gf, q_pids, g_pids, torch.arange(300) % 3, torch.arange(900) % 4


def _brute_pairs(qf, gf, q_pids, g_pids, q_cams, g_cams):
    unit = torch.nn.functional.normalize
    sim = unit(qf, dim=1) @ unit(gf, dim=1).T
    valid = (q_cams[:, None] != g_cams[None, :]) & (g_pids[None, :] != -1)
    same = q_pids[:, None] == g_pids[None, :]
    return sim[valid], same[valid]


def test_query_gallery_thresholds_are_exact():
    feats = _features()
    table = thresholds_from_features(*feats, source="synthetic", measured_on="test")
    scores, labels = _brute_pairs(*feats)
    neg, pos = scores[~labels], scores[labels]
    assert table.num_negative == neg.numel() and table.num_positive == pos.numel()
    for fpr, t, tpr in zip(table.fpr, table.thresholds, table.tpr, strict=True):
        # at most fpr of the negatives score above t, and any lower value lets more through
        assert (neg > t).sum() <= fpr * neg.numel() < (neg >= t).sum()
        assert tpr == pytest.approx(float((pos > t).double().mean()))
    # the same pairs given as scores give the same table
    flat = thresholds_from_scores(scores, labels)
    assert flat.thresholds == pytest.approx(table.thresholds)
    assert flat.eer == pytest.approx(table.eer) and flat.eer_threshold == table.eer_threshold
    # the equal-error point: false accepts and false rejects balance at the threshold
    far = float((neg > table.eer_threshold).double().mean())
    frr = float((pos <= table.eer_threshold).double().mean())
    assert max(far, frr) == pytest.approx(table.eer) and abs(far - frr) < 0.01


def test_thresholds_monotone_and_round_trip():
    table = thresholds_from_features(*_features(1))
    assert table.fpr == (1e-2, 1e-3, 1e-4)
    assert list(table.thresholds) == sorted(table.thresholds)  # stricter FPR, higher threshold
    assert list(table.tpr) == sorted(table.tpr, reverse=True)
    assert table.threshold(1e-3) == table.thresholds[1]
    back = ThresholdTable.from_json(table.to_json(), "x")
    assert back == table
    assert table.resolved(1e-4)  # ~2e5 negatives: 19 above the 1e-4 threshold
    assert "rough" not in table.format()
    with pytest.raises(DataError, match="fpr = 0.05 is not calibrated"):
        table.threshold(0.05)


def test_separable_scores_and_bad_input():
    table = thresholds_from_scores(
        np.array([0.9, 0.8, 0.95, 0.1, 0.2, 0.3]), np.array([1, 1, 1, 0, 0, 0])
    )
    assert table.eer == 0.0 and 0.3 <= table.eer_threshold < 0.8
    assert not table.resolved(1e-2) and "rough: 0 negatives above" in table.format()
    with pytest.raises(DataError, match="same-identity and different-identity"):
        thresholds_from_scores([0.1, 0.2], [1, 1])
    with pytest.raises(DataError, match="calibration table is damaged"):
        ThresholdTable.from_dict({"fpr": [0.01]}, "ckpt[calibration]")
    with pytest.raises(DataError, match="not valid JSON"):
        ThresholdTable.from_json("{", "model.onnx[calibration]")
