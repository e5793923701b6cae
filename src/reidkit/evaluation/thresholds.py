"""Same-person thresholds: the cosine similarity above which two embeddings are called the same
identity, at a chosen false positive rate, measured on labelled pairs.

A pair's score is the cosine similarity of its two embeddings (the dot product of L2-normalised
embeddings), whatever distance the model was trained with; a pair is called "same" when its
score is strictly above the threshold. For each target FPR ``f`` the threshold is the smallest
value such that at most ``f`` of the different-identity pairs score above it (the
``floor(f * N) + 1``-th highest negative score, exactly, with ``N`` negatives); the table also
gives the true positive rate at that threshold and the equal-error point (where the false
positive and false negative rates meet, evaluated at every positive score).

Pairs come from a query / gallery split (every cross-camera query-gallery pair: same identity =
positive, different identity = negative; junk pid ``-1`` is skipped, distractors pid ``0`` are
negatives) or from a pairs file (``verification.read_pairs``). Query-gallery pairs are scored in
chunks, so memory stays bounded on Market-sized splits (tens of millions of pairs): positives are
kept, negatives only as their top ``1 %`` (enough for every FPR >= 1e-2 threshold) plus exact
counts between consecutive positive scores (enough for the equal-error point).

A threshold is only as good as the number of negatives behind it: with ``N`` negatives an FPR
below ``1 / N`` cannot be observed, so ``ThresholdTable.resolved(f)`` is false when fewer than
ten negatives lie above the threshold a level asks for (``f * N < 10``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from reidkit.utils.errors import DataError

FPR_LEVELS = (1e-2, 1e-3, 1e-4)
SIMILARITY = "cosine"
MIN_SUPPORT = 10  # negatives above a threshold needed to call its FPR measured, not bounded
_CHUNK_PAIRS = 1 << 22


@dataclass(frozen=True)
class ThresholdTable:
    """Cosine-similarity thresholds at fixed false positive rates, and the equal-error point.

    ``fpr[i]`` / ``thresholds[i]`` / ``tpr[i]`` line up; ``thresholds`` never decreases as the
    FPR level falls. ``source`` says which pairs were used and ``measured_on`` which model
    (``pytorch``, ``onnxruntime fp32``, ``openvino int8`` ...).
    """

    fpr: tuple[float, ...]
    thresholds: tuple[float, ...]
    tpr: tuple[float, ...]
    eer: float
    eer_threshold: float
    num_positive: int
    num_negative: int
    source: str = ""
    measured_on: str = ""
    similarity: str = SIMILARITY
    extra: dict[str, str] = field(default_factory=dict)

    def threshold(self, fpr: float = 1e-3) -> float:
        """The threshold of one stored FPR level; ``DataError`` listing the levels otherwise."""
        for level, value in zip(self.fpr, self.thresholds, strict=True):
            if math.isclose(level, float(fpr), rel_tol=1e-6):
                return value
        levels = ", ".join(f"{f:g}" for f in self.fpr)
        raise DataError(f"fpr = {fpr!r} is not calibrated: the table holds FPR {levels}")

    def resolved(self, fpr: float) -> bool:
        """Whether at least ``MIN_SUPPORT`` negatives back this level (``fpr * N >= 10``)."""
        return float(fpr) * self.num_negative >= MIN_SUPPORT

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (floats, ints, strings, lists): fit for ``weights_only`` loading."""
        d = asdict(self)
        d.update(fpr=list(self.fpr), thresholds=list(self.thresholds), tpr=list(self.tpr))
        return d

    def to_json(self) -> str:
        """The table as one JSON line (how exported files store it)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ThresholdTable:
        """Parse and check a stored table; ``DataError`` naming ``source`` when it is damaged."""
        try:
            table = cls(
                fpr=tuple(float(v) for v in data["fpr"]),
                thresholds=tuple(float(v) for v in data["thresholds"]),
                tpr=tuple(float(v) for v in data["tpr"]),
                eer=float(data["eer"]),
                eer_threshold=float(data["eer_threshold"]),
                num_positive=int(data["num_positive"]),
                num_negative=int(data["num_negative"]),
                source=str(data.get("source", "")),
                measured_on=str(data.get("measured_on", "")),
                similarity=str(data.get("similarity", SIMILARITY)),
                extra={str(k): str(v) for k, v in dict(data.get("extra", {})).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(
                f"{source}: calibration table is damaged ({type(e).__name__}: {e})"
            ) from None
        n = len(table.fpr)
        if not n or len(table.thresholds) != n or len(table.tpr) != n:
            raise DataError(f"{source}: calibration table has mismatched fpr/thresholds/tpr lists")
        if table.similarity != SIMILARITY:
            raise DataError(
                f"{source}: calibration similarity {table.similarity!r} is not supported; "
                f"expected {SIMILARITY!r}"
            )
        if not all(math.isfinite(v) for v in (*table.thresholds, table.eer_threshold)):
            raise DataError(f"{source}: calibration table holds non-finite thresholds")
        return table

    @classmethod
    def from_json(cls, text: str, source: str) -> ThresholdTable:
        """Parse ``to_json``'s output; ``DataError`` naming ``source`` when it is not JSON."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{source}: calibration table is not valid JSON ({e.msg})") from None
        return cls.from_dict(data, source)

    def format(self) -> str:
        """A small text table for the console."""
        lines = [
            f"same-person thresholds (cosine similarity > threshold), {self.measured_on or 'model'}"
            f"; {self.num_positive} same-id / {self.num_negative} different-id pairs"
            + (f" from {self.source}" if self.source else ""),
            "| FPR | threshold | TPR |",
            "| ---: | ---: | ---: |",
        ]
        for f, t, tp in zip(self.fpr, self.thresholds, self.tpr, strict=True):
            above = math.floor(f * self.num_negative)
            note = "" if self.resolved(f) else f" (rough: {above} negatives above)"
            lines.append(f"| {f:g} | {t:.4f} | {tp:.4f}{note} |")
        lines.append(f"| EER {self.eer:.4f} | {self.eer_threshold:.4f} | {1 - self.eer:.4f} |")
        return "\n".join(lines)


def cosine_similarity(a: Any, b: Any) -> torch.Tensor:
    """Row-wise cosine similarity of two (N, D) blocks (or two (D,) vectors); 0 for a zero row."""
    ta = torch.as_tensor(a, dtype=torch.float32)
    tb = torch.as_tensor(b, dtype=torch.float32)
    return (F.normalize(ta, dim=-1) * F.normalize(tb, dim=-1)).sum(-1)


class _Accumulator:
    """Streams pair scores: keeps positives, the top negatives, and negative counts."""

    def __init__(self, max_negatives_kept: int) -> None:
        self.keep = max(1, int(max_negatives_kept))
        self.pos: list[torch.Tensor] = []
        self.top = torch.empty(0, dtype=torch.float32)
        self.num_neg = 0

    def add(self, pos: torch.Tensor, neg: torch.Tensor) -> None:
        self.pos.append(pos.float().cpu())
        self.num_neg += int(neg.numel())
        merged = torch.cat([self.top, neg.float().cpu()])
        k = min(self.keep, merged.numel())
        self.top = torch.topk(merged, k, sorted=False).values if k < merged.numel() else merged


def _finish(
    pos: torch.Tensor,
    top_neg: torch.Tensor,
    counts_above: torch.Tensor,
    num_neg: int,
    levels: Sequence[float],
) -> dict[str, Any]:
    """The table's numbers from sorted positives, the top negatives and, for every positive
    score ``p_i``, how many negatives score above it (``counts_above[i]``)."""
    num_pos = pos.numel()
    top = torch.sort(top_neg, descending=True).values.double()
    pos = pos.double()
    thresholds, tprs = [], []
    for f in levels:
        k = math.floor(f * num_neg)
        t = float(top[k]) if k < top.numel() else float(top[-1])
        thresholds.append(t)
        tprs.append(float((pos > t).double().mean()))
    # equal-error point, at every positive score and at the highest negative
    fnr = torch.searchsorted(pos, pos, right=True).double() / num_pos  # pos <= p_i
    fpr = counts_above.double() / max(1, num_neg)
    cand_t = torch.cat([pos, top[:1]])
    cand_fnr = torch.cat([fnr, (pos <= top[0]).double().mean().view(1)])
    cand_fpr = torch.cat([fpr, torch.zeros(1, dtype=torch.float64)])
    worst = torch.maximum(cand_fnr, cand_fpr)
    i = int(torch.argmin(worst))
    return {
        "thresholds": tuple(thresholds),
        "tpr": tuple(tprs),
        "eer": float(worst[i]),
        "eer_threshold": float(cand_t[i]),
    }


def _table(
    acc: _Accumulator, counts: torch.Tensor, pos: torch.Tensor, levels: Sequence[float], **kw: Any
) -> ThresholdTable:
    suffix = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0])  # negatives >= bin
    counts_above = suffix[1:]  # bin j holds negatives with exactly j positives below them
    numbers = _finish(pos, acc.top, counts_above, acc.num_neg, levels)
    return ThresholdTable(
        fpr=tuple(float(f) for f in levels),
        num_positive=int(pos.numel()),
        num_negative=acc.num_neg,
        **numbers,
        **kw,
    )


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    out = tuple(sorted((float(f) for f in levels), reverse=True))
    if not out or not all(0 < f < 1 for f in out):
        raise DataError(f"FPR levels {list(levels)} are not valid: expected values in (0, 1)")
    return out


def thresholds_from_scores(
    scores: Any,
    labels: Any,
    levels: Sequence[float] = FPR_LEVELS,
    *,
    source: str = "",
    measured_on: str = "",
    extra: dict[str, str] | None = None,
) -> ThresholdTable:
    """The table of labelled pair scores (1 = same identity, 0 = different)."""
    s = torch.as_tensor(scores, dtype=torch.float32).flatten()
    lab = torch.as_tensor(labels).flatten().bool()
    if s.numel() != lab.numel():
        raise DataError(f"{s.numel()} scores but {lab.numel()} labels")
    levels = _check_levels(levels)
    pos, neg = s[lab], s[~lab]
    if not pos.numel() or not neg.numel():
        raise DataError(
            f"calibration needs same-identity and different-identity pairs "
            f"(got {pos.numel()} and {neg.numel()})"
        )
    acc = _Accumulator(math.floor(levels[0] * neg.numel()) + 1)
    acc.add(pos, neg)
    pos = torch.sort(pos).values
    counts = torch.bincount(torch.searchsorted(pos, neg), minlength=pos.numel() + 1)
    return _table(
        acc, counts, pos, levels, source=source, measured_on=measured_on, extra=dict(extra or {})
    )


def _pair_masks(
    q_pids: torch.Tensor, g_pids: torch.Tensor, q_cams: torch.Tensor, g_cams: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative masks of a (chunk x gallery) block: cross-camera, no junk."""
    valid = (q_cams[:, None] != g_cams[None, :]) & (g_pids[None, :] != -1) & (q_pids[:, None] >= 0)
    same = q_pids[:, None] == g_pids[None, :]
    return valid & same, valid & ~same


def thresholds_from_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    levels: Sequence[float] = FPR_LEVELS,
    *,
    source: str = "",
    measured_on: str = "",
) -> ThresholdTable:
    """The table of every cross-camera query-gallery pair (see the module docstring)."""
    levels = _check_levels(levels)
    q = F.normalize(torch.as_tensor(qf, dtype=torch.float32), dim=1)
    g = F.normalize(torch.as_tensor(gf, dtype=torch.float32), dim=1)
    ids = [torch.as_tensor(x).long().flatten() for x in (q_pids, g_pids, q_camids, g_camids)]
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1] or len(ids[0]) != len(q):
        raise DataError(f"calibration: features {tuple(q.shape)} / {tuple(g.shape)} do not fit")
    step = max(1, _CHUNK_PAIRS // max(1, len(g)))
    chunks = [(s, min(len(q), s + step)) for s in range(0, len(q), step)]
    acc = _Accumulator(math.floor(levels[0] * len(q) * len(g)) + 1)
    for s, e in chunks:  # pass 1: positives and the top negatives
        sim = q[s:e] @ g.T
        pos_m, neg_m = _pair_masks(ids[0][s:e], ids[1], ids[2][s:e], ids[3])
        acc.add(sim[pos_m], sim[neg_m])
    pos = torch.sort(torch.cat(acc.pos)).values
    if not pos.numel() or not acc.num_neg:
        raise DataError(
            f"calibration needs cross-camera same-identity and different-identity pairs "
            f"(got {pos.numel()} and {acc.num_neg})"
        )
    counts = torch.zeros(pos.numel() + 1, dtype=torch.int64)
    for s, e in chunks:  # pass 2: negatives between consecutive positive scores
        sim = q[s:e] @ g.T
        _, neg_m = _pair_masks(ids[0][s:e], ids[1], ids[2][s:e], ids[3])
        counts += torch.bincount(torch.searchsorted(pos, sim[neg_m]), minlength=pos.numel() + 1)
    return _table(acc, counts, pos, levels, source=source, measured_on=measured_on)
