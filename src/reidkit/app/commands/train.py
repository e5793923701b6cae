"""CLI verbs of training: ``train``, ``adapt`` and ``runs``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``adapt`` and ``runs`` to the ``reidkit`` command."""
    p = sub.add_parser("train", help="train a model from a params.json / .yaml file")
    p.add_argument("-c", "--config", required=True, help="params.json or .yaml")
    p.add_argument("--sub-working-dir", "--sub_working_dir", dest="sub_working_dir")
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from RUN/last.pth ('auto', the default when given alone) or a checkpoint",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in the run folder (its checkpoints and logs)",
    )
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    p.set_defaults(func=_train)

    _register_adapt(sub)

    r = sub.add_parser("runs", help="list the runs under a working_dir with their best metric")
    r.add_argument("working_dir")
    r.set_defaults(func=_runs)


def _train(args: argparse.Namespace) -> int:
    from reidkit.app.launch import launch_training
    from reidkit.config import load_config

    overrides = list(args.overrides)
    if args.resume and "=" in args.resume and not Path(args.resume).exists():
        overrides.insert(0, args.resume)  # `--resume key=value`: an override, not a file
        args.resume = "auto"
    cfg = load_config(args.config, overrides, sub_working_dir=args.sub_working_dir)
    launch_training(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0


def _register_adapt(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "adapt",
        help="adapt a model to unlabeled crops (clustering + cluster memory; docs/adaptation.md)",
    )
    a.add_argument("-c", "--config", help="params.json or .yaml (the adapt section, the model)")
    a.add_argument(
        "--from", dest="from_run", metavar="RUN", help="start from a trained run (its config)"
    )
    a.add_argument("--unlabeled", metavar="DIR", help="folder of unlabeled target crops")
    a.add_argument("--eval-data", metavar="DIR", help="labelled test folder, after each epoch")
    a.add_argument("--sub-working-dir", "--sub_working_dir", dest="sub_working_dir")
    a.add_argument(
        "--resume", nargs="?", const="auto", default=None, help="continue (as train --resume)"
    )
    a.add_argument("--overwrite", action="store_true", help="replace the run in the run folder")
    a.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    a.set_defaults(func=_adapt)


def _adapt(args: argparse.Namespace) -> int:
    from reidkit.app.adapt import adapt, adapt_config

    overrides = list(args.overrides)
    if args.resume and "=" in args.resume and not Path(args.resume).exists():
        overrides.insert(0, args.resume)
        args.resume = "auto"
    cfg = adapt_config(
        args.config,
        args.from_run,
        overrides,
        unlabeled=args.unlabeled,
        eval_data=args.eval_data,
        sub_working_dir=args.sub_working_dir,
    )
    adapt(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0


def _runs(args: argparse.Namespace) -> int:
    from reidkit.engine.runs import list_runs, runs_table

    print(runs_table(list_runs(args.working_dir)))
    return 0
