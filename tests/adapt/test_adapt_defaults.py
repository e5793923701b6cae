"""``reidkit adapt`` with its defaults: fewer clusters than P still train, eps comes from the
data and is logged, a folder too small to cluster is one line, ``--from RUN`` brings the
adaptation schedule, and crops named by tracklet are clustered as whole tracklets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from adapt_helpers import write_json

from reidkit.app.cli import main
from reidkit.config import load_config
from reidkit.data.crops import crop_name
from reidkit.models.checkpoint import load_checkpoint


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_fewer_clusters_than_P_still_trains(adapt_params, tmp_path: Path) -> None:
    # batch 64 of K = 2: P = 32 pseudo-identities, but the 155 target crops hold ~12 people
    params = adapt_params(
        tmp_path / "work", {"iters": 2, "eval_data": None}, epoch=1, batch_size=64,
        batch_sampling_params={"class_balanced": True, "K": 2},
    )  # fmt: skip
    del params["adapt"]["eps"]  # the default: chosen from the data
    p = write_json(tmp_path / "p.json", params)
    assert main(["adapt", "-c", str(p), "--sub-working-dir", "few"]) == 0
    run = tmp_path / "work" / "few"
    (record,) = _records(run)
    assert 2 <= record["train"]["clusters"] < 32
    log = (run / "train.log").read_text()
    assert "fewer than P = 32: every batch takes all" in log and "(64 images)" in log
    assert "chosen from the data" in log  # eps, every epoch
    assert "over crops, Jaccard k1 10" in log  # Market names carry no tracklet: crops
    cfg = load_config(run / "config.json")
    assert cfg.adapt.eps is None


def test_folder_too_small_to_cluster_is_one_line(adapt_params, tmp_path, capsys) -> None:
    small = tmp_path / "small"
    small.mkdir()
    src = sorted(Path(adapt_params(tmp_path)["adapt"]["unlabeled"]).glob("*.jpg"))[:5]
    for f in src:
        shutil.copy(f, small / f.name)
    p = write_json(tmp_path / "p.json", adapt_params(tmp_path / "work"))
    argv = ["adapt", "-c", str(p), "--unlabeled", str(small), "--sub-working-dir", "x"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(small) in lines[0] and "5 crops are too few" in lines[0]
    assert "needs at least 11" in lines[0]  # k1 10 + 1
    assert not (tmp_path / "work" / "x").exists()


def test_from_run_takes_the_adaptation_schedule(domains, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "source"
    shutil.copytree(domains["run"], run)
    for name in ("best.pth", "last.pth"):  # a run trained when the adapt defaults differed
        ckpt = load_checkpoint(run / name)
        ckpt["config"]["adapt"] = {"eps": 0.3, "k1": 7, "target_bn": True}
        torch.save(ckpt, run / name)
    argv = [
        "adapt", "--from", str(run), "--unlabeled", str(domains["target"] / "bounding_box_train"),
        "epoch=1", "adapt.iters=1",
    ]  # fmt: skip
    assert main(argv) == 0
    cfg = load_config(tmp_path / "runs" / "source_adapt" / "config.json")
    assert cfg.epoch == 1  # named on the command line: kept
    assert cfg.lr.warmup_epochs == 0 and list(cfg.lr.decay_step) == [6]  # not the run's
    assert cfg.adapt.eps is None and cfg.pretrain_snapshot
    assert cfg.adapt.target_bn == "auto" and cfg.adapt.k1 == 30  # the protocol's recipe
    log = (tmp_path / "runs" / "source_adapt" / "train.log").read_text()
    assert "target BatchNorm statistics (adapt.target_bn): on (auto)" in log  # crops


def _tracklet_crops(target: Path, out: Path, split: bool) -> dict[str, int]:
    """The target crops renamed ``f<frame>_t<track>``: each person one tracklet, or (split)
    two tracklets over the same frames (seen together: cannot-linked). Returns name -> pid."""
    out.mkdir()
    by_pid: dict[int, list[Path]] = {}
    for f in sorted((target / "bounding_box_train").glob("*.jpg")):
        by_pid.setdefault(int(f.name.split("_")[0]), []).append(f)
    pids, track = {}, 0
    for n, (pid, files) in enumerate(sorted(by_pid.items())):
        halves = [files[0::2], files[1::2]] if split else [files]
        for half in halves:
            track += 1
            for j, f in enumerate(half):
                name = crop_name(100 * n + j + 1, track) + ".jpg"  # persons never co-occur
                shutil.copy(f, out / name)
                pids[name] = pid
    return pids


def _labels_by_tracklet(run: Path, folder: Path) -> dict[int, set[int]]:
    state = load_checkpoint(run / "last.pth")["callbacks"]["pseudo_labels"]
    names = sorted(p.name for p in folder.glob("*.jpg"))
    labels: dict[int, set[int]] = {}
    for name, lab in zip(names, state["labels"].tolist(), strict=True):
        labels.setdefault(int(name.split("_t")[1][:4]), set()).add(lab)
    return labels


@pytest.mark.parametrize("split", [False, True])
def test_tracklets_must_link_and_cannot_link(domains, adapt_params, tmp_path, split) -> None:
    crops = tmp_path / "crops"
    _tracklet_crops(domains["target"], crops, split)
    params = adapt_params(
        tmp_path / "work",
        {"unlabeled": str(crops), "iters": 2, "eval_data": None, "target_bn": "auto"},
        epoch=1,
    )
    del params["adapt"]["eps"]
    p = write_json(tmp_path / "p.json", params)
    assert main(["adapt", "-c", str(p), "--sub-working-dir", "t"]) == 0
    run = tmp_path / "work" / "t"
    labels = _labels_by_tracklet(run, crops)
    assert all(len(v) == 1 and -1 not in v for v in labels.values())  # must-link, all kept
    log = (run / "train.log").read_text()
    assert "clustered as wholes" in log and "tracklets joined" in log
    assert "(adapt.target_bn): off (auto)" in log  # the default with tracklets
    if split:  # tracklets 2n-1 and 2n show one person at the same time: never one label
        for t in range(1, len(labels), 2):
            assert labels[t] != labels[t + 1], (t, labels[t], labels[t + 1])
    state = load_checkpoint(run / "last.pth")
    assert torch.isfinite(state["model"][next(iter(state["model"]))]).all()


def test_tracklets_true_needs_tracklet_names(adapt_params, tmp_path, capsys) -> None:
    params = adapt_params(tmp_path / "work", {"tracklets": True})
    p = write_json(tmp_path / "p.json", params)
    assert main(["adapt", "-c", str(p), "--sub-working-dir", "x"]) == 2
    err = capsys.readouterr().err
    assert "adapt.tracklets = true, but no crop name carries a tracklet" in err
    assert "Traceback" not in err
