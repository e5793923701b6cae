"""Datasets, image sources, samplers, batched augmentation and loaders.

See docs/architecture.md for the contracts and docs/datasets.md for the layouts. Names are
imported lazily, so listing or packing a dataset does not import torch.
"""

from __future__ import annotations

from reidkit.utils.lazy import lazy_exports

_EXPORTS = {
    "BatchAugment": ".augment",
    "normalize_uint8": ".augment",
    "build_dataset": ".build",
    "detect_layout": ".build",
    "load_dataset": ".build",
    "decode_records": ".decode",
    "decode_resized": ".decode",
    "load_market": ".layouts.market",
    "parse_market_name": ".layouts.market",
    "Batch": ".loaders",
    "TestLoader": ".loaders",
    "TrainLoader": ".loaders",
    "build_test_loader": ".loaders",
    "build_train_loader": ".loaders",
    "ImageSource": ".records",
    "Record": ".records",
    "ReidDataset": ".records",
    "relabel": ".records",
    "require_train": ".records",
    "PKSampler": ".samplers",
    "RandomBatchSampler": ".samplers",
    "FolderSource": ".sources",
    "LmdbSource": ".store",
    "load_store": ".store",
    "pack_dataset": ".pack",
    "unpack_store": ".pack",
    "generate_synthetic": ".synthetic",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
