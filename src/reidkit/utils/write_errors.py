"""Write failures named: what the OS, torch, onnx, OpenVINO and LMDB raise when a file cannot
be written becomes one ``DiskError`` line naming the file and the reason.

The libraries do not agree on how to say "the disk is full": Python's own writes raise
``OSError(ENOSPC)``, torch's zip writer a ``RuntimeError`` ("unexpected pos ..." or
"PytorchStreamWriter failed writing file ..."), OpenVINO's serializer a ``RuntimeError``
("basic_ios::clear: iostream error"), LMDB an ``lmdb.Error`` ("Input/output error"). So the
reason is taken, in this order, from an ``OSError`` in the exception chain, from an OS error
text quoted in a message, and, for a library error without one, from the destination
itself: a read-only file system, a nearly full disk, or a file size limit of the process
(``ulimit -f``). An error that is none of these is not a write failure and is left alone.

``write_guard(path)`` wraps any block that writes ``path``; ``utils.files.atomic_path`` (the
temp-file-then-rename every writer of the package uses) applies it, so a failed write leaves
the previous file intact, removes the temporary file and says so in one line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from collections.abc import Iterator
from pathlib import Path

from reidkit.utils.errors import DiskError, ReidkitError, first_line

# errno -> (reason, what to do)
REASONS = {
    errno.ENOSPC: ("disk full", "free space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota or write elsewhere"),
    errno.EROFS: ("read-only file system", "choose a writable folder"),
    errno.EFBIG: (
        "file too large (over the file system's or this process's file size limit, ulimit -f)",
        "raise the limit or write elsewhere",
    ),
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write to"),
    errno.EIO: ("input/output error (a failing disk or a lost network mount?)", "check the disk"),
    errno.EISDIR: ("it is a folder", "name a file"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.EEXIST: ("a file stands where a folder is needed", "choose another path"),
}
LOW_SPACE = 1 << 20  # under 1 MiB free after a failed write: the disk is full
# Phrases of library write failures that carry no OS error (torch, OpenVINO, LMDB).
WRITER_TEXT = (
    "PytorchStreamWriter",
    "inline_container",
    "file write failed",
    "iostream error",
    "Can't open bin file",
    "mdb_txn_commit",
    "mdb_env_sync",
    "MDB_MAP_FULL",
)
_LIBRARIES = ("lmdb", "onnx", "openvino", "google.protobuf", "torch")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen and len(seen) < 16:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _errno_of(error: BaseException) -> int | None:
    """The write errno of an ``OSError`` in the chain, or quoted in a message (torch quotes
    strerror: "open file failed with strerror: Read-only file system")."""
    chain = list(_chain(error))
    for e in chain:
        if isinstance(e, OSError) and e.errno in REASONS:
            return e.errno
    text = " ".join(str(e) for e in chain)
    for code in REASONS:
        if os.strerror(code) in text:
            return code
    return None


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def probe_folder(folder: str | Path) -> int | None:
    """Why writes into ``folder`` may fail, from the folder itself: EROFS (mounted read-only),
    ENOSPC (under ``LOW_SPACE`` free), EFBIG (the process has a file size limit), else None."""
    try:
        st = os.statvfs(_existing(Path(folder)))
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
    if free < LOW_SPACE or (st.f_files and st.f_ffree == 0):
        return errno.ENOSPC
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        return errno.EFBIG
    return None


def _is_library_error(error: BaseException) -> bool:
    module = type(error).__module__ or ""
    return isinstance(error, RuntimeError) or module.split(".")[0] in _LIBRARIES


def disk_error(
    path: str | Path,
    error: BaseException,
    folder: str | Path | None = None,
    kept: str | None = None,
) -> DiskError | None:
    """The ``DiskError`` of a failed write of ``path`` (into ``folder``, default its parent),
    or None when ``error`` is not a write failure (a bug, a bad value: left to its caller).
    ``kept`` replaces the closing "(the previous X is unchanged)" / "(nothing was written)"."""
    if isinstance(error, ReidkitError) or not isinstance(error, Exception):
        return None
    path = Path(path)
    why = _reason(error, folder if folder is not None else path.parent)
    if why is None:
        return None
    if kept is None:
        kept = f"the previous {path.name} is unchanged" if path.exists() else "nothing was written"
    return DiskError(path, why, kept)


def _reason(error: Exception, folder: str | Path) -> str | None:
    """``reason; what to do`` of a write failure, or None when it is not one."""
    code = _errno_of(error)
    if code is None and type(error).__name__ == "MapFullError":
        return "the LMDB map is full (MDB_MAP_FULL); please report it (reidkit sizes the map)"
    os_error = next((e for e in _chain(error) if isinstance(e, OSError)), None)
    if code in (None, errno.EIO) and (os_error is not None or _is_library_error(error)):
        # LMDB says "Input/output error" for a short write: the folder may know better
        code = probe_folder(folder) or code
    if code is not None:
        reason, hint = REASONS[code]
        return f"{reason}; {hint}"
    if os_error is not None:  # not a disk condition (its file name may be a temporary one)
        return (os_error.strerror or first_line(os_error)).lower()
    text = " ".join(str(e) for e in _chain(error))
    if any(t in text for t in WRITER_TEXT):
        return f"write failed ({first_line(error)}); check the disk"
    return None


@contextlib.contextmanager
def write_guard(
    path: str | Path, folder: str | Path | None = None, kept: str | None = None
) -> Iterator[None]:
    """Raise ``DiskError`` naming ``path`` when the block fails to write (``disk_error``);
    any other failure passes through unchanged."""
    try:
        yield
    except DiskError as e:
        if folder is None or not Path(str(e.path)).is_relative_to(folder):
            raise
        path = Path(path)  # a file of the work folder: name the file the user asked for
        if kept is None:
            kept = f"the previous {path.name} is unchanged" if path.exists() else e.kept
        raise DiskError(path, e.reason, kept) from e
    except Exception as e:
        mapped = disk_error(path, e, folder, kept)
        if mapped is None:
            raise
        raise mapped from e
