"""Bad input to ``reidkit adapt`` gets one ``error:`` line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapt_helpers import write_json

from reidkit.app.cli import main


def _one_line(capsys: pytest.CaptureFixture, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_empty_unlabeled_folder(adapt_params, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    p = write_json(tmp_path / "p.json", adapt_params(tmp_path / "work"))
    argv = ["adapt", "-c", str(p), "--unlabeled", str(empty), "--sub-working-dir", "x"]
    _one_line(capsys, argv, str(empty), "no images in the unlabeled folder")
    assert not (tmp_path / "work" / "x").exists()  # nothing written before the checks


def test_no_clusters_suggests_eps(adapt_params, tmp_path: Path, capsys) -> None:
    params = adapt_params(tmp_path / "work", {"eps": 0.01, "min_samples": 40})
    p = write_json(tmp_path / "p.json", params)
    _one_line(capsys, ["adapt", "-c", str(p)], "found no clusters", "raise adapt.eps")


def test_missing_inputs(adapt_params, tmp_path: Path, capsys) -> None:
    params = adapt_params(tmp_path / "work")
    _one_line(capsys, ["adapt", "--unlabeled", str(tmp_path)], "pass -c params.json, --from RUN")
    del params["adapt"]["unlabeled"]
    p = write_json(tmp_path / "p.json", params)
    _one_line(capsys, ["adapt", "-c", str(p)], "adapt.unlabeled is not set", "--unlabeled DIR")
    argv = ["adapt", "-c", str(p), "--unlabeled", str(tmp_path / "nope")]
    _one_line(capsys, argv, "adapt.unlabeled", "nope", "no such folder")
    _one_line(capsys, ["adapt", "--from", str(tmp_path / "norun")], "norun", "no such run")
