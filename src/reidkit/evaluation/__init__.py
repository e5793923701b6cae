"""Evaluation: exact ReID metrics, feature extraction, built-in and user evaluators."""

from reidkit.evaluation.builtins import classification_evaluate, market_evaluate
from reidkit.evaluation.features import extract_features
from reidkit.evaluation.metrics import evaluate_reid, pairwise_distance
from reidkit.evaluation.registry import (
    Evaluator,
    EvaluatorError,
    default_metric,
    get_evaluator,
    run_evaluator,
)

__all__ = [
    "Evaluator",
    "EvaluatorError",
    "classification_evaluate",
    "default_metric",
    "evaluate_reid",
    "extract_features",
    "get_evaluator",
    "market_evaluate",
    "pairwise_distance",
    "run_evaluator",
]
