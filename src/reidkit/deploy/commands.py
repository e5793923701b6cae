"""CLI verbs of deployment: ``export`` (and, as they land, ``extract`` and ``search``)."""

from __future__ import annotations

import argparse

PREPROCESS_CHOICES = ("float-nchw", "uint8-nhwc", "uint8-nchw")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the deploy verbs to the ``reidkit`` command."""
    p = sub.add_parser(
        "export",
        help="export a run's best.pth (or a checkpoint) to ONNX, checked with onnxruntime",
        description="Write model.onnx (dynamic batch) beside the checkpoint and compare "
        "onnxruntime with PyTorch on random and real images; a failed check writes nothing.",
    )
    p.add_argument("target", metavar="RUN_DIR|CKPT", help="run folder or checkpoint file")
    p.add_argument("--out", help="output path (default: model.onnx beside the checkpoint)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--fp16", action="store_true", help="compute in half precision")
    p.add_argument(
        "--preprocess",
        choices=PREPROCESS_CHOICES,
        default="float-nchw",
        help="input format: float-nchw (normalised, default) or raw uint8 crops of any size "
        "(resize + normalise inside the graph)",
    )
    p.add_argument("--l2norm", action="store_true", help="L2-normalise the output embeddings")
    p.add_argument("--images", help="folder of real images for the parity check")
    p.add_argument(
        "--exporter",
        choices=("auto", "torchscript", "dynamo"),
        default="auto",
        help="torch.onnx path (auto: TorchScript, falling back to dynamo)",
    )
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from reidkit.deploy.run_export import export_run
    from reidkit.utils.logging import setup_logging

    setup_logging(None)
    export_run(
        args.target,
        args.out,
        opset=args.opset,
        fp16=args.fp16,
        preprocess=args.preprocess,
        l2norm=args.l2norm,
        images_dir=args.images,
        exporter=args.exporter,
    )
    return 0
