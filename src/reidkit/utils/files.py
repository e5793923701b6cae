"""File helpers: atomic writes so a crash never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reidkit.utils.write_errors import write_guard

_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")  # .<name>.<pid>.<random>.tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give a new file (0o666 less the umask)."""
    return 0o666 & ~_umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete temporary files of ``atomic_path`` (and temporary folders named the same way, such
    as an export's work folder) left in ``folder`` by killed processes (their writer's pid is
    gone); returns how many were removed."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        m = _TEMP.match(path.name)
        if m and not _pid_alive(int(m.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    The temporary file is fsynced before the rename, and the folder after it, so after a
    crash ``path`` holds either the old complete file or the new complete file. The file gets
    the process umask's mode, like any file we write; the temporary name carries the writer's
    pid so ``remove_stale_temp_files`` can clean up after a kill. A write that fails (disk
    full, read-only, over quota or the file size limit: whatever library raised it) becomes
    one ``DiskError`` naming ``path`` (``utils.write_errors``); the temporary file is removed
    and ``path`` keeps its previous content.
    """
    path = Path(path)
    with write_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with write_guard(path):  # inside: the reason is probed while the temp file is there
            yield tmp_path
            with open(tmp_path, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp_path, file_mode())
            os.replace(tmp_path, path)
            sync_folder(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def temp_folder(path: str | Path) -> Path:
    """A new empty work folder beside ``path``, named like ``atomic_path``'s temporary files
    (``.<name>.<pid>.<random>.tmp``) so ``remove_stale_temp_files`` removes it after a kill;
    ``DiskError`` when the folder cannot be made."""
    path = Path(path)
    with write_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return Path(
            tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        )


@contextlib.contextmanager
def undo_new_folders(folder: str | Path) -> Iterator[None]:
    """On a failure inside the block, remove the folders up to ``folder`` that did not exist
    before it and are still empty (a refused export leaves no empty output folder)."""
    folder = Path(folder)
    new = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for p in new:  # deepest first; rmdir refuses folders that hold anything
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def sync_folder(folder: str | Path) -> None:
    """fsync a folder, so a rename inside it survives a crash."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
