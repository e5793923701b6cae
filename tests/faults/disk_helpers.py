"""Real disks that fail: small tmpfs mounts that fill up, and read-only ones.

Mounting needs root with CAP_SYS_ADMIN (the development machines and CI run as root); where
``mount`` is refused the tests that need it are skipped, saying why. As root, ``chmod`` does
not make a folder unwritable, so read-only means a read-only mount.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(folder: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``folder`` (made if missing); unmounted after."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small or read-only file system")
    r = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, ro: bool) -> None:
    """Make the tmpfs on ``folder`` read-only (``ro``) or writable again."""
    r = _mount("-o", f"remount,{'ro' if ro else 'rw'}", str(folder))
    assert r.returncode == 0, r.stderr


def folder_size(folder: Path) -> int:
    """Bytes of every file below ``folder`` (to size a tmpfs that holds a copy of it)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def leftovers(folder: Path) -> list[str]:
    """Temporary files / work folders a failed write must not leave behind."""
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".partial")) or ".tmp." in p.name
    ]
