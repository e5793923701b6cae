"""Dataset layouts: each turns a folder into a ``ReidDataset`` (see docs/datasets.md)."""
