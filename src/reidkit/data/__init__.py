"""Datasets, image sources, samplers, batched augmentation and loaders.

See docs/architecture.md for the contracts and docs/datasets.md for the layouts.
"""

from reidkit.data.augment import BatchAugment, normalize_uint8
from reidkit.data.build import build_dataset, detect_layout, load_dataset
from reidkit.data.decode import decode_records, decode_resized
from reidkit.data.layouts.market import load_market, parse_market_name
from reidkit.data.loaders import (
    Batch,
    TestLoader,
    TrainLoader,
    build_test_loader,
    build_train_loader,
)
from reidkit.data.records import ImageSource, Record, ReidDataset, relabel
from reidkit.data.samplers import PKSampler, RandomBatchSampler
from reidkit.data.sources import FolderSource

__all__ = [
    "Batch",
    "BatchAugment",
    "FolderSource",
    "ImageSource",
    "PKSampler",
    "RandomBatchSampler",
    "Record",
    "ReidDataset",
    "TestLoader",
    "TrainLoader",
    "build_dataset",
    "build_test_loader",
    "build_train_loader",
    "decode_records",
    "decode_resized",
    "detect_layout",
    "load_dataset",
    "load_market",
    "normalize_uint8",
    "parse_market_name",
    "relabel",
]
