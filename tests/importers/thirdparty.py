"""torchreid and fast-reid, installed outside reidkit's environment for the equivalence tests.

``ensure_thirdparty()`` pip-installs the pinned packages below with ``--no-deps --target`` into
``<repo>/.thirdparty/site`` (git-ignored) once, under a file lock so parallel test workers share
one install. Their model code needs only torch / torchvision / numpy / PIL / cv2 (already in
reidkit's environment) plus yacs and termcolor (fast-reid's config and logging), which are
pinned here too. Nothing of it is ever imported into the reidkit process: the tests run the
frameworks in a subprocess with ``THIRDPARTY_SITE`` as its only extra path (see
``source_harness.py``). Run this file directly to install ahead of time.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = ("torchreid==0.2.5", "fastreid==1.4.0", "yacs==0.1.8", "termcolor==3.3.0")
ROOT = Path(__file__).resolve().parents[2] / ".thirdparty"
THIRDPARTY_SITE = ROOT / "site"


def _stamp() -> str:
    return hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:16]


def ensure_thirdparty() -> tuple[Path | None, str]:
    """``(site folder, "")`` once the packages are installed, ``(None, reason)`` if pip fails."""
    ROOT.mkdir(parents=True, exist_ok=True)
    stamp = THIRDPARTY_SITE / f".installed-{_stamp()}"
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return THIRDPARTY_SITE, ""
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        cmd += ["--no-deps", "--upgrade", "--target", str(THIRDPARTY_SITE), *REQUIREMENTS]
        env = {k: v for k, v in os.environ.items() if k != "PIP_REQUIRE_VIRTUALENV"}
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"pip install {' '.join(REQUIREMENTS)} failed: {tail[0]}"
        stamp.write_text("\n".join(REQUIREMENTS) + "\n")
        return THIRDPARTY_SITE, ""


if __name__ == "__main__":
    site, why = ensure_thirdparty()
    print(site if site else why)
    sys.exit(0 if site else 1)
