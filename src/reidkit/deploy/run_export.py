"""Export a training run (or one checkpoint) to ``model.onnx``: what ``reidkit export`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from reidkit.utils.errors import CheckpointError
from reidkit.utils.logging import get_logger


def resolve_checkpoint(target: Union[str, Path]) -> Path:
    """A run folder -> its ``best.pth`` (else ``last.pth``, with a warning); a file -> itself.

    Raises ``CheckpointError`` naming the path when there is nothing to export.
    """
    target = Path(target)
    if target.is_file():
        return target
    if not target.is_dir():
        raise CheckpointError(f"{target}: no such run folder or checkpoint file")
    best, last = target / "best.pth", target / "last.pth"
    if best.is_file():
        return best
    if last.is_file():
        get_logger().warning(f"{target}: no best.pth (no evaluation ran?); exporting last.pth")
        return last
    raise CheckpointError(
        f"{target}: run folder has no best.pth or last.pth; train first or pass a checkpoint"
    )


def _default_images(batches_dir: str) -> Path | None:
    """Real images for the parity check: the dataset's query folder when it is on disk."""
    for name in ("query", "bounding_box_test"):
        folder = Path(batches_dir) / name
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    return None


def export_run(
    target: Union[str, Path],
    out: Union[str, Path, None] = None,
    *,
    opset: int = 17,
    fp16: bool = False,
    preprocess: str = "float-nchw",
    l2norm: bool = False,
    images_dir: Union[str, Path, None] = None,
    num_images: int = 8,
    exporter: str = "auto",
    verbose: bool = True,
) -> Path:
    """Rebuild the model of a run / checkpoint, export it and check it; return the ONNX path.

    The file goes to ``out`` or ``model.onnx`` beside the checkpoint. The parity check uses
    random images plus real ones: ``images_dir`` or, by default, the training config's dataset
    query folder when it exists. ``verbose`` prints the one-line report (max abs difference).
    """
    from reidkit.deploy.export import export_onnx
    from reidkit.engine.checkpoint import load_model_from_checkpoint

    ckpt = resolve_checkpoint(target)
    model, cfg = load_model_from_checkpoint(ckpt, "cpu")
    if images_dir is None:
        images_dir = _default_images(cfg.batches_dir)
    report = export_onnx(
        model,
        Path(out) if out is not None else ckpt.parent / "model.onnx",
        cfg.img_h,
        cfg.img_w,
        opset=opset,
        fp16=fp16,
        preprocess=preprocess,
        l2norm=l2norm,
        distance=cfg.evaluation_params.distance,
        config=cfg.to_dict(),
        backbone=cfg.model_params.backbone,
        images_dir=images_dir,
        num_images=num_images,
        exporter=exporter,
    )
    if verbose:
        print(report.summary())
    return report.path
