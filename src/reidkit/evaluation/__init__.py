"""Evaluation: exact ReID metrics, feature extraction, built-in and user evaluators."""

from reidkit.evaluation.builtins import (
    classification_evaluate,
    evaluate_features,
    market_evaluate,
)
from reidkit.evaluation.features import extract_features
from reidkit.evaluation.metrics import evaluate_reid, pairwise_distance
from reidkit.evaluation.registry import (
    Evaluator,
    EvaluatorError,
    default_metric,
    get_evaluator,
    run_evaluator,
)
from reidkit.evaluation.rerank import KReciprocalDistance, query_expansion
from reidkit.evaluation.verification import verification_evaluate, verification_metrics

__all__ = [
    "Evaluator",
    "EvaluatorError",
    "KReciprocalDistance",
    "classification_evaluate",
    "default_metric",
    "evaluate_features",
    "evaluate_reid",
    "extract_features",
    "get_evaluator",
    "market_evaluate",
    "pairwise_distance",
    "query_expansion",
    "run_evaluator",
    "verification_evaluate",
    "verification_metrics",
]
