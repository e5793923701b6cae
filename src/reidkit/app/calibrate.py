"""``reidkit calibrate RUN``: same-person thresholds of a run, stored where deployers read them.

The table is measured with the checkpoint's PyTorch model (on the run's cross-camera
query / gallery pairs, or a pairs file) and written into the checkpoint under the plain key
``calibration`` (the checkpoint is rewritten atomically and stays ``weights_only``-loadable).
Every file exported from that checkpoint and lying in the run folder (``*.onnx``, ``*.xml``
whose ``config_sha256`` matches) is then re-measured through its own backend and precision and
gets its own table in its metadata, since an INT8 model's scores are not the fp32 model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from reidkit.app.export import load_run_dataset, retrieval_set
from reidkit.deploy.calibrate import (
    load_pairs,
    pair_thresholds,
    retrieval_thresholds,
    store_in_file,
)
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.onnx_meta import config_hash, read_onnx_info
from reidkit.deploy.openvino_ir import read_openvino_info
from reidkit.evaluation.thresholds import ThresholdTable
from reidkit.models.checkpoint import (
    load_checkpoint,
    model_from_state,
    resolve_checkpoint,
    save_checkpoint,
)
from reidkit.utils.errors import ReidkitError
from reidkit.utils.logging import get_logger


def _exports_of(folder: Path, sha: str) -> list[Path]:
    """reidkit exports in ``folder`` made from the config with hash ``sha``."""
    found = []
    for file in sorted([*folder.glob("*.onnx"), *folder.glob("*.xml")]):
        if file.name.startswith("."):
            continue
        try:
            read = read_onnx_info if file.suffix == ".onnx" else read_openvino_info
            info = read(file)
        except ReidkitError as e:
            get_logger().info(f"{file}: skipped ({e})")
            continue
        if info.config_sha256 == sha:
            found.append(file)
    return found


def calibrate_run(
    target: Union[str, Path],
    pairs: Union[str, Path, None] = None,
    *,
    exports: bool = True,
    threads: int | None = None,
    verbose: bool = True,
) -> dict[str, ThresholdTable]:
    """Measure and store the thresholds (see the module docstring); returns them by file."""
    ckpt = resolve_checkpoint(target)
    state = load_checkpoint(ckpt)
    model, cfg = model_from_state(state, str(ckpt))
    pair_set = load_pairs(pairs) if pairs is not None else None
    data = None if pair_set else retrieval_set(cfg, load_run_dataset(cfg, needed=True))

    def measure(embedder: Embedder) -> ThresholdTable:
        if pair_set is not None:
            return pair_thresholds(embedder, pair_set)
        return retrieval_thresholds(embedder, data)

    reference = Embedder.from_model(
        model,
        cfg.img_h,
        cfg.img_w,
        distance=cfg.evaluation_params.distance,
        mean=cfg.data.mean,
        std=cfg.data.std,
        pixel_range=cfg.data.pixel_range,
    )
    tables = {str(ckpt): measure(reference)}
    state["calibration"] = tables[str(ckpt)].to_dict()
    save_checkpoint(state, ckpt)
    if verbose:
        print(f"{ckpt}:\n{tables[str(ckpt)].format()}")
    if exports:
        for file in _exports_of(ckpt.parent, config_hash(cfg.to_dict())):
            table = measure(Embedder.load(file, threads=threads))
            store_in_file(file, table)
            tables[str(file)] = table
            if verbose:
                print(f"{file}:\n{table.format()}")
    return tables
