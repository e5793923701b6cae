"""Find evaluators by name and run them safely.

An evaluator is a function ``run_eval(config, model, *, dataset, device, writer=None,
epoch=None) -> dict[str, float]``. ``get_evaluator`` resolves a name to one of:

1. a built-in (``market_evaluate``, ``classification_evaluate``, ``verification_evaluate``,
   ``video_evaluate``: tracklets; ``market_evaluate`` on a video dataset runs it too);
2. a file ``evaluate/<name>.py`` exposing ``run_eval`` (the seed's rule), looked up in the
   current directory, then in each of ``evaluation_params.search_dirs`` (a search dir may be
   the folder that contains ``evaluate/`` or the ``evaluate/`` folder itself);
3. ``package.module:function``, imported normally.

Names are identifiers (``evaluate/<name>.py``) or dotted identifiers with one ``:``; a name
with a path separator, ``..`` or a file suffix is refused, so a name can never reach a file
outside the search folders. Only the user names a plugin: on the command line or in a params
file they pass. A config read back from a checkpoint or run folder names built-ins only
(``reidkit.models.checkpoint.untrusted_config``).

``run_evaluator`` passes a user function only the keyword arguments it names, checks that it
returned a dict of str -> number and turns any failure into one line naming the evaluator.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import numbers
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidkit.evaluation.builtins import classification_evaluate, market_evaluate, video_evaluate
from reidkit.evaluation.verification import FPR_TARGETS, verification_evaluate
from reidkit.utils.errors import ConfigError, ReidkitError, one_line

BUILTINS: dict[str, tuple[Callable[..., Any], str]] = {  # name -> (function, default metric)
    "market_evaluate": (market_evaluate, "mAP"),  # tracklet by tracklet on video data
    "video_evaluate": (video_evaluate, "mAP"),
    "classification_evaluate": (classification_evaluate, "top1"),
    "verification_evaluate": (verification_evaluate, "accuracy"),
}
BUILTIN_METRICS = {name: metric for name, (_, metric) in BUILTINS.items()}
# The seed document spells it this way once; accept it as the same evaluator.
ALIASES = {"classificaton_evaluate": "classification_evaluate"}


class EvaluatorError(ReidkitError):
    """A user evaluator failed or returned something that is not a dict of metrics."""


@dataclass(frozen=True)
class Evaluator:
    """A resolved evaluator: its name, where it came from, and the function to call."""

    name: str
    source: str
    fn: Callable[..., Any]
    metric: str | None = None
    builtin: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _candidate_files(name: str, search_dirs: Sequence[str | Path]) -> list[Path]:
    """Where ``evaluate/<name>.py`` may live, in lookup order."""
    dirs = [Path.cwd(), *(Path(d) for d in search_dirs)]
    out: list[Path] = []
    for d in dirs:
        for f in (d / "evaluate" / f"{name}.py", d / f"{name}.py"):
            if f not in out:
                out.append(f)
    return out


def _load_file(name: str, path: Path) -> Evaluator:
    """Import a user evaluator file and return its ``run_eval``."""
    mod_name = f"reidkit_user_evaluate_{name}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"evaluator {name!r}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(mod_name, None)
        raise ConfigError(
            f"evaluator {name!r}: syntax error in {path} line {e.lineno}: {e.msg}"
        ) from None
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise ConfigError(
            f"evaluator {name!r}: importing {path} failed: {type(e).__name__}: {one_line(e)}"
        ) from e
    fn = getattr(module, "run_eval", None)
    if not callable(fn):
        raise ConfigError(
            f"evaluator {name!r}: {path} does not define a function run_eval(config, model, ...)"
        )
    metric = getattr(module, "DEFAULT_METRIC", None)
    return Evaluator(name, str(path), fn, metric=str(metric) if metric else None)


def _load_entry_point(name: str) -> Evaluator:
    """Import ``package.module:function``."""
    mod_name, _, attr = name.partition(":")
    if not mod_name or not attr:
        raise ConfigError(f"evaluation_params.type = {name!r}: expected package.module:function")
    try:
        module = importlib.import_module(mod_name)
    except Exception as e:
        raise ConfigError(
            f"evaluation_params.type = {name!r}: cannot import {mod_name}: "
            f"{type(e).__name__}: {one_line(e)}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(
            f"evaluation_params.type = {name!r}: module {mod_name} has no function {attr!r}"
        )
    metric = getattr(fn, "DEFAULT_METRIC", None) or getattr(module, "DEFAULT_METRIC", None)
    source = getattr(module, "__file__", None) or mod_name
    return Evaluator(name, f"{source}:{attr}", fn, metric=str(metric) if metric else None)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def check_plugin_name(name: str) -> None:
    """A plugin name is an identifier or ``package.module:function`` (no paths)."""
    module, sep, attr = name.partition(":")
    ok = bool(_DOTTED.match(module) and _IDENT.match(attr)) if sep else bool(_IDENT.match(name))
    if not ok:
        raise ConfigError(
            f"evaluation_params.type = {name!r}: not a valid evaluator name; use a built-in "
            f"({', '.join(BUILTINS)}), an identifier naming evaluate/<name>.py, or "
            "package.module:function (no paths or file suffixes)"
        )


def get_evaluator(name: str, search_dirs: Sequence[str | Path] = ()) -> Evaluator:
    """Resolve ``evaluation_params.type`` to a callable ``Evaluator`` (see module docstring)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"evaluation_params.type = {name!r}: expected an evaluator name")
    name = ALIASES.get(name.strip(), name.strip())
    check_plugin_name(name)
    if name in BUILTIN_METRICS:
        return Evaluator(
            name, f"reidkit built-in {name}", BUILTINS[name][0], BUILTIN_METRICS[name], True
        )
    if ":" in name:
        return _load_entry_point(name)
    for path in _candidate_files(name, search_dirs):
        if path.is_file():
            return _load_file(name, path)
    searched = [str(Path.cwd() / "evaluate"), *(str(Path(d)) for d in search_dirs)]
    raise ConfigError(
        f"evaluation_params.type = {name!r}: no such evaluator; built-ins are "
        f"{', '.join(BUILTIN_METRICS)}; no evaluate/{name}.py (exposing run_eval) in "
        f"{', '.join(searched)}; or use package.module:function"
    )


def builtin_metric_names(name: str, ranks: Sequence[int]) -> tuple[set[str], tuple[str, ...]]:
    """What a built-in evaluator returns: exact metric names and name prefixes (``acc/``)."""
    if name in ("market_evaluate", "video_evaluate"):
        names = {f"rank{k}" for k in ranks} | {"mAP", "mINP", "num_queries", "num_valid_queries"}
        return names, ()
    if name == "classification_evaluate":
        return {"top1", "top5", "mean_class_acc", "num_images"}, ("acc/",)
    if name == "verification_evaluate":
        tprs = {f"tpr@fpr={t:.0e}" for t in FPR_TARGETS}
        return {"accuracy", "accuracy_std", "threshold", "auc", "num_pairs"} | tprs, ()
    raise ValueError(f"{name!r} is not a built-in evaluator")


def check_metric(evaluator: Evaluator, metric: str, ranks: Sequence[int]) -> None:
    """Before training: a built-in evaluator must be able to return ``metric``."""
    if not evaluator.builtin:
        return  # a user evaluator's results are known only once it runs
    names, prefixes = builtin_metric_names(evaluator.name, ranks)
    if metric in names or metric.startswith(prefixes):
        return
    close = difflib.get_close_matches(metric, sorted(names), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"evaluation_params.metric = {metric!r}: {evaluator.name} does not return it{hint}; "
        f"it returns {', '.join(sorted(names))}"
        + (" (rank<k> needs k in evaluation_params.ranks)" if metric.startswith("rank") else "")
    )


def default_metric(name: str | Evaluator, search_dirs: Sequence[str | Path] = ()) -> str:
    """The metric that decides the best model for an evaluator (``mAP``, ``top1`` ...).

    A user evaluator declares it with a module-level ``DEFAULT_METRIC = "..."``; without one,
    ``evaluation_params.metric`` must be set and this raises a ConfigError saying so.
    """
    ev = name if isinstance(name, Evaluator) else get_evaluator(name, search_dirs)
    if ev.metric:
        return ev.metric
    raise ConfigError(
        f"evaluation_params.metric is not set and evaluator {ev.name!r} ({ev.source}) declares "
        "no DEFAULT_METRIC; set evaluation_params.metric to the result key that decides "
        "the best model"
    )


def _call_arguments(
    fn: Callable[..., Any], available: dict[str, Any], label: str
) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for ``fn``: only those it accepts.

    Parameters named like an available value (``config``, ``model``, ``dataset``, ``device``,
    ``writer``, ``epoch`` ...) get it; the other leading positional parameters receive
    ``config`` then ``model`` (so ``run_eval(cfg)`` and ``run_eval(params, net, dataset=None)``
    both work); ``**kwargs`` receives everything not passed yet.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [available["config"], available["model"]], {
            k: v for k, v in available.items() if k not in ("config", "model")
        }
    named = {p.name for p in params}
    slots = iter(s for s in ("config", "model") if s not in named)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    missing: list[str] = []
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            kwargs.update({k: v for k, v in available.items() if k not in named})
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        value_name = p.name if p.name in available else None
        if value_name is None and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            value_name = next(slots, None)
        if value_name is None:
            if p.default is p.empty:
                missing.append(p.name)
            continue
        if p.kind is p.POSITIONAL_ONLY:
            args.append(available[value_name])
        else:
            kwargs[p.name] = available[value_name]
    if missing:
        raise EvaluatorError(
            f"evaluator {label}: run_eval requires argument(s) {', '.join(missing)} that "
            f"reidkit does not provide; it can take {', '.join(available)}"
        )
    return args, kwargs


def _check_result(result: Any, label: str) -> dict[str, float]:
    """A non-empty dict of str -> number, converted to plain floats."""
    if not isinstance(result, dict):
        raise EvaluatorError(
            f"evaluator {label} returned {type(result).__name__} {_short(result)}; "
            "it must return a dict of metric name -> number such as {'mAP': 0.71}"
        )
    out: dict[str, float] = {}
    for k, v in result.items():
        if not isinstance(k, str):
            raise EvaluatorError(
                f"evaluator {label} returned a non-string key {k!r}; metric names must be str"
            )
        value = _to_number(v)
        if value is None:
            raise EvaluatorError(
                f"evaluator {label} returned {k!r}: {_short(v)} ({type(v).__name__}); "
                "every metric must be a number"
            )
        out[k] = value
    if not out:
        raise EvaluatorError(f"evaluator {label} returned an empty dict; it must return metrics")
    return out


def _to_number(v: Any) -> float | None:
    """float(v) for ints, floats, numpy scalars and one-element tensors; None otherwise."""
    if isinstance(v, bool):
        return None
    if isinstance(v, numbers.Real):
        return float(v)
    if hasattr(v, "numel") and hasattr(v, "item") and v.numel() == 1:
        item = v.item()
        return float(item) if isinstance(item, numbers.Real) else None
    if hasattr(v, "item") and getattr(v, "shape", None) == ():
        item = v.item()
        return float(item) if isinstance(item, numbers.Real) else None
    return None


def _short(v: Any) -> str:
    text = " ".join(repr(v).split())
    return text if len(text) <= 60 else text[:57] + "..."


def run_evaluator(
    fn: Evaluator | Callable[..., Any], config: Any, model: Any, **context: Any
) -> dict[str, float]:
    """Call an evaluator with what it accepts and return its validated metrics.

    ``context`` is ``dataset``, ``device``, ``writer``, ``epoch`` (and anything else the caller
    offers); a user function receives only the names it declares (or all with ``**kwargs``).
    Exceptions of a user evaluator become one-line ``EvaluatorError``s naming its file;
    ``ReidkitError``s pass through unchanged. All values come back as ``float``.
    """
    ev = fn if isinstance(fn, Evaluator) else _wrap(fn)
    label = f"{ev.name!r} ({ev.source})"
    args, kwargs = _call_arguments(ev.fn, {"config": config, "model": model, **context}, label)
    try:
        result = ev.fn(*args, **kwargs)
    except ReidkitError:
        raise
    except Exception as e:
        if ev.builtin:
            raise
        raise EvaluatorError(f"evaluator {label} raised {type(e).__name__}: {one_line(e)}") from e
    return _check_result(result, label)


def _wrap(fn: Callable[..., Any]) -> Evaluator:
    """An ``Evaluator`` around a plain function (for direct calls of run_evaluator)."""
    try:
        source = inspect.getsourcefile(fn) or getattr(fn, "__module__", "?")
    except TypeError:
        source = getattr(fn, "__module__", "?")
    name = getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn)))
    return Evaluator(name, str(source), fn, getattr(fn, "DEFAULT_METRIC", None))
