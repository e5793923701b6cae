"""Image sources: a folder on disk (``FolderSource``); the LMDB store lives in ``store.py``."""

from __future__ import annotations

from pathlib import Path

from reidkit.utils.errors import DataError


class FolderSource:
    """Reads encoded images from files below ``root`` (keys are paths relative to it)."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
        self._base = Path(root)
        self.decoded_cache: dict = {}  # test loaders keep decoded query/gallery images here

    def read(self, path: str) -> bytes:
        """The bytes of ``root/path``; ``DataError`` naming the file when it cannot be read."""
        full = self._base / path
        try:
            return full.read_bytes()
        except OSError as e:
            raise DataError(f"{full}: cannot read image ({e.strerror or e})") from None

    def __getstate__(self) -> dict:
        return {"root": self.root, "_base": self._base, "decoded_cache": {}}

    def __repr__(self) -> str:
        return f"FolderSource({self.root!r})"
