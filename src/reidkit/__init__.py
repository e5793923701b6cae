"""reidkit: train, evaluate and deploy re-identification models."""

__version__ = "0.1.0"
