"""get_evaluator / run_evaluator / default_metric: built-ins, user files, broken evaluators."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidkit.evaluation import (
    EvaluatorError,
    classification_evaluate,
    default_metric,
    get_evaluator,
    market_evaluate,
    run_evaluator,
)
from reidkit.utils.errors import ConfigError, ReidkitError


def _write(root: Path, name: str, body: str) -> Path:
    folder = root / "evaluate"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(body, encoding="utf-8")
    return path


def test_builtins_and_default_metrics() -> None:
    assert get_evaluator("market_evaluate").fn is market_evaluate
    assert get_evaluator("classification_evaluate").fn is classification_evaluate
    assert get_evaluator("classificaton_evaluate").fn is classification_evaluate  # seed typo
    assert default_metric("market_evaluate") == "mAP"
    assert default_metric("classification_evaluate") == "top1"


def test_user_file_in_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(
        tmp_path,
        "lfw_evaluate",
        "DEFAULT_METRIC = 'acc'\n"
        "def run_eval(config, model, *, epoch=None):\n"
        "    return {'acc': 0.5 + config['bonus'], 'epoch': epoch, 'w': model.weight.sum()}\n",
    )
    monkeypatch.chdir(tmp_path)
    ev = get_evaluator("lfw_evaluate")
    assert default_metric(ev) == "acc" and default_metric("lfw_evaluate") == "acc"
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    out = run_evaluator(ev, {"bonus": 0.25}, model, dataset=None, device="cpu", epoch=3)
    assert out == {"acc": 0.75, "epoch": 3.0, "w": 2.0}


def test_user_file_in_search_dir_with_fewer_arguments(tmp_path: Path) -> None:
    _write(tmp_path / "extra", "seedlike", "def run_eval(params):\n    return {'n': len(params)}\n")
    ev = get_evaluator("seedlike", search_dirs=[str(tmp_path / "extra")])
    assert run_evaluator(ev, {"a": 1, "b": 2}, object(), dataset=1, device="cpu") == {"n": 2.0}
    # also accepted: the evaluate/ folder itself as a search dir
    ev2 = get_evaluator("seedlike", search_dirs=[str(tmp_path / "extra" / "evaluate")])
    assert ev2.source == ev.source


def test_kwargs_evaluator_receives_everything(tmp_path: Path) -> None:
    _write(tmp_path, "kw", "def run_eval(**kw):\n    return {k: 1 for k in kw}\n")
    ev = get_evaluator("kw", [tmp_path])
    out = run_evaluator(ev, "cfg", "model", dataset=1, device="cpu", writer=None, epoch=2)
    assert set(out) == {"config", "model", "dataset", "device", "writer", "epoch"}


def test_entry_point_evaluator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_pkg_eval.py").write_text(
        "def score(config, model, dataset=None):\n    return {'s': dataset}\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ev = get_evaluator("my_pkg_eval:score")
    assert run_evaluator(ev, None, None, dataset=4, device="cpu") == {"s": 4.0}
    with pytest.raises(ConfigError, match="declares no DEFAULT_METRIC"):
        default_metric(ev)
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        get_evaluator("my_pkg_eval:nope")
    with pytest.raises(ConfigError, match="cannot import no_such_module_xyz"):
        get_evaluator("no_such_module_xyz:f")


def test_unknown_name_lists_builtins_and_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        get_evaluator("nothing_here", search_dirs=[str(tmp_path)])
    msg = str(e.value)
    assert "market_evaluate" in msg and "classification_evaluate" in msg
    assert str(tmp_path) in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            "def run_eval(config):\n    raise ValueError('bad\\nthing')\n",
            "raised ValueError: bad thing",
        ),
        ("def run_eval(config):\n    return 0.7\n", "returned float 0.7"),
        ("def run_eval(config):\n    return {'a': 'x'}\n", "every metric must be a number"),
        ("def run_eval(config):\n    return {1: 0.5}\n", "non-string key 1"),
        ("def run_eval(config):\n    return {}\n", "empty dict"),
        ("def run_eval(config, model, *, needed):\n    return {'a': 1}\n", "requires argument"),
    ],
)
def test_broken_evaluator_run(tmp_path: Path, body: str, needle: str) -> None:
    path = _write(tmp_path, "broken", body)
    ev = get_evaluator("broken", [tmp_path])
    with pytest.raises(EvaluatorError, match=needle) as e:
        run_evaluator(ev, {}, None, dataset=None, device="cpu")
    assert "broken" in str(e.value) and str(path) in str(e.value)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ReidkitError)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("def run_eval(config):\n    return {'a': 1\n", "syntax error in .*broken.py line"),
        ("import no_such_module_abc\n", "importing .* failed: ModuleNotFoundError"),
        ("run_eval = 3\n", "does not define a function run_eval"),
    ],
)
def test_broken_evaluator_file(tmp_path: Path, body: str, needle: str) -> None:
    _write(tmp_path, "broken", body)
    with pytest.raises(ConfigError, match=needle):
        get_evaluator("broken", [tmp_path])


def test_plain_function_and_reidkit_errors_pass_through() -> None:
    def mine(config, model, device=None):
        return {"d": 1 if device == "cpu" else 0}

    assert run_evaluator(mine, None, None, device="cpu", dataset=None) == {"d": 1.0}

    def fails(config):
        raise ConfigError("x.y = 3: expected 4")

    with pytest.raises(ConfigError, match="x.y = 3"):
        run_evaluator(fails, None, None)


def test_worked_example_evaluator_runs(eval_cfg) -> None:
    from reidkit.data import build_dataset
    from reidkit.models import ReidModel

    examples = Path(__file__).resolve().parents[2] / "examples"
    ev = get_evaluator("my_evaluate", search_dirs=[str(examples)])
    assert default_metric(ev) == "cos_mAP"
    torch.manual_seed(0)
    model = ReidModel("resnet18", num_classes=4)
    out = run_evaluator(ev, eval_cfg, model, dataset=build_dataset(eval_cfg), device="cpu")
    assert set(out) == {"cos_rank1", "cos_mAP", "mean_norm"} and out["mean_norm"] > 0
