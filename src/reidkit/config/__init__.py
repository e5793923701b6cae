"""Run configuration: the params.json schema and how files become a validated ``Config``."""

from reidkit.config.adapt import AdaptParams
from reidkit.config.loading import (
    apply_overrides,
    check_paths,
    load_config,
    read_config_file,
    save_config,
    validate_config,
)
from reidkit.config.schema import (
    AugmentationParams,
    BatchSamplingParams,
    Config,
    DataParams,
    EvaluationParams,
    LrParams,
    ModelParams,
    Section,
)
from reidkit.config.video import VideoParams

__all__ = [
    "AdaptParams",
    "AugmentationParams",
    "BatchSamplingParams",
    "Config",
    "DataParams",
    "EvaluationParams",
    "LrParams",
    "ModelParams",
    "Section",
    "apply_overrides",
    "check_paths",
    "load_config",
    "read_config_file",
    "save_config",
    "validate_config",
    "VideoParams",
]
