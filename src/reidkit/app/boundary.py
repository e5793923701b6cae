"""The command line's one boundary: every failure becomes one line on stderr.

* An expected failure (reidkit's own errors, the OSError family: missing, unreadable,
  read-only or full disks, symlink loops; an LMDB or onnxruntime error on a bad file; a
  decompression bomb; running out of memory) prints ``error: <one line>`` and exits 2.
* Anything else is a bug: one line with the path of a crash log holding the traceback, exit
  3 (1 is left to commands that report findings, such as ``data check``); ``--debug`` (or
  ``REIDKIT_DEBUG=1``) prints the traceback instead.
* Ctrl-C prints ``interrupted`` and exits 130; SIGTERM prints one line saying where the
  command stopped (a training run: at which step, checkpointed, resumable) and exits 143
  (``reidkit.utils.stopping``).
"""

from __future__ import annotations

import errno
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from reidkit import __version__
from reidkit.utils.errors import ReidkitError, first_line
from reidkit.utils.stopping import (
    EXIT_TERMINATED,
    Terminated,
    install_sigterm_handler,
    stop_requested,
)
from reidkit.utils.write_errors import REASONS

EXIT_EXPECTED, EXIT_BUG, EXIT_INTERRUPTED = 2, 3, 130
_DISK_HINTS = {
    **{code: f" ({reason}: {hint})" for code, (reason, hint) in REASONS.items()},
    errno.ELOOP: " (a symbolic link loop)",
    errno.ENOTDIR: " (a path component is a file, not a folder)",
}


def describe_os_error(e: OSError) -> str:
    """``path: reason (hint)`` for an OSError."""
    where = e.filename if e.filename is not None else ""
    if e.filename2 is not None:
        where = f"{where} -> {e.filename2}"
    reason = e.strerror or first_line(e)
    hint = _DISK_HINTS.get(e.errno or 0, "")
    return f"{where}: {reason}{hint}" if where else f"{reason}{hint}"


def describe_expected(e: BaseException) -> str | None:
    """The one-line text of an expected failure, or None when ``e`` is a bug."""
    if isinstance(e, ReidkitError):
        return " ".join(str(e).split())
    if isinstance(e, OSError):
        return describe_os_error(e)
    if type(e).__name__ == "DecompressionBombError":  # PIL's (not imported for --help)
        return f"image too large (a decompression bomb?): {first_line(e)}"
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return (
            f"out of memory ({first_line(e)}); lower batch_size, img_h / img_w, or use "
            "data.cache none"
        )
    if isinstance(e, UnicodeError):
        return f"text that is not valid UTF-8: {first_line(e)}"
    module = type(e).__module__ or ""
    if module.startswith("lmdb"):
        return f"LMDB store: {first_line(e)} (a damaged or foreign .lmdb file?)"
    if module.startswith("onnxruntime"):
        return f"onnxruntime: {first_line(e)} (a damaged or foreign .onnx file?)"
    return None


def crash_dir() -> Path:
    """Where crash logs go: ``$REIDKIT_CRASH_DIR``, else ``~/.cache/reidkit/crashes``."""
    env = os.environ.get("REIDKIT_CRASH_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "reidkit" / "crashes"


def write_crash_log(e: BaseException, argv: list[str]) -> Path | None:
    """Write the traceback with the command and versions; the log's path (None if no folder
    anywhere is writable)."""
    text = (
        f"reidkit {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
        f"command: reidkit {' '.join(argv)}\n\n"
        + "".join(traceback.format_exception(type(e), e, e.__traceback__))
    )
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def run_guarded(fn: Callable[[], int], argv: list[str], debug: bool = False) -> int:
    """Run ``fn`` and turn what it raises into one line and an exit status (module doc)."""
    debug = debug or os.environ.get("REIDKIT_DEBUG", "") not in ("", "0")
    install_sigterm_handler()
    try:
        return int(fn() or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as e:  # SIGTERM: where it stopped, how to go on (utils.stopping)
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_TERMINATED
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - this is the boundary: nothing passes it
        if debug:
            traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
        if stop_requested():  # SIGTERM reached the workers too: their loss is not a bug
            why = f"{type(e).__name__}: {first_line(e)}"
            print(f"error: stopped by SIGTERM ({why})", file=sys.stderr)
            return EXIT_TERMINATED
        text = describe_expected(e)
        if text is not None:
            print(f"error: {text}", file=sys.stderr)
            return EXIT_EXPECTED
        if not debug:
            log = write_crash_log(e, argv)
            where = f"the traceback is in {log}" if log else "no crash log could be written"
            print(
                f"error: internal error ({type(e).__name__}: {first_line(e)}); {where} "
                "(run with --debug to show it; please report it)",
                file=sys.stderr,
            )
        return EXIT_BUG
