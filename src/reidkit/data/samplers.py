"""Batch samplers: PK identity-balanced and plain random; order = f(seed, epoch, rank).

Both yield lists of indices into the record list they were built from. Both are aware of
distributed training: with ``world_size`` > 1 every rank draws the same global sequence and
takes its own slice, so ranks never share an identity (PK) or an image (random) in a step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from reidkit.utils.errors import DataError


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The numpy generator of one epoch: a pure function of ``(seed, epoch)``."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, 0x5EED])


class PKSampler:
    """Batches of ``P`` distinct identities x ``K`` images each (``batch_sampling_params``).

    Epoch definition (as torchreid's RandomIdentitySampler: roughly every image once): each
    identity's images are shuffled and cut into chunks of ``K`` (a shorter remainder is
    dropped; an identity with fewer than ``K`` images gives one chunk drawn with replacement,
    so a single-image identity repeats its image ``K`` times). The epoch has
    ``floor(total_chunks / (P * world_size))`` steps. Each step draws ``P * world_size``
    distinct identities, weighted by how many unused chunks they have (an identity with as many
    unused chunks as steps left is always taken, so chunks are used up evenly), and takes one
    chunk of each; if fewer than ``P * world_size`` identities have chunks left, the used-up
    ones are refilled with a fresh shuffled pass, so every batch holds P distinct identities.
    Rank ``r`` gets identities ``r*P .. (r+1)*P-1`` of each step. ``steps`` fixes the number
    of steps instead (identities are refilled as often as needed).
    """

    def __init__(
        self,
        pids: Sequence[int],
        P: int,
        K: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        steps: int | None = None,
    ) -> None:
        if P <= 0 or K <= 0:
            raise DataError(f"PK sampling needs P > 0 and K > 0, got P={P}, K={K}")
        by_pid: dict[int, list[int]] = {}
        for i, pid in enumerate(pids):
            by_pid.setdefault(int(pid), []).append(i)
        self.groups = [np.asarray(by_pid[p], dtype=np.int64) for p in sorted(by_pid)]
        need = P * world_size
        if len(self.groups) < need:
            raise DataError(
                f"batch_sampling_params: P={P} identities per batch x {world_size} process(es) "
                f"needs {need} identities, but the train split has {len(self.groups)}; "
                "lower batch_size or raise K"
            )
        self.P, self.K, self.seed = P, K, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        chunks = sum(max(1, len(g) // K) for g in self.groups)
        self.num_batches = steps if steps else max(1, chunks // need)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def _chunks(self, rng: np.random.Generator, group: np.ndarray) -> list[np.ndarray]:
        if len(group) < self.K:
            return [rng.choice(group, size=self.K, replace=True)]
        perm = rng.permutation(group)
        n = len(group) // self.K
        return [perm[i * self.K : (i + 1) * self.K] for i in range(n)]

    def _pick(self, rng: np.random.Generator, counts: np.ndarray, steps_left: int) -> np.ndarray:
        """``P * world_size`` distinct identities with unused chunks for the next step.

        Identities with as many unused chunks as steps left must be taken now (otherwise
        they could not be used up); the rest are drawn with probability ~ unused chunks.
        """
        need = self.P * self.world_size
        forced = np.flatnonzero(counts >= steps_left)
        if len(forced) >= need:
            return rng.permutation(rng.choice(forced, size=need, replace=False))
        rest = np.flatnonzero((counts > 0) & (counts < steps_left))
        weights = counts[rest] / counts[rest].sum()
        extra = rng.choice(rest, size=need - len(forced), replace=False, p=weights)
        return rng.permutation(np.concatenate([forced, extra]))

    def __iter__(self) -> Iterator[list[int]]:
        rng = epoch_rng(self.seed, self.epoch)
        pending = [self._chunks(rng, g) for g in self.groups]
        need = self.P * self.world_size
        for step in range(self.num_batches):
            counts = np.array([len(c) for c in pending], dtype=np.float64)
            if np.count_nonzero(counts) < need:  # refill used-up identities
                for i, c in enumerate(pending):
                    if not c:
                        pending[i] = self._chunks(rng, self.groups[i])
                counts = np.array([len(c) for c in pending], dtype=np.float64)
            ids = self._pick(rng, counts, self.num_batches - step)
            mine = ids[self.rank * self.P : (self.rank + 1) * self.P]
            batch = [pending[i][-1] for i in mine]
            for i in ids:
                pending[i].pop()
            yield np.concatenate(batch).tolist()


class RandomBatchSampler:
    """Shuffled batches of ``batch_size`` images; the last partial batch is dropped.

    With ``world_size`` > 1 each step takes ``batch_size * world_size`` images of one global
    permutation and rank ``r`` gets its slice. A split smaller than one global batch gives a
    single smaller batch instead of none.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_items <= 0:
            raise DataError("random sampling: the train split is empty")
        self.n, self.batch_size, self.seed = num_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.step = min(batch_size * world_size, num_items - num_items % world_size or num_items)
        self.num_batches = max(1, num_items // (batch_size * world_size))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        perm = epoch_rng(self.seed, self.epoch).permutation(self.n)
        per_rank = self.step // self.world_size
        for b in range(self.num_batches):
            block = perm[b * self.step : (b + 1) * self.step]
            yield block[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()
