"""Exactness: evaluate_reid equals a straightforward per-query numpy implementation.

The reference follows the published protocols literally, one query at a time: stable argsort
of the distances, remove same-id-same-camera and junk (-1) gallery items, keep distractors (0),
CMC / AP / INP of the remaining list; CUHK03 single-shot draws one gallery image per identity
(using the library's seeded priorities as the random source) and averages the CMC over draws.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.evaluation import evaluate_reid, pairwise_distance
from reidkit.evaluation.metrics import shot_priority

RANKS = (1, 2, 5, 10, 20)


@pytest.fixture(params=["sparse", "dense"], autouse=True)
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with both ranking strategies of ``match_ranks`` forced."""
    from reidkit.evaluation import ranking

    monkeypatch.setattr(ranking, "DENSE_FRACTION", 2.0 if request.param == "sparse" else -1.0)
    return request.param


def _reference(dist, qp, gp, qc, gc, protocol="market", repeats=10, seed=0):
    nq, ng = dist.shape
    cmcs, aps, inps = [], [], []
    for i in range(nq):
        order = np.argsort(dist[i], kind="stable")
        p, c = gp[order], gc[order]
        keep = ~(((p == qp[i]) & (c == qc[i])) | (p == -1))
        raw = (p[keep] == qp[i]).astype(np.int64)
        if raw.sum() == 0:
            continue
        hits = np.cumsum(raw)
        aps.append(float((hits / np.arange(1, raw.size + 1) * raw).sum() / raw.sum()))
        inps.append(raw.sum() / (np.nonzero(raw)[0].max() + 1))
        if protocol == "market":
            cmc = (hits >= 1).astype(np.float64)
        else:
            kept_idx, kept_pids = order[keep], p[keep]
            cmc = np.zeros(raw.size)
            for rep in range(repeats):
                prio = shot_priority(seed, rep, torch.tensor([i]), ng)[0].numpy()
                chosen = np.zeros(raw.size, dtype=bool)
                for pid in np.unique(kept_pids):
                    members = np.nonzero(kept_pids == pid)[0]
                    chosen[members[np.argmax(prio[kept_idx[members]])]] = True
                r = raw[chosen]
                cmc[: r.size] += (np.cumsum(r) >= 1).astype(np.float64)
                cmc[r.size :] += 1.0  # the sampled match is always within the sampled list
            cmc /= repeats
        cmc = np.concatenate([cmc, np.full(max(RANKS), cmc[-1])])  # pad short lists
        cmcs.append(cmc)
    out = {f"rank{k}": float(np.mean([c[k - 1] for c in cmcs])) for k in RANKS}
    out.update(mAP=float(np.mean(aps)), mINP=float(np.mean(inps)))
    out.update(num_queries=nq, num_valid_queries=len(aps))
    return out


def _problem(seed: int, nq: int = 60, ng: int = 400):
    """Integer features (many exact ties), junk, distractors, missing ids, 4 cameras."""
    rng = np.random.default_rng(seed)
    qf = rng.integers(-2, 3, size=(nq, 4)).astype(np.float32)
    gf = rng.integers(-2, 3, size=(ng, 4)).astype(np.float32)
    qp = rng.integers(1, 25, size=nq)  # ids 21..24 are rare / absent in the gallery
    gp = rng.integers(1, 21, size=ng)
    gp[rng.random(ng) < 0.1] = -1
    gp[rng.random(ng) < 0.1] = 0
    qc, gc = rng.integers(0, 4, size=nq), rng.integers(0, 4, size=ng)
    return qf, gf, qp, gp, qc, gc


def _assert_same(ours: dict, ref: dict) -> None:
    assert ours["num_queries"] == ref["num_queries"]
    assert ours["num_valid_queries"] == ref["num_valid_queries"]
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("protocol", ["market", "cuhk03"])
def test_euclidean_matches_reference(seed: int, protocol: str) -> None:
    qf, gf, qp, gp, qc, gc = _problem(seed)
    dist = ((qf[:, None, :].astype(np.float64) - gf[None, :, :]) ** 2).sum(-1)
    ref = _reference(dist, qp, gp, qc, gc, protocol)
    assert ref["num_valid_queries"] < ref["num_queries"]  # some queries have no match
    ours = evaluate_reid(qf, gf, qp, gp, qc, gc, ranks=RANKS, protocol=protocol, chunk_size=7)
    _assert_same(ours, ref)


@pytest.mark.parametrize("protocol", ["market", "cuhk03"])
def test_cosine_matches_reference(protocol: str) -> None:
    qf, gf, qp, gp, qc, gc = _problem(5)
    gf[np.all(gf == 0, axis=1)] = 1.0  # cosine needs non-zero vectors
    qf[np.all(qf == 0, axis=1)] = 1.0
    dist = pairwise_distance(torch.from_numpy(qf), torch.from_numpy(gf), "cosine").numpy()
    q = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    g = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    assert np.abs(dist - (1 - q @ g.T)).max() < 1e-6
    ref = _reference(dist.astype(np.float64), qp, gp, qc, gc, protocol)
    ours = evaluate_reid(
        qf, gf, qp, gp, qc, gc, ranks=RANKS, protocol=protocol, distance="cosine", chunk_size=16
    )
    _assert_same(ours, ref)
