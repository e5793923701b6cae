"""CLI verbs of deployment: ``export``, ``calibrate``, ``extract``, ``search build|add|query``."""

from __future__ import annotations

import argparse

from reidkit.utils.choices import (
    DISTANCES,
    EXPORT_FORMATS,
    EXPORTERS,
    INDEX_KINDS,
    INPUT_FORMATS,
    PRECISIONS,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the deploy verbs to the ``reidkit`` command."""
    p = sub.add_parser(
        "export",
        help="export a run's best.pth (or a checkpoint) to ONNX or OpenVINO, fp32/fp16/int8, "
        "accuracy-checked",
        description="Write model[_fp16|_int8].onnx (or .xml for OpenVINO) beside the "
        "checkpoint. The file is checked against PyTorch on random and real images (fp32, "
        "fp16) and by re-running the run's query/gallery evaluation through it; if the metric "
        "drops more than --max-drop points nothing is written.",
    )
    p.add_argument("target", metavar="RUN_DIR|CKPT", help="run folder or checkpoint file")
    p.add_argument("--out", help="output path (default: model[_fp16|_int8].onnx|.xml beside it)")
    p.add_argument("--precision", choices=PRECISIONS, help="default fp32")
    p.add_argument("--fp16", action="store_true", help="same as --precision fp16")
    p.add_argument("--format", dest="fmt", choices=EXPORT_FORMATS, default="onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument(
        "--preprocess",
        choices=INPUT_FORMATS,
        default="float-nchw",
        help="input format: float-nchw (normalised, default) or raw uint8 crops of any size "
        "(resize + normalise inside the graph)",
    )
    p.add_argument("--l2norm", action="store_true", help="L2-normalise the output embeddings")
    p.add_argument("--images", help="folder of real images for the parity check")
    p.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="auto",
        help="torch.onnx path (auto: TorchScript, falling back to dynamo)",
    )
    p.add_argument(
        "--calib-images", type=int, default=300, metavar="N", help="INT8 calibration images"
    )
    p.add_argument(
        "--max-drop",
        type=float,
        metavar="POINTS",
        help="largest allowed metric drop in points (default 0.2 fp32/fp16, 1.0 int8)",
    )
    p.add_argument(
        "--accuracy-control",
        action="store_true",
        help="OpenVINO INT8: nncf keeps the layers that cost accuracy in float",
    )
    p.add_argument(
        "--no-accuracy-check",
        action="store_true",
        help="skip the query/gallery check (fp32/fp16 only; the parity check still runs)",
    )
    p.add_argument("--threads", type=int, help="CPU threads of the exported model's runtime")
    p.set_defaults(func=_export)
    register_calibrate(sub)
    register_extract(sub)
    register_search(sub)


def _export(args: argparse.Namespace) -> int:
    from reidkit.app.export import export_run
    from reidkit.utils.logging import setup_logging

    setup_logging(None)
    export_run(
        args.target,
        args.out,
        precision=args.precision or "fp32",
        fp16=args.fp16,
        fmt=args.fmt,
        opset=args.opset,
        preprocess=args.preprocess,
        l2norm=args.l2norm,
        images_dir=args.images,
        exporter=args.exporter,
        calib_images=args.calib_images,
        max_drop=args.max_drop,
        accuracy_control=args.accuracy_control,
        accuracy_check=False if args.no_accuracy_check else None,
        threads=args.threads,
    )
    return 0


def register_calibrate(sub: argparse._SubParsersAction) -> None:
    """``reidkit calibrate RUN [--pairs FILE]``."""
    p = sub.add_parser(
        "calibrate",
        help="same-person similarity thresholds at FPR 1e-2/1e-3/1e-4, stored with the model",
        description="Measure the cosine-similarity thresholds at false positive rates 1e-2, "
        "1e-3, 1e-4 and the equal-error point on the run's cross-camera query/gallery pairs "
        "(or a pairs file); store them in the checkpoint and, re-measured through each file, "
        "in the run's exported .onnx / .xml files.",
    )
    p.add_argument("target", metavar="RUN_DIR|CKPT", help="run folder or checkpoint file")
    p.add_argument("--pairs", help="pairs file (LFW pairs.txt or a,b,label CSV)")
    p.add_argument("--no-exports", action="store_true", help="only update the checkpoint")
    p.add_argument("--threads", type=int, help="CPU threads of exported models' runtimes")
    p.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from reidkit.app.calibrate import calibrate_run
    from reidkit.utils.logging import setup_logging

    setup_logging(None)
    calibrate_run(args.target, args.pairs, exports=not args.no_exports, threads=args.threads)
    return 0


def register_extract(sub: argparse._SubParsersAction) -> None:
    """``reidkit extract MODEL INPUT --out FEATS.npz``."""
    p = sub.add_parser(
        "extract",
        help="embed a folder, file list or LMDB store into a features .npz (resumable)",
        description="Embed images with an exported .onnx (onnxruntime) or a checkpoint / run "
        "folder (PyTorch). Shards are written as they finish, so an interrupted run resumes; "
        "under torchrun each rank embeds its share and rank 0 merges.",
    )
    p.add_argument("model", help="model.onnx, OpenVINO model.xml, a checkpoint or a run folder")
    p.add_argument("input", help="image folder, text file of image paths, or .lmdb store")
    p.add_argument("--out", required=True, help="features file to write (.npz)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, help="onnxruntime / OpenVINO CPU threads")
    p.add_argument("--workers", type=int, default=4, help="image decoding threads")
    p.add_argument("--shard-size", type=int, default=4096, help="images per resumable shard")
    p.add_argument("--no-resume", action="store_true", help="discard finished shards")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_extract)


def _extract(args: argparse.Namespace) -> int:
    from reidkit.deploy.extract import extract

    out = extract(
        args.model,
        args.input,
        args.out,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
        workers=args.workers,
        shard_size=args.shard_size,
        resume=not args.no_resume,
        progress=not args.no_progress,
    )
    if out is not None:
        print(f"wrote {out}")
    return 0


def register_search(sub: argparse._SubParsersAction) -> None:
    """``reidkit search build|add|query``."""
    p = sub.add_parser("search", help="build a gallery index from features and query it")
    verbs = p.add_subparsers(dest="search_command", metavar="{build,add,query}")
    verbs.required = True
    b = verbs.add_parser("build", help="new index folder from a gallery features file")
    b.add_argument("features", help="features .npz from `reidkit extract`")
    b.add_argument("--index", required=True, help="index folder to write")
    b.add_argument("--kind", choices=INDEX_KINDS, default="exact")
    b.add_argument("--distance", choices=DISTANCES, help="default: the model's")
    b.add_argument("--nlist", type=int, default=0, help="IVF lists (default 4*sqrt(N))")
    b.add_argument("--m", type=int, default=0, help="IVF-PQ bytes per vector (default 64..)")
    b.add_argument("--nbits", type=int, default=8, help="IVF-PQ bits per sub-code")
    b.set_defaults(func=_search_build)
    a = verbs.add_parser("add", help="append a features file to an index")
    a.add_argument("index", help="index folder")
    a.add_argument("features", help="features .npz of the same model")
    a.set_defaults(func=_search_add)
    q = verbs.add_parser("query", help="top-k gallery images for query images or features")
    q.add_argument("index", help="index folder")
    q.add_argument("query", nargs="+", help="query image file(s) or one features .npz")
    q.add_argument("--model", help="model.onnx, model.xml or checkpoint to embed query images")
    q.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    q.add_argument("--nprobe", type=int, help="IVF lists probed per query")
    q.add_argument("--png", help="write the ranked list picture here")
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=_search_query)


def _search_build(args: argparse.Namespace) -> int:
    from reidkit.deploy.search import build_index

    index = build_index(
        args.features,
        args.index,
        kind=args.kind,
        distance=args.distance,
        nlist=args.nlist,
        m=args.m,
        nbits=args.nbits,
    )
    print(f"wrote {args.index}: {index.kind} index of {len(index)} x {index.dim}")
    return 0


def _search_add(args: argparse.Namespace) -> int:
    from reidkit.deploy.search import add_to_index

    index = add_to_index(args.index, args.features)
    print(f"{args.index}: {len(index)} gallery items")
    return 0


def _search_query(args: argparse.Namespace) -> int:
    from reidkit.deploy.search import search_gallery

    search_gallery(
        args.index,
        args.query,
        model=args.model,
        k=args.k,
        nprobe=args.nprobe,
        png=args.png,
        device=args.device,
    )
    return 0
