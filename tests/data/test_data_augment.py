"""Batched augmentation: per-image parameters, reference equality, both code paths."""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF

from reidkit.data import BatchAugment, normalize_uint8
from reidkit.data.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentParams


def _images(n: int = 16, h: int = 32, w: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=g)


def test_all_off_equals_plain_normalise() -> None:
    x = _images()
    aug = BatchAugment(mirror=False, padding=0, random_erasing=0.0)
    out = aug(x, torch.Generator().manual_seed(1))
    ref = TF.normalize(TF.to_dtype(x, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(normalize_uint8(x), ref, rtol=0, atol=1e-5)


def test_parameters_differ_between_images_of_a_batch() -> None:
    aug = BatchAugment(mirror=True, flip_prob=0.5, padding=10, random_erasing=0.5)
    p = aug.draw(64, 64, 32, torch.Generator().manual_seed(0))
    assert 0 < int(p.flip.sum()) < 64
    assert len(set(zip(p.oy.tolist(), p.ox.tolist(), strict=True))) > 20
    assert 0 < int(p.erase.sum()) < 64
    boxes = {
        (y, x, h, w)
        for e, y, x, h, w in zip(
            *(f.tolist() for f in (p.erase, p.ey, p.ex, p.eh, p.ew)), strict=True
        )
        if e
    }
    assert len(boxes) == int(p.erase.sum())
    assert ((p.ey + p.eh <= 64) & (p.ex + p.ew <= 32))[p.erase].all()


def test_same_image_gets_different_augmentations_in_one_batch() -> None:
    x = _images(1).repeat(32, 1, 1, 1)
    out = BatchAugment(padding=4, random_erasing=0.5)(x, torch.Generator().manual_seed(3))
    distinct = {tuple(o.flatten()[::37].tolist()) for o in out}
    assert len(distinct) > 16


def _params(n: int, **kw) -> AugmentParams:
    z = torch.zeros(n, dtype=torch.long)
    base = dict(
        flip=torch.zeros(n, dtype=torch.bool),
        oy=z,
        ox=z,
        erase=torch.zeros(n, dtype=torch.bool),
        ey=z,
        ex=z,
        eh=z,
        ew=z,
    )
    base.update(kw)
    return AugmentParams(**base)


def test_flip_pad_crop_match_torchvision() -> None:
    x = _images(2)
    aug = BatchAugment(padding=3)
    p = _params(
        2, flip=torch.tensor([True, False]), oy=torch.tensor([0, 6]), ox=torch.tensor([5, 1])
    )
    out = aug.apply(x, p)
    for i in range(2):
        img = TF.horizontal_flip(x[i]) if p.flip[i] else x[i]
        img = TF.pad(img, [3], fill=0)
        img = TF.crop(img, int(p.oy[i]), int(p.ox[i]), 32, 16)
        ref = TF.normalize(TF.to_dtype(img, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-5)


def test_erasing_fills_exactly_the_box() -> None:
    x = _images(2)
    aug = BatchAugment(mirror=False, padding=0, random_erasing=1.0)
    p = _params(
        2,
        erase=torch.tensor([True, False]),
        ey=torch.tensor([4, 0]),
        ex=torch.tensor([2, 0]),
        eh=torch.tensor([10, 5]),
        ew=torch.tensor([6, 5]),
    )
    out, plain = aug.apply(x, p), normalize_uint8(x)
    value = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    torch.testing.assert_close(out[0, :, 4:14, 2:8], value.expand(3, 10, 6))
    mask = torch.ones(32, 16, dtype=torch.bool)
    mask[4:14, 2:8] = False
    torch.testing.assert_close(out[0][:, mask], plain[0][:, mask])
    torch.testing.assert_close(out[1], plain[1])


def test_vectorised_and_slice_paths_agree() -> None:
    x = _images(40, 48, 24)
    aug = BatchAugment(padding=6, random_erasing=0.7)
    idx = torch.tensor([3, 3, 0, 39, 12, 7, 7, 20])
    p = aug.draw(len(idx), 48, 24, torch.Generator().manual_seed(5))
    ref = aug._apply_vectorised(x, p, idx)
    torch.testing.assert_close(aug._apply_slices(x, p, idx), ref)
    torch.testing.assert_close(aug._apply_fused(x, p, idx), ref)
    torch.testing.assert_close(aug.apply(x, p, idx), ref)


def test_extras_are_per_image_deterministic_and_in_range() -> None:
    x = _images(1).repeat(12, 1, 1, 1)
    for kw in (
        {"color_jitter": 1.0},
        {"random_patch": 1.0},
        {"auto_augment": "randaugment"},
        {"auto_augment": "autoaugment"},
    ):
        aug = BatchAugment(mirror=False, padding=0, **kw)
        a = aug(x, torch.Generator().manual_seed(4))
        b = aug(x, torch.Generator().manual_seed(4))
        assert torch.equal(a, b), kw
        plain = normalize_uint8(x)
        changed = [not torch.allclose(a[i], plain[i], atol=1e-5) for i in range(12)]
        assert sum(changed) >= 6, kw
        assert len({tuple(o.flatten()[::29].tolist()) for o in a}) > 3, kw


def test_jitter_keeps_pixels_in_range_and_off_is_identity() -> None:
    from reidkit.data.augment_extra import color_jitter, random_patch

    x = _images(8).float()
    y = color_jitter(x, torch.Generator().manual_seed(0), 1.0)
    assert y.min() >= 0 and y.max() <= 255 and not torch.equal(x, y)
    torch.testing.assert_close(color_jitter(x, torch.Generator().manual_seed(0), 0.0), x)
    assert torch.equal(random_patch(x, torch.Generator().manual_seed(0), 0.0), x)


def test_random_patch_copies_a_box_from_another_image() -> None:
    from reidkit.data.augment_extra import random_patch

    x = torch.stack([torch.full((3, 32, 16), float(i)) for i in range(6)])
    y = random_patch(x, torch.Generator().manual_seed(1), 1.0)
    for i in range(6):
        values = set(y[i].unique().tolist())
        assert float(i) in values or len(values) == 1
        assert len(values - {float(i)}) == 1  # one foreign image pasted
