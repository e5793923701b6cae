"""SIGTERM ends a command cleanly: at a safe point of a training loop, else at once.

A cluster scheduler, ``docker stop`` or ``kill`` sends SIGTERM and waits a little before
SIGKILL. ``install_sigterm_handler`` (called by the command line's boundary) makes SIGTERM
raise ``Terminated``, which the boundary prints as one line (exit 143 = 128 + SIGTERM),
instead of the silent death of Python's default. Inside ``deferred_stop()`` (the trainer's
batch loop and checkpoint writes) the first SIGTERM only sets a flag: the loop polls
``stop_requested()`` after each step, writes ``last.pth`` there and raises ``Terminated``
itself, so ``--resume`` continues from that step. A second SIGTERM raises at once. Raising
anywhere else is safe too: every file is written atomically, so a stop mid-write leaves the
previous complete file.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):  # noqa: N818 - named for what happened, like KeyboardInterrupt
    """The process received SIGTERM; the message says where it stopped (one line)."""


_state = {"deferred": 0, "requested": False}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    if _state["deferred"] and not _state["requested"]:
        _state["requested"] = True  # the loop stops at its next safe point
        return
    raise Terminated("stopped by SIGTERM")


def install_sigterm_handler() -> None:
    """Make SIGTERM raise ``Terminated`` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def stop_requested() -> bool:
    """Whether a SIGTERM arrived inside ``deferred_stop`` and waits for a safe point."""
    return bool(_state["requested"])


@contextlib.contextmanager
def deferred_stop() -> Iterator[None]:
    """Inside, the first SIGTERM sets ``stop_requested()`` instead of raising."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1


def clear_stop_request() -> None:
    """Forget a pending request (after the loop acted on it)."""
    _state["requested"] = False
