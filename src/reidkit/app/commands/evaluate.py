"""CLI verbs of the evaluation package: ``reidkit eval TARGET`` and ``reidkit report RUN``."""

from __future__ import annotations

import argparse

from reidkit.utils.choices import DEVICES


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the ``reidkit`` command."""
    p = sub.add_parser(
        "eval",
        help="evaluate a run folder, checkpoint, exported .onnx / OpenVINO .xml model or saved "
        "features (.npz)",
        description="Evaluate TARGET: a run folder (config.json + best.pth), a checkpoint, an "
        "exported .onnx or OpenVINO .xml model (dataset from --config or the config.json "
        "beside it) or a .npz features file. Prints the metrics and writes eval.json.",
    )
    p.add_argument(
        "target", help="run folder | checkpoint.pth | model.onnx | model.xml | features.npz"
    )
    p.add_argument("-c", "--config", help="params file overriding the run's config")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="evaluate on this dataset instead of the config's (cross-domain protocol; "
        "layout detected; query + gallery are enough)",
    )
    p.add_argument(
        "--tracklets",
        action="store_true",
        help="score query tracklets against gallery tracklets: an image dataset's images are "
        "grouped by (pid, camera), frames ordered by the frame numbers of Market-style names "
        "(a `reidkit crops --labelled` folder); a video dataset is always scored this way. "
        "Writes eval[_DIR]_tracklets.json",
    )
    p.add_argument(
        "--pool",
        choices=("avg", "max"),
        default=None,
        help="how frame features are pooled into a tracklet feature (default: video.pool, avg)",
    )
    p.add_argument("--gallery", help="gallery features (.npz of `reidkit extract`)")
    p.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="k-reciprocal re-ranking (default: the config's)",
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with mirrored images (default: data.flip_test)",
    )
    p.add_argument(
        "--report",
        type=int,
        default=0,
        metavar="N",
        help="also write report/report.html (curves, per-camera figures, the N worst queries "
        "with thumbnails) and report/ranked_lists.png (N queries spread over the set)",
    )
    p.add_argument(
        "--scales",
        default="1.0",
        help="comma-separated image scales averaged at test time, e.g. 1.0,0.875 (PyTorch)",
    )
    p.add_argument("--topk", type=int, default=10, help="gallery images per ranked list")
    p.add_argument("--no-html", action="store_true", help="PNG report only")
    p.add_argument(
        "--evaluator",
        metavar="NAME",
        help="evaluator to run (a built-in, evaluate/NAME.py in the current folder or "
        "evaluation_params.search_dirs of -c, or package.module:function); default: the one "
        "of -c, else the built-in the run's config names (files we read never choose code)",
    )
    p.add_argument("-o", "--output", help="where to write eval.json")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    p.set_defaults(func=_eval)
    _add_report(sub)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's report page (curves, per-camera figures, worst queries) to open "
        "in a browser",
        description="Evaluate RUN's best model as `reidkit eval RUN` does (writing eval.json) "
        "and write RUN/report/report.html: one self-contained page (no server, no network) "
        "with the config, loss / lr / metric curves per epoch, the best epoch, rank-1 and mAP "
        "per query camera, and the worst queries with their top-k gallery images.",
    )
    p.add_argument("run", help="run folder (config.json, metrics.jsonl, best.pth)")
    p.add_argument("--queries", type=int, default=10, help="worst queries shown (default 10)")
    p.add_argument("--topk", type=int, default=10, help="gallery images per query (default 10)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from reidkit.app.evaluate import format_metrics, report_run

    metrics, page = report_run(args.run, queries=args.queries, topk=args.topk, device=args.device)
    print(format_metrics(metrics))
    print(f"wrote {page}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from reidkit.app.evaluate import evaluate_target, format_metrics
    from reidkit.utils.errors import ConfigError

    try:
        scales = [float(x) for x in args.scales.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--scales {args.scales!r}: expected comma-separated numbers such as 1.0,0.875"
        ) from None

    metrics = evaluate_target(
        args.target,
        config=args.config,
        overrides=args.overrides,
        gallery=args.gallery,
        rerank=args.rerank,
        flip=args.flip,
        report=args.report,
        topk=args.topk,
        html=not args.no_html,
        output=args.output,
        device=args.device,
        scales=scales,
        evaluator=args.evaluator,
        data=args.data,
        tracklets=args.tracklets,
        pool=args.pool,
    )
    print(format_metrics(metrics))
    return 0
