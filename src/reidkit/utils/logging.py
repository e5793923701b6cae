"""Run logging: one logger that writes to the console and to ``run_dir/train.log``.

A run opens its log file only after every check has passed (nothing is written to a run folder
before that); what is logged while the run is being built is held in memory and written at
the top of ``train.log`` when it opens (``setup_logging(..., hold=True)`` then
``open_log_file``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from reidkit.utils.write_errors import write_guard

LOGGER_NAME = "reidkit"
FILE_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")


class _HeldRecords(logging.Handler):
    """Keeps records until a log file is opened (bounded: a build logs a few dozen lines)."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.limit = limit

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.limit:
            self.records.append(record)


class _RunLogFile(logging.FileHandler):
    """``train.log``: a line that cannot be written (disk full ...) stops the file with one
    warning on stderr, instead of logging's traceback per line."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        get_logger().removeHandler(self)
        reason = error.strerror or type(error).__name__
        print(f"warning: {self.baseFilename}: {reason}; the log file stops here", file=sys.stderr)
        with contextlib.suppress(OSError):
            self.close()


def get_logger() -> logging.Logger:
    """The package logger (configured by ``setup_logging``; silent until then)."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(
    log_file: Path | None = None, console: bool = True, hold: bool = False
) -> logging.Logger:
    """Send reidkit's log lines to the console and, when given, a plain-text file.

    ``hold`` keeps the lines in memory until ``open_log_file`` writes them to the run's log.
    """
    logger = get_logger()
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if console:
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(stream)
    if hold:
        logger.addHandler(_HeldRecords())
    if log_file is not None:
        open_log_file(log_file)
    logger.propagate = False
    return logger


def open_log_file(log_file: Path) -> None:
    """Add ``log_file`` to the logger, first writing the lines held since ``setup_logging``."""
    logger = get_logger()
    with write_guard(log_file):
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = _RunLogFile(log_file, encoding="utf-8")
    file_handler.setFormatter(FILE_FORMAT)
    for handler in list(logger.handlers):
        if isinstance(handler, _HeldRecords):
            for record in handler.records:
                file_handler.handle(record)
            logger.removeHandler(handler)
    logger.addHandler(file_handler)
