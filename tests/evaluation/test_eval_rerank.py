"""k-reciprocal re-ranking and query expansion against a dense transcription of the paper's code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.evaluation import evaluate_reid
from reidkit.evaluation.rerank import KReciprocalDistance, query_expansion
from reidkit.utils.errors import ConfigError


def _reference_rerank(qf, gf, k1, k2, lam):
    """The published algorithm, dense and per image (float64), as in Zhong et al.'s code."""
    feat = np.concatenate([qf, gf]).astype(np.float64)
    nq, n = len(qf), len(feat)
    sq = (feat**2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * feat @ feat.T
    dist = np.maximum(dist, 0)
    od = np.transpose(dist / np.max(dist, axis=0))
    rank = np.argsort(od, axis=1, kind="stable")
    v = np.zeros_like(od)
    kh = int(np.around(k1 / 2.0)) + 1
    for i in range(n):
        fwd = rank[i, : k1 + 1]
        back = rank[fwd, : k1 + 1]
        rec = fwd[np.where(back == i)[0]]
        expansion = rec
        for c in rec:
            cf = rank[c, :kh]
            cb = rank[cf, :kh]
            crec = cf[np.where(cb == c)[0]]
            if len(np.intersect1d(crec, rec)) > 2.0 / 3 * len(crec):
                expansion = np.append(expansion, crec)
        expansion = np.unique(expansion)
        w = np.exp(-od[i, expansion])
        v[i, expansion] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.zeros((nq, n))
    for i in range(nq):
        temp = np.minimum(v[i][None, :], v).sum(1)
        jac[i] = 1 - temp / (2 - temp)
    final = jac * (1 - lam) + od[:nq] * lam
    return final[:, nq:]


@pytest.mark.parametrize(("k1", "k2", "lam"), [(6, 3, 0.3), (5, 1, 0.5), (20, 6, 0.3)])
def test_rerank_matches_dense_reference(k1: int, k2: int, lam: float) -> None:
    rng = np.random.default_rng(k1)
    centres = rng.standard_normal((8, 16))
    qf = centres[rng.integers(0, 8, 20)] + 0.6 * rng.standard_normal((20, 16))
    gf = centres[rng.integers(0, 8, 70)] + 0.6 * rng.standard_normal((70, 16))
    ref = _reference_rerank(qf, gf, k1, k2, lam)
    rr = KReciprocalDistance(torch.tensor(qf), torch.tensor(gf), k1=k1, k2=k2, lambda_value=lam)
    ours = torch.cat([rr(0, 7), rr(7, 20)]).double().numpy()  # two blocks
    assert ours.shape == (20, 70)
    assert np.abs(ours - ref).max() < 1e-5


def test_rerank_improves_a_clustered_problem() -> None:
    torch.manual_seed(0)
    centres = torch.randn(10, 32)
    q_pids, g_pids = torch.arange(30) % 10, torch.arange(200) % 10
    qf = centres[q_pids] + 1.1 * torch.randn(30, 32)
    gf = centres[g_pids] + 1.1 * torch.randn(200, 32)
    qc, gc = torch.zeros(30, dtype=torch.long), torch.ones(200, dtype=torch.long)
    base = evaluate_reid(qf, gf, q_pids, g_pids, qc, gc)
    rr = KReciprocalDistance(qf, gf)
    reranked = evaluate_reid(qf, gf, q_pids, g_pids, qc, gc, dist_fn=rr, chunk_size=8)
    assert reranked["mAP"] > base["mAP"]


def test_query_expansion_averages_top_k() -> None:
    qf = torch.tensor([[0.0, 0.0]])
    gf = torch.tensor([[1.0, 0.0], [0.0, 2.0], [10.0, 10.0]])
    out = query_expansion(qf, gf, 2)
    assert torch.allclose(out, torch.tensor([[1.0 / 3, 2.0 / 3]]))
    assert query_expansion(qf, gf, 0) is qf
    with pytest.raises(ConfigError, match="query_expansion = -1"):
        query_expansion(qf, gf, -1)


def test_rerank_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="re-ranking: k1 = 0"):
        KReciprocalDistance(torch.zeros(2, 2), torch.ones(3, 2), k1=0)
