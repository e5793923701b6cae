"""`reidkit crops` with OpenCV's HOG detector on real footage: frames 1-40 of vtest.avi.

The video comes from Debian's opencv-doc (found or fetched by
``reidkit.utils.sample_data.sample_video``); frames >= 400 are never read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reidkit.data import load_dataset
from reidkit.data.crops import video_to_dataset
from reidkit.data.tracklets import read_mot
from reidkit.evaluation import evaluate_reid
from reidkit.utils.errors import DataError
from reidkit.utils.sample_data import sample_video

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def vtest() -> Path:
    try:
        return sample_video()
    except DataError as e:
        pytest.skip(f"OpenCV's sample video is not available here: {e}")


def _hist(path: Path) -> np.ndarray:
    """A hue-saturation histogram of the middle of a crop (a crude appearance feature)."""
    hsv = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2HSV)
    h, w = hsv.shape[:2]
    mid = hsv[h // 5 : 4 * h // 5, w // 4 : 3 * w // 4]
    hist = cv2.calcHist([mid], [0, 1], None, [12, 6], [0, 180, 0, 256]).ravel()
    return hist / max(hist.sum(), 1)


def test_hog_tracklets_on_real_frames(vtest: Path, tmp_path: Path) -> None:
    out = tmp_path / "real"
    s = video_to_dataset(vtest, out, labelled=True, frames="1:40", stride=2, min_track=5)
    assert s["source"] == "hog" and s["tracklets_found"] > s["tracklets_kept"] >= 4
    tracks = read_mot(out / "tracks.txt")  # what was written, as MOT lines
    assert len(tracks) == s["tracklets_kept"]  # several people walk through the first 4 s
    for t in tracks:
        assert len(t.boxes) >= 5 and all(b.h > b.w and 1 <= b.frame <= 40 for b in t.boxes)
        assert all(b.frame % 2 == 1 for b in t.boxes)  # stride 2 from frame 1
    ds = load_dataset(out)
    assert ds.train == [] and len(ds.query) >= 10
    # tracklets really follow one person: even colour histograms re-identify the later half
    feats = {r.path: _hist(out / r.path) for r in ds.query + ds.gallery}
    m = evaluate_reid(
        torch.tensor(np.stack([feats[r.path] for r in ds.query])),
        torch.tensor(np.stack([feats[r.path] for r in ds.gallery])),
        torch.tensor([r.pid for r in ds.query]),
        torch.tensor([r.pid for r in ds.gallery]),
        torch.tensor([r.camid for r in ds.query]),
        torch.tensor([r.camid for r in ds.gallery]),
    )
    assert m["num_valid_queries"] == len(ds.query) and m["rank1"] > 0.6
