"""evaluate_reid against a hand-computed example, chunking, devices, bad inputs."""

from __future__ import annotations

import pytest
import torch

from reidkit.evaluation import evaluate_reid
from reidkit.utils.errors import ConfigError, DataError

# Gallery on a line (1-D features); the query's distance to item i is |q - x_i|.
#   idx  x    pid  cam
#   g0   1.0   1    0
#   g1   2.0   2    1
#   g2   3.0   1    1
#   g3   4.0  -1    1   junk: always removed
#   g4   5.0   0    1   distractor: stays as a negative
#   g5   6.0   1    2
G_X = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
G_PID = [1, 2, 1, -1, 0, 1]
G_CAM = [0, 1, 1, 1, 1, 2]
# Queries:
#   q0 at 0.0, pid 1, cam 0: order g0..g5; g0 removed (same pid+cam), g3 junk.
#       kept: g1(neg) g2(hit) g4(neg) g5(hit) -> hits at ranks 2, 4
#       AP = (1/2 + 2/4) / 2 = 1/2 ; INP = 2 / 4 = 1/2 ; first hit rank 2
#   q1 at 2.5, pid 1, cam 2: g1 and g2 tie at 0.5 -> stable order keeps g1 (lower index) first;
#       g0 and g3 tie at 1.5 (g3 junk); g5 removed (same pid+cam).
#       kept: g1(neg) g2(hit) g0(hit) g4(neg) -> hits at ranks 2, 3
#       AP = (1/2 + 2/3) / 2 = 7/12 ; INP = 2 / 3 ; first hit rank 2
#   q2 at 2.0, pid 2, cam 1: the only pid-2 item g1 has the same camera -> no valid match,
#       counted in num_queries, left out of every average.
Q_X = [0.0, 2.5, 2.0]
Q_PID = [1, 1, 2]
Q_CAM = [0, 2, 1]


def _example(**kw):
    qf = torch.tensor(Q_X)[:, None]
    gf = torch.tensor(G_X)[:, None]
    return evaluate_reid(
        qf,
        gf,
        torch.tensor(Q_PID),
        torch.tensor(G_PID),
        torch.tensor(Q_CAM),
        torch.tensor(G_CAM),
        **kw,
    )


@pytest.mark.parametrize("dense_fraction", [2.0, -1.0])  # candidate sort / row sort
def test_hand_computed_example(dense_fraction: float, monkeypatch: pytest.MonkeyPatch) -> None:
    from reidkit.evaluation import ranking

    monkeypatch.setattr(ranking, "DENSE_FRACTION", dense_fraction)
    m = _example(ranks=(1, 2, 3))
    assert m["num_queries"] == 3
    assert m["num_valid_queries"] == 2
    assert m["rank1"] == 0.0
    assert m["rank2"] == 1.0
    assert m["rank3"] == 1.0
    assert m["mAP"] == pytest.approx((1 / 2 + 7 / 12) / 2, abs=1e-12)
    assert m["mINP"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-12)


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_chunk_size_does_not_change_results(chunk: int) -> None:
    assert _example(chunk_size=chunk) == _example()


def test_same_results_numpy_and_lists() -> None:
    m = evaluate_reid(
        [[x] for x in Q_X], [[x] for x in G_X], Q_PID, G_PID, Q_CAM, G_CAM, ranks=[1, 2, 3]
    )
    assert m == _example(ranks=(1, 2, 3))


def test_cosine_distance_ranks_by_angle() -> None:
    # query along x; gallery: the match at 45 degrees, the negative at 90 degrees
    qf = torch.tensor([[1.0, 0.0]])
    gf = torch.tensor([[0.0, 5.0], [3.0, 3.0]])
    args = (torch.tensor([7]), torch.tensor([8, 7]), torch.tensor([0]), torch.tensor([1, 1]))
    cos = evaluate_reid(qf, gf, *args, distance="cosine", ranks=(1,))
    assert cos["rank1"] == 1.0 and cos["mAP"] == 1.0
    # match far away along 45 degrees, negative near at 90 degrees: the two distances disagree
    gf2 = torch.tensor([[0.0, 1.0], [30.0, 30.0]])
    assert evaluate_reid(qf, gf2, *args, distance="cosine", ranks=(1,))["rank1"] == 1.0
    assert evaluate_reid(qf, gf2, *args, distance="euclidean", ranks=(1,))["rank1"] == 0.0


def test_cuhk03_single_shot_equals_market_with_one_image_per_identity() -> None:
    torch.manual_seed(0)
    qf, gf = torch.randn(20, 8), torch.randn(30, 8)
    q_pids, g_pids = torch.arange(20) % 10, torch.arange(30)  # one gallery image per id
    q_cams, g_cams = torch.zeros(20, dtype=torch.long), torch.ones(30, dtype=torch.long)
    market = evaluate_reid(qf, gf, q_pids, g_pids, q_cams, g_cams)
    cuhk = evaluate_reid(qf, gf, q_pids, g_pids, q_cams, g_cams, protocol="cuhk03")
    assert cuhk == market


def test_cuhk03_is_seeded_and_chunk_independent() -> None:
    torch.manual_seed(1)
    qf, gf = torch.randn(40, 8), torch.randn(200, 8)
    ids = (
        torch.randint(1, 15, (40,)),
        torch.randint(1, 15, (200,)),
        torch.randint(0, 3, (40,)),
        torch.randint(0, 3, (200,)),
    )
    a = evaluate_reid(qf, gf, *ids, protocol="cuhk03", seed=3)
    assert a == evaluate_reid(qf, gf, *ids, protocol="cuhk03", seed=3, chunk_size=7)
    others = [evaluate_reid(qf, gf, *ids, protocol="cuhk03", seed=s)["rank1"] for s in range(4)]
    assert len(set(others)) > 1  # different draws give different single-shot CMC
    market = evaluate_reid(qf, gf, *ids)
    assert a["mAP"] == market["mAP"]  # mAP uses the full ranking
    assert a["rank1"] >= market["rank1"]  # one image per id can only help rank-1


def test_no_valid_query_gives_zeros() -> None:
    m = evaluate_reid(
        torch.zeros(2, 3), torch.zeros(4, 3), [5, 6], [1, 2, 3, 4], [0, 0], [1, 1, 1, 1]
    )
    assert m["num_valid_queries"] == 0 and m["mAP"] == 0.0 and m["rank1"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"ranks": [0, 5]}, ConfigError, "evaluation_params.ranks"),
        ({"ranks": []}, ConfigError, "evaluation_params.ranks"),
        ({"distance": "manhattan"}, ConfigError, "evaluation_params.distance"),
        ({"protocol": "duke"}, ConfigError, "protocol"),
    ],
)
def test_bad_options(kwargs: dict, error: type, needle: str) -> None:
    with pytest.raises(error, match=needle):
        _example(**kwargs)


def test_bad_shapes() -> None:
    with pytest.raises(DataError, match="dimension 3 but gallery features 4"):
        evaluate_reid(torch.zeros(2, 3), torch.zeros(5, 4), [1, 2], [1] * 5, [0, 0], [1] * 5)
    with pytest.raises(DataError, match="g_pids has shape"):
        evaluate_reid(torch.zeros(2, 3), torch.zeros(5, 3), [1, 2], [1] * 4, [0, 0], [1] * 5)
    with pytest.raises(DataError, match="gallery is empty"):
        evaluate_reid(torch.zeros(2, 3), torch.zeros(0, 3), [1, 2], [], [0, 0], [])
