"""Temporal aggregation in ReidModel: clip inputs ``(B, T, C, H, W)``, average and attention."""

from __future__ import annotations

import pytest
import torch

from reidkit.models import ReidModel
from reidkit.models.temporal import TemporalPool
from reidkit.utils.errors import ConfigError


def _model(temporal: str, **kw) -> ReidModel:
    torch.manual_seed(0)
    return ReidModel("resnet18", 5, temporal=temporal, **kw)


@pytest.mark.parametrize("temporal", ["avg", "attention"])
def test_clip_outputs_have_one_row_per_clip(temporal: str) -> None:
    model = _model(temporal)
    clips = torch.randn(3, 4, 3, 32, 16)
    out = model(clips, torch.tensor([0, 1, 2]))
    assert out["feature"].shape == (3, 512) and out["embedding"].shape == (3, 512)
    assert out["logits"].shape == (3, 5)
    model.eval()
    with torch.no_grad():
        assert model(clips).shape == (3, 512)
        assert model(clips[:, 0]).shape == (3, 512)  # images work as before
        one = model(clips[:, :1])  # a one-frame clip is that frame
        assert torch.allclose(one, model(clips[:, 0]), atol=1e-5)


def test_average_clip_equals_mean_of_frame_embeddings() -> None:
    model = _model("avg").eval()
    clips = torch.randn(2, 3, 3, 32, 16)
    with torch.no_grad():
        clip = model(clips)
        frames = torch.stack([model(clips[:, t]) for t in range(3)], 1).mean(1)
    assert torch.allclose(clip, frames, atol=1e-5)  # BNNeck is affine in eval mode


def test_attention_starts_as_average_and_learns() -> None:
    pool = TemporalPool("attention", 16)
    frames = torch.randn(2, 5, 16)
    w = pool.weights(frames)
    assert torch.allclose(w, torch.full((2, 5), 0.2))
    assert torch.allclose(pool(frames), frames.mean(1), atol=1e-6)
    pool(frames).pow(2).sum().backward()
    assert pool.score[-1].weight.grad.abs().sum() > 0
    with torch.no_grad():
        pool.score[-1].weight.normal_()
    w = pool.weights(frames)
    assert torch.allclose(w.sum(1), torch.ones(2)) and not torch.allclose(w, w[:, :1])


def test_attention_with_parts_and_no_params_for_average() -> None:
    model = _model("attention", num_parts=2, global_branch=True).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 3, 64, 32)).shape == (2, 512 + 2 * 256)
    avg = _model("avg")
    assert not list(avg.temporal.parameters())  # image checkpoints keep their keys
    assert set(_model("attention").state_dict()) - set(avg.state_dict()) == {
        "temporal.score.0.weight",
        "temporal.score.0.bias",
        "temporal.score.2.weight",
        "temporal.score.2.bias",
    }


def test_bad_temporal_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"video\.temporal = 'lstm' is not valid"):
        TemporalPool("lstm", 8)
