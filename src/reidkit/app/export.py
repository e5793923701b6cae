"""Export a training run (or one checkpoint) to ``model.onnx``: what ``reidkit export`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from reidkit.deploy.export import export_onnx
from reidkit.models.checkpoint import resolve_checkpoint, restore


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
    ckpt = resolve_checkpoint(target)
    model, cfg = restore(ckpt)
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
        mean=cfg.data.mean,
        std=cfg.data.std,
        pixel_range=cfg.data.pixel_range,
        config=cfg.to_dict(),
        backbone=cfg.model_params.backbone,
        images_dir=images_dir,
        num_images=num_images,
        exporter=exporter,
    )
    if verbose:
        print(report.summary())
    return report.path
