"""Real pedestrian crops for the inference benchmarks: OpenCV's HOG person detector on frames
1-399 of OpenCV's sample video ``vtest.avi`` (Debian's ``opencv-doc``; frames >= 400 are kept
for independent checks and never read here).

    python benchmarks/hog_crops.py --out .bench/crops --max 777

The crops are written as JPEG files named ``f<frame>_<n>.jpg`` at their detected size; a rerun
with the same arguments reuses the folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

VIDEO = "usr/share/doc/opencv-doc/examples/data/vtest.avi"
LOCAL = Path("/work/cache/opencv-doc") / VIDEO
LAST_FRAME = 399  # frames >= 400 are reserved


def find_video(cache: Path) -> Path:
    """The video: the machine's copy, else ``apt-get download opencv-doc`` unpacked in ``cache``."""
    if LOCAL.is_file():
        return LOCAL
    target = cache / VIDEO
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("opencv-doc_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(cache)], check=True)
    return target


def make_crops(out: Path, max_crops: int = 777, step: int = 1, min_height: int = 64) -> int:
    """Detect people on frames 1..399 (every ``step``-th) and write up to ``max_crops`` crops."""
    import cv2

    args = {"max": max_crops, "step": step, "min_height": min_height}
    marker = out / "crops.json"
    if marker.is_file() and json.loads(marker.read_text()).get("args") == args:
        return json.loads(marker.read_text())["count"]
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    cap = cv2.VideoCapture(str(find_video(out.parent / "opencv-doc")))
    count, frame_no = 0, 0
    while count < max_crops:
        ok, frame = cap.read()
        frame_no += 1
        if not ok or frame_no > LAST_FRAME:
            break
        if (frame_no - 1) % step:
            continue
        boxes, _ = hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
        for n, (x, y, w, h) in enumerate(boxes):
            if h < min_height or count >= max_crops:
                continue
            crop = frame[max(0, y) : y + h, max(0, x) : x + w]
            cv2.imwrite(str(out / f"f{frame_no:03d}_{n}.jpg"), crop)
            count += 1
    cap.release()
    marker.write_text(json.dumps({"args": args, "count": count}))
    return count


def main() -> None:
    """Write the crops and print how many."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(".bench/crops"))
    p.add_argument("--max", type=int, default=777)
    p.add_argument("--step", type=int, default=1)
    args = p.parse_args()
    print(f"{make_crops(args.out, args.max, args.step)} crops in {args.out}")


if __name__ == "__main__":
    main()
