"""PK identity sampler and random batch sampler."""

from __future__ import annotations

from collections import Counter

import pytest

from reidkit.data import PKSampler, RandomBatchSampler
from reidkit.utils.errors import DataError

# 6 identities: plenty, exactly K, fewer than K, a single image
PIDS = [0] * 11 + [1] * 4 + [2] * 2 + [3] * 1 + [4] * 9 + [5] * 5


def _check_pk(batches: list[list[int]], P: int, K: int) -> None:
    for b in batches:
        assert len(b) == P * K
        by_pid = Counter(PIDS[i] for i in b)
        assert len(by_pid) == P and set(by_pid.values()) == {K}
        # the K images of an identity are consecutive
        assert [PIDS[i] for i in b] == [PIDS[b[j * K]] for j in range(P) for _ in range(K)]


def test_pk_every_batch_is_p_ids_by_k_images() -> None:
    s = PKSampler(PIDS, P=3, K=4, seed=0)
    # chunks: 2 + 1 + 1 + 1 + 2 + 1 = 8 -> 8 // 3 = 2 steps
    assert len(s) == 2
    for epoch in range(5):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        _check_pk(batches, 3, 4)


def test_pk_small_identities_repeat_images() -> None:
    s = PKSampler(PIDS, P=6, K=4, seed=1)
    batch = next(iter(s))
    single = [i for i in batch if PIDS[i] == 3]
    assert single == [17, 17, 17, 17]  # the one image of identity 3, four times
    two = [i for i in batch if PIDS[i] == 2]
    assert set(two) <= {15, 16} and len(two) == 4


def test_pk_order_is_a_function_of_seed_and_epoch() -> None:
    a, b = PKSampler(PIDS, 2, 2, seed=3), PKSampler(PIDS, 2, 2, seed=3)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    b.set_epoch(5)
    assert list(a) != list(b)
    c = PKSampler(PIDS, 2, 2, seed=4)
    c.set_epoch(4)
    assert list(c) != list(a)


def test_pk_roughly_every_image_once_per_epoch() -> None:
    pids = [p for p in range(20) for _ in range(8)]
    s = PKSampler(pids, P=4, K=4, seed=0)
    seen = Counter(i for b in s for i in b)
    assert len(s) == 10 and sum(seen.values()) == 160
    assert len(seen) == 160  # with 8 images per id, each image exactly once


def test_pk_ddp_ranks_get_disjoint_identities() -> None:
    pids = [p for p in range(12) for _ in range(4)]
    ranks = [PKSampler(pids, P=2, K=4, seed=0, rank=r, world_size=3) for r in range(3)]
    assert len({len(s) for s in ranks}) == 1 and len(ranks[0]) == 2
    for steps in zip(*(list(s) for s in ranks), strict=True):
        ids = [{pids[i] for i in b} for b in steps]
        assert all(len(x) == 2 for x in ids)
        assert len(set.union(*ids)) == 6


def test_pk_too_few_identities() -> None:
    with pytest.raises(DataError, match="P=8 identities per batch .* has 6"):
        PKSampler(PIDS, P=8, K=4)


def test_random_sampler_shuffles_and_drops_last() -> None:
    s = RandomBatchSampler(25, batch_size=8, seed=0)
    batches = list(s)
    assert len(s) == 3 and [len(b) for b in batches] == [8, 8, 8]
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 24 and flat != sorted(flat)
    again = RandomBatchSampler(25, batch_size=8, seed=0)
    assert list(again) == batches
    again.set_epoch(1)
    assert list(again) != batches


def test_random_sampler_ddp_and_tiny_split() -> None:
    ranks = [RandomBatchSampler(40, 4, seed=2, rank=r, world_size=2) for r in range(2)]
    for a, b in zip(*(list(s) for s in ranks), strict=True):
        assert len(a) == len(b) == 4 and not set(a) & set(b)
    tiny = RandomBatchSampler(5, batch_size=8)
    assert len(tiny) == 1 and sorted(next(iter(tiny))) == [0, 1, 2, 3, 4]
