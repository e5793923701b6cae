"""The seed's command, unchanged: ``python train.py --operation start_train --config_path
params.json --sub_working_dir NAME``. It is a shim over ``reidkit train``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from reidkit.cli import main as reidkit_main  # noqa: E402

OPERATIONS = ("start_train", "resume_train")


def main(argv: list[str] | None = None) -> int:
    """Translate the seed's flags into ``reidkit train`` arguments."""
    parser = argparse.ArgumentParser(description="Train a model (seed-compatible entry point).")
    parser.add_argument("--operation", default="start_train", choices=OPERATIONS)
    parser.add_argument("--config_path", default="params.json")
    parser.add_argument("--sub_working_dir", default=None)
    args, overrides = parser.parse_known_args(argv)
    forwarded = ["train", "-c", args.config_path]
    if args.sub_working_dir:
        forwarded += ["--sub-working-dir", args.sub_working_dir]
    if args.operation == "resume_train":
        forwarded += ["--resume", "auto"]
    return reidkit_main(forwarded + overrides)


if __name__ == "__main__":
    sys.exit(main())
