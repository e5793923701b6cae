"""Every registered backbone, and every head x classifier, at a tiny size: forward, backward,
shapes, finite values, eval returns the embedding only."""

from __future__ import annotations

import pytest
import torch

from reidkit.models import ReidModel, backbone_names
from reidkit.models.classifiers import CLASSIFIERS

# Above ~40M parameters a CPU forward/backward takes seconds: kept, but marked slow.
HEAVY = {"resnet101", "resnet152", "resnext101_32x8d", "resnet101_ibn_a", "convnext_small"}
HEAVY |= {"vit_b_16", "vit_b_16_cls"}


def _check(model: ReidModel, images: torch.Tensor, labels: torch.Tensor, n_logits: int) -> None:
    out = model(images, labels)
    b = images.shape[0]
    assert out["feature"].shape == (b, model.feature_dim)
    assert out["embedding"].shape == (b, model.embedding_dim)
    logits = out["logits"] if isinstance(out["logits"], list) else [out["logits"]]
    assert len(logits) == n_logits
    assert all(x.shape == (b, model.num_classes) and torch.isfinite(x).all() for x in logits)
    loss = sum(x.logsumexp(1).mean() for x in logits) + out["feature"].pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.backbone_parameters() is not None
    model.eval()
    with torch.no_grad():
        emb = model(images)
    assert isinstance(emb, torch.Tensor) and emb.shape == (b, model.embedding_dim)
    assert torch.isfinite(emb).all()


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in backbone_names()],
)
def test_every_backbone_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = ReidModel(name, num_classes=3, last_stride=1)
    images = torch.randn(2, 3, 64, 32)
    _check(model, images, torch.tensor([0, 2]), 1)


HEADS = {
    "avg-bnneck": {"pooling": "avg", "neck": "bnneck"},
    "gem-embedding": {"pooling": "gem", "neck": "embedding", "embedding_dim": 48},
    "max-none-pcb3": {"pooling": "max", "neck": "none", "num_parts": 3, "embedding_dim": 32},
    "gemavg-pcb2-global": {
        "pooling": "gem_avg",
        "neck": "bnneck",
        "num_parts": 2,
        "embedding_dim": 16,
        "global_branch": True,
        "dropout": 0.2,
    },
}


@pytest.mark.parametrize("classifier", CLASSIFIERS)
@pytest.mark.parametrize("head", list(HEADS))
def test_every_head_and_classifier(head: str, classifier: str) -> None:
    torch.manual_seed(0)
    kw = HEADS[head]
    model = ReidModel("osnet_x0_25", num_classes=5, classifier=classifier, **kw)
    n_logits = kw.get("num_parts", 0) + (
        1 if kw.get("global_branch") or not kw.get("num_parts") else 0
    )
    _check(model, torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 4, 4]), n_logits)


def test_pcb_matches_the_seed_baseline_dimensions() -> None:
    model = ReidModel("resnet18", num_classes=7, num_parts=6, neck="none", embedding_dim=256)
    assert model.embedding_dim == 1536 and len(model.classifier) == 6
    model.eval()
    with torch.no_grad():
        emb = model(torch.randn(2, 3, 96, 32))
    assert emb.shape == (2, 1536)
    # the part features are ReLU outputs of each stripe's reduction
    assert (emb >= 0).all()


def test_margin_classifier_needs_labels_in_training() -> None:
    model = ReidModel("resnet18", num_classes=3, classifier="arcface")
    with pytest.raises(ValueError, match="needs the labels"):
        model(torch.randn(2, 3, 64, 32))


@pytest.mark.parametrize("head", ["avg-bnneck", "gemavg-pcb2-global"])
def test_classify_splits_the_embedding_per_branch(head: str) -> None:
    torch.manual_seed(0)
    model = ReidModel("osnet_x0_25", num_classes=5, **HEADS[head]).eval()
    with torch.no_grad():
        emb = model(torch.randn(3, 3, 64, 32))
        scores = model.classify(emb)
    assert scores.shape == (3, 5)
    dims = [model.neck.out_dim] + ([model.parts.part_dim] * 2 if model.parts else [])
    chunks = torch.split(emb, dims, dim=1)
    want = torch.stack([h(c) for h, c in zip(model.heads(), chunks, strict=True)]).mean(0)
    assert torch.allclose(scores, want)
