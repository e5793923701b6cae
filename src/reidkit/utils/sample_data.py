"""Finding OpenCV's sample video ``vtest.avi`` (real pedestrians) for tests and benchmarks.

The file ships in Debian's ``opencv-doc`` package (``examples/data/``). ``sample_video()``
looks in ``$REIDKIT_VTEST`` (a file), the installed package, and a cache folder; if it is in
none of them it runs ``apt-get download opencv-doc`` in the cache folder and unpacks just that
one file with ``dpkg-deb`` + ``tar`` (nothing is installed), then removes the ``.deb``.

Only frames 1-399 of it are for development and tests; later frames are kept for
independent checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from reidkit.utils.errors import DataError

MEMBER = "usr/share/doc/opencv-doc/examples/data/vtest.avi"
DEFAULT_CACHE = Path.home() / ".cache" / "reidkit" / "opencv-doc"


def _candidates(cache: Path) -> list[Path]:
    env = os.environ.get("REIDKIT_VTEST")
    return [Path(p) for p in (env, "/" + MEMBER, cache / MEMBER) if p]


def _download(cache: Path) -> None:
    """``apt-get download opencv-doc`` into ``cache`` and unpack ``vtest.avi`` only."""
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["apt-get", "download", "opencv-doc"], cwd=cache, check=True, capture_output=True
    )
    debs = sorted(cache.glob("opencv-doc_*.deb"))
    if not debs:
        raise DataError(f"{cache}: apt-get download left no opencv-doc_*.deb")
    try:
        deb = ["dpkg-deb", "--fsys-tarfile", str(debs[-1])]
        tar = subprocess.Popen(deb, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(cache), f"./{MEMBER}"], stdin=tar.stdout, check=True)
        tar.wait()
    finally:
        for deb in debs:
            deb.unlink(missing_ok=True)


def sample_video(cache: str | Path | None = None, download: bool = True) -> Path:
    """The path of ``vtest.avi`` (see the module docstring); ``DataError`` if unavailable."""
    cache = Path(cache) if cache else DEFAULT_CACHE
    for path in _candidates(cache):
        if path.is_file():
            return path
    if download and shutil.which("apt-get") and shutil.which("dpkg-deb"):
        try:
            _download(cache)
        except (OSError, subprocess.CalledProcessError) as e:
            raise DataError(f"cannot fetch opencv-doc for vtest.avi ({e})") from None
        if (cache / MEMBER).is_file():
            return cache / MEMBER
    raise DataError(
        "vtest.avi not found: install Debian's opencv-doc, set REIDKIT_VTEST, or allow "
        f"`apt-get download opencv-doc` into {cache}"
    )
