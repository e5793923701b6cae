"""Run logging: one logger that writes to the console and to ``run_dir/train.log``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "reidkit"


def get_logger() -> logging.Logger:
    """The package logger (configured by ``setup_logging``; silent until then)."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(log_file: Path | None = None, console: bool = True) -> logging.Logger:
    """Send reidkit's log lines to the console and, when given, a plain-text file."""
    logger = get_logger()
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    if console:
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    logger.propagate = False
    return logger
