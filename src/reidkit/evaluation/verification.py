"""Pair verification (the seed's "lfw_evaluate" example): is each pair the same identity?

Pairs files:

* LFW ``pairs.txt``: a header ``<sets> <pairs per set>`` then, per set, that many matched
  lines ``name i j`` and as many mismatched lines ``name1 i name2 j``; images are
  ``name/name_<i:04d>.jpg`` under the dataset root. The sets are the folds.
* CSV: ``path_a,path_b,label`` (label 1/0, true/false, same/different; an optional header
  line), paths relative to the dataset root. Row ``r`` goes to fold ``r % k``.

Metrics: ``accuracy`` (mean over folds, each fold tested with the threshold that maximises
accuracy on the other folds), ``accuracy_std``, ``threshold`` (mean), ``auc`` and
``tpr@fpr=1e-2 / 1e-3 / 1e-4`` over all pairs, ``num_pairs``. A pair's score is the cosine
similarity (``distance: cosine``) or the negative squared Euclidean distance.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from reidkit.data import Record, build_test_loader
from reidkit.data.sources import FolderSource
from reidkit.evaluation.features import extract_features
from reidkit.evaluation.report import image_to_tensor
from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_path
from reidkit.utils.logging import get_logger

TRUE_LABELS = {"1", "true", "same", "yes", "match"}
FALSE_LABELS = {"0", "false", "different", "diff", "no", "mismatch"}
FPR_TARGETS = (1e-2, 1e-3, 1e-4)


def _lfw_pairs(path: Path, lines: list[list[str]]) -> tuple[list[tuple[str, str, int]], list[int]]:
    header = lines[0]
    try:
        sets, per_set = (
            (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
        )
    except ValueError:
        raise DataError(
            f"{path}: line 1 should be '<sets> <pairs per set>', got {header}"
        ) from None
    pairs, folds = [], []
    for n, parts in enumerate(lines[1:], start=2):
        try:
            if len(parts) == 3:
                a = f"{parts[0]}/{parts[0]}_{int(parts[1]):04d}.jpg"
                b = f"{parts[0]}/{parts[0]}_{int(parts[2]):04d}.jpg"
                label = 1
            elif len(parts) == 4:
                a = f"{parts[0]}/{parts[0]}_{int(parts[1]):04d}.jpg"
                b = f"{parts[2]}/{parts[2]}_{int(parts[3]):04d}.jpg"
                label = 0
            else:
                raise ValueError
        except ValueError:
            raise DataError(
                f"{path}: line {n} is {' '.join(parts)!r}; expected 'name i j' (same person) "
                "or 'name1 i name2 j' (different) with integer image numbers"
            ) from None
        pairs.append((a, b, label))
        folds.append(min(sets - 1, (n - 2) // max(1, 2 * per_set)) if len(header) == 2 else -1)
    return pairs, folds


def _csv_pairs(path: Path, rows: list[list[str]]) -> list[tuple[str, str, int]]:
    pairs = []
    for n, row in enumerate(rows, start=1):
        if len(row) != 3:
            raise DataError(f"{path}: line {n} has {len(row)} fields; expected path_a,path_b,label")
        label = row[2].strip().lower()
        if label in TRUE_LABELS | FALSE_LABELS:
            pairs.append((row[0].strip(), row[1].strip(), int(label in TRUE_LABELS)))
        elif n > 1:
            raise DataError(
                f"{path}: line {n}: label {row[2]!r} is not valid; expected 1/0, true/false "
                "or same/different"
            )
    return pairs


def read_pairs(path: str | Path) -> tuple[list[tuple[str, str, int]], list[int] | None]:
    """Pairs ``(path_a, path_b, label)`` of a pairs file and its folds (None: not defined)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pairs file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        pairs, folds = _csv_pairs(path, [r for r in csv.reader(text.splitlines()) if r]), None
    else:
        lines = [ln.split() for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise DataError(f"{path}: empty pairs file")
        pairs, lfw_folds = _lfw_pairs(path, lines)
        folds = None if any(f < 0 for f in lfw_folds) else lfw_folds
    if not pairs or len({p[2] for p in pairs}) < 2:
        raise DataError(f"{path}: needs both same-identity and different-identity pairs")
    return pairs, folds


def roc_curve(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fpr, tpr) at every distinct score threshold, from (0, 0) to (1, 1)."""
    s, lab = scores.double(), labels.bool()
    order = torch.sort(s, descending=True, stable=True).indices
    s, lab = s[order], lab[order]
    last = torch.ones_like(lab)
    last[:-1] = s[1:] != s[:-1]  # end of each group of equal scores
    tp = lab.double().cumsum(0)[last]
    fp = (~lab).double().cumsum(0)[last]
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, fp / fp[-1]]), torch.cat([zero, tp / tp[-1]])


def _best_threshold(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The threshold (between distinct scores) with the highest accuracy; the lowest on ties."""
    s, order = torch.sort(scores.double(), stable=True)
    lab = labels[order].bool()
    n = s.numel()
    neg_below = torch.cat([torch.zeros(1), (~lab).double().cumsum(0)])  # cut c: items < c
    pos_above = lab.sum() - torch.cat([torch.zeros(1), lab.double().cumsum(0)])
    correct = neg_below + pos_above
    cut_ok = torch.ones(n + 1, dtype=torch.bool)
    cut_ok[1:n] = s[1:] != s[:-1]
    c = int(torch.argmax(torch.where(cut_ok, correct, -1.0)))
    if c == 0:
        return float(s[0]) - 1.0
    if c == n:
        return float(s[-1]) + 1.0
    return float((s[c - 1] + s[c]) / 2)


def verification_metrics(
    scores: Sequence[float] | torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    folds: Sequence[int] | None = None,
    k: int = 10,
) -> dict[str, float]:
    """k-fold accuracy (threshold from the training folds), ROC AUC and TPR at fixed FPRs.

    ``folds`` gives each pair's fold; by default pair ``r`` is in fold ``r % k``.
    """
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    lab = torch.as_tensor(labels).flatten().long()
    fold = torch.as_tensor(folds) if folds is not None else torch.arange(s.numel()) % k
    accs, thresholds = [], []
    for f in torch.unique(fold).tolist():
        test = fold == f
        if bool(test.all()):
            raise DataError("verification: need at least 2 folds to choose a threshold")
        thr = _best_threshold(s[~test], lab[~test])
        accs.append(float(((s[test] > thr).long() == lab[test]).double().mean()))
        thresholds.append(thr)
    fpr, tpr = roc_curve(s, lab)
    acc = torch.tensor(accs, dtype=torch.float64)
    out = {
        "accuracy": float(acc.mean()),
        "accuracy_std": float(acc.std(unbiased=False)),
        "threshold": sum(thresholds) / len(thresholds),
        "auc": float(torch.trapezoid(tpr, fpr)),
    }
    for target in FPR_TARGETS:
        out[f"tpr@fpr={target:.0e}"] = float(tpr[fpr <= target + 1e-15].max())
    out["num_pairs"] = float(s.numel())
    return out


def draw_roc(
    fpr: torch.Tensor, tpr: torch.Tensor, path: str | Path | None = None, title: str = "ROC"
) -> Image.Image:
    """The ROC curve (FPR on x, TPR on y) as a 400x400 PIL image; saved as PNG when ``path``."""
    size, m = 400, 40
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    span = size - 2 * m

    def xy(x: float, y: float) -> tuple[float, float]:
        return m + x * span, size - m - y * span

    d.rectangle([m, m, size - m, size - m], outline=(0, 0, 0))
    for t in (0.25, 0.5, 0.75):
        d.line([xy(t, 0), xy(t, 1)], fill=(225, 225, 225))
        d.line([xy(0, t), xy(1, t)], fill=(225, 225, 225))
    d.line([xy(0, 0), xy(1, 1)], fill=(170, 170, 170))
    d.line(
        [xy(float(x), float(y)) for x, y in zip(fpr, tpr, strict=True)], fill=(200, 30, 30), width=2
    )
    auc = float(torch.trapezoid(tpr.double(), fpr.double()))
    d.text((m, 10), f"{title}  AUC {auc:.4f}", fill=(0, 0, 0))
    d.text((size // 2 - 40, size - m + 12), "false positive rate", fill=(0, 0, 0))
    d.text((4, m - 14), "TPR", fill=(0, 0, 0))
    for t in (0.0, 0.5, 1.0):
        d.text((xy(t, 0)[0] - 6, size - m + 2), f"{t:g}", fill=(0, 0, 0))
        d.text((m - 22, xy(0, t)[1] - 6), f"{t:g}", fill=(0, 0, 0))
    if path is not None:
        with atomic_path(path) as tmp:
            img.save(tmp, format="PNG")
    return img


def find_pairs_file(root: str | Path) -> Path:
    """``pairs.txt`` or ``pairs.csv`` in the dataset folder (or beside a packed store)."""
    root = Path(root)
    folder = root if root.is_dir() else root.parent
    for name in ("pairs.txt", "pairs.csv"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"verification_evaluate: no pairs.txt (LFW format) or pairs.csv "
        f"(path_a,path_b,label) in {folder}"
    )


def pair_scores(fa: torch.Tensor, fb: torch.Tensor, distance: str) -> torch.Tensor:
    """Similarity of each pair: cosine, or minus the squared Euclidean distance."""
    if distance == "cosine":
        return torch.nn.functional.cosine_similarity(fa.float(), fb.float(), dim=1)
    return -((fa.float() - fb.float()) ** 2).sum(1)


def verification_evaluate(
    config: Any,
    model: torch.nn.Module,
    *,
    dataset: Any = None,
    device: torch.device | str = "cpu",
    writer: Any = None,
    epoch: int | None = None,
) -> dict[str, float]:
    """Verification metrics of ``model`` on the pairs file of ``config.batches_dir``; the ROC
    curve is saved as ``<run dir>/roc.png`` (and logged to TensorBoard with ``writer``)."""
    pairs, folds = read_pairs(find_pairs_file(config.batches_dir))
    paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    source = getattr(dataset, "source", None) or FolderSource(config.batches_dir)
    loader = build_test_loader(config, [Record(p, 0, 0) for p in paths], source, device)
    feats, _, _ = extract_features(model, loader, device, flip=config.data.flip_test)
    row = {paths[i]: r for r, i in enumerate(loader.delivered)}  # skipped images have no row
    usable = [(a, b, lab) for a, b, lab in pairs if a in row and b in row]
    if not usable:
        raise DataError(f"verification: no pair of {config.batches_dir} has two readable images")
    if len(usable) < len(pairs):
        get_logger().warning(
            f"verification: {len(pairs) - len(usable)} pair(s) left out (unreadable images)"
        )
        if folds is not None:
            keep = [a in row and b in row for a, b, _ in pairs]
            folds = [f for f, k in zip(folds, keep, strict=True) if k]
        pairs = usable
    ia = torch.tensor([row[a] for a, _, _ in pairs], device=feats.device)
    ib = torch.tensor([row[b] for _, b, _ in pairs], device=feats.device)
    scores = pair_scores(feats[ia], feats[ib], config.evaluation_params.distance).cpu()
    labels = torch.tensor([lab for _, _, lab in pairs])
    metrics = verification_metrics(scores, labels, folds)
    fpr, tpr = roc_curve(scores, labels)
    image = draw_roc(fpr, tpr, Path(config.run_dir) / "roc.png", title=f"epoch {epoch or 0}")
    if writer is not None:
        writer.add_image("eval/roc", image_to_tensor(image), epoch or 0)
    return metrics
