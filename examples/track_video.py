"""Appearance tracking over video streams with ``Embedder.embed_frames`` (a tracker's ReID step).

OpenCV's HOG person detector stands in for your detector. The video is cut into ``--streams``
segments played side by side, as if they were cameras: at each step every stream delivers one
frame, HOG finds people in each, and one ``embed_frames`` call embeds all boxes of all streams
together. Within a stream, detections join the most similar live track (greedy, cosine
similarity above the model's same-person threshold at ``--fpr``, from ``reidkit calibrate`` /
export); a new track is linked to a track of another stream when ``same_identity`` says so.

    pip install 'reidkit[openvino,video]'
    python examples/track_video.py runs/demo/demo_run/model_int8.xml \\
        --video /usr/share/doc/opencv-doc/examples/data/vtest.avi --frames 60 --streams 2

Only frames 1-399 of OpenCV's sample ``vtest.avi`` are read (``--frames`` per stream, at most
399 in all). ``--csv`` writes one row per box: stream, frame, track, identity, box, valid.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reidkit.deploy import Embedder  # noqa: E402
from reidkit.utils.errors import ReidkitError  # noqa: E402

MAX_FRAMES = 399  # frames 400 and later of vtest.avi are kept for independent checks


@dataclass
class Track:
    """A person followed within one stream; ``identity`` is shared across streams."""

    track_id: int
    identity: int
    stream: int
    feature: np.ndarray
    last_step: int
    hits: int = 1


def read_streams(video: Path, streams: int, frames: int) -> list[list[np.ndarray]]:
    """``streams`` consecutive segments of ``frames`` BGR frames each (frames 1..399 only)."""
    import cv2

    if streams * frames > MAX_FRAMES:
        raise SystemExit(f"--streams x --frames = {streams * frames}: at most {MAX_FRAMES}")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"{video}: cannot open the video")
    out: list[list[np.ndarray]] = [[] for _ in range(streams)]
    for i in range(streams * frames):
        ok, frame = cap.read()
        if not ok:
            break
        out[i // frames].append(frame)
    cap.release()
    return out


def hog_detector():  # noqa: ANN201
    """OpenCV's default people detector: ``detect(frame) -> (n, 4) xyxy boxes``."""
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(frame: np.ndarray) -> np.ndarray:
        rects, _ = hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)

    return detect


class Tracker:
    """Greedy appearance association per stream, and identities linked across streams."""

    def __init__(self, embedder: Embedder, threshold: float, fpr: float, max_age: int) -> None:
        self.embedder, self.threshold, self.fpr, self.max_age = embedder, threshold, fpr, max_age
        self.tracks: list[Track] = []
        self.next_track = self.next_identity = 0

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        if self.embedder.calibration is not None:
            return bool(self.embedder.same_identity(a, b, fpr=self.fpr))
        return float(a @ b) > self.threshold

    def update(self, step: int, stream: int, feats: np.ndarray, valid: np.ndarray) -> list[int]:
        """Track ids of the detections (-1 for invalid boxes)."""
        live = [t for t in self.tracks if t.stream == stream and step - t.last_step <= self.max_age]
        ids = [-1] * len(feats)
        if live and valid.any():
            sim = feats @ np.stack([t.feature for t in live]).T
            sim[~valid] = -2.0
            for flat in np.argsort(-sim, axis=None):
                d, k = np.unravel_index(flat, sim.shape)
                if sim[d, k] <= self.threshold:
                    break
                if ids[d] >= 0 or live[k].last_step == step:
                    continue
                track = live[k]
                track.feature = track.feature * 0.8 + feats[d] * 0.2
                track.feature /= np.linalg.norm(track.feature)
                track.last_step, track.hits, ids[d] = step, track.hits + 1, track.track_id
        for d in np.flatnonzero(valid):
            if ids[d] < 0:
                ids[d] = self._new_track(step, stream, feats[d])
        return ids

    def _new_track(self, step: int, stream: int, feat: np.ndarray) -> int:
        others = [t for t in self.tracks if t.stream != stream]
        match = next((t for t in others if self._same(feat, t.feature)), None)
        identity = match.identity if match else self.next_identity
        self.next_identity += match is None
        self.tracks.append(Track(self.next_track, identity, stream, feat.copy(), step))
        self.next_track += 1
        return self.next_track - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="exported .onnx / OpenVINO .xml, or a run folder")
    parser.add_argument(
        "--video", default="/usr/share/doc/opencv-doc/examples/data/vtest.avi", help="video file"
    )
    parser.add_argument("--streams", type=int, default=2, help="segments played as cameras")
    parser.add_argument("--frames", type=int, default=60, help="frames per stream")
    parser.add_argument("--fpr", type=float, default=1e-3, help="same-person false positive rate")
    parser.add_argument("--min-sim", type=float, default=0.6, help="threshold when uncalibrated")
    parser.add_argument("--max-age", type=int, default=10, help="steps a track survives unseen")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--csv", help="write one row per box here")
    args = parser.parse_args(argv)
    try:
        emb = Embedder.load(args.model, threads=args.threads)
        threshold = emb.threshold(args.fpr) if emb.calibration else args.min_sim
    except ReidkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    note = "calibrated" if emb.calibration else "not calibrated: --min-sim"
    print(f"{emb}; same-person threshold {threshold:.4f} at FPR {args.fpr:g} ({note})")
    streams = read_streams(Path(args.video), args.streams, args.frames)
    steps = min(len(s) for s in streams)
    detect, tracker, rows = hog_detector(), Tracker(emb, threshold, args.fpr, args.max_age), []
    boxes_seen = valid_seen = 0
    embed_seconds = 0.0
    for step in range(steps):
        frames = [s[step] for s in streams]
        boxes = [detect(f) for f in frames]
        start = time.perf_counter()
        out = emb.embed_frames(frames, boxes, max_batch=args.max_batch, bgr=True)
        embed_seconds += time.perf_counter() - start
        for s in range(len(frames)):
            ids = tracker.update(step, s, out.embeddings[s], out.valid[s])
            boxes_seen += len(ids)
            valid_seen += int(out.valid[s].sum())
            for box, tid, ok in zip(out.boxes[s], ids, out.valid[s], strict=True):
                ident = tracker.tracks[tid].identity if tid >= 0 else -1
                rows.append([s, step, tid, ident, *box.tolist(), int(ok)])
    identities = {t.identity for t in tracker.tracks}
    linked = sum(len({t.stream for t in tracker.tracks if t.identity == i}) > 1 for i in identities)
    print(
        f"{steps} steps x {len(streams)} streams: {boxes_seen} boxes ({valid_seen} valid), "
        f"{len(tracker.tracks)} tracks, {len(identities)} identities, {linked} seen in more "
        f"than one stream; embed_frames {1000 * embed_seconds / max(1, steps):.1f} ms per step"
    )
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["stream", "step", "track", "identity", "x1", "y1", "x2", "y2", "valid"]
            )
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
