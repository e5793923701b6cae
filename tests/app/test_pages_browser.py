"""Both HTML pages in a real browser: headless Debian Chromium driven by selenium through
the system chromedriver (nothing is downloaded). Each page is opened from file://, and the
test checks: no console errors, every <img> decoded (naturalWidth > 0), the figures shown
equal eval.json / report.json / check.json, and a file name holding HTML markup is shown as
text. A screenshot of each page is kept under the test's tmp folder.

Without chromium the tests skip locally, and fail under CI (CI=1 in the environment).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reidkit.cli import main
from reidkit.data.synthetic import generate_synthetic

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1600",
]
MARKUP = "<b class=injected>&amp;'x'"  # put into a file name; must show as these characters


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser test under CI: {reason} (.ci/run installs chromium)")
    pytest.skip(f"{reason}; apt-get install chromium chromium-driver to run it")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium with a fresh profile; browser console messages are collected."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (the dev extra)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            _unavailable(f"{path} not found")
    profile = tempfile.mkdtemp(prefix="reidkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver: Any, page: Path, screenshot: Path) -> dict[str, str]:
    """Load ``page``, check console and images, save a screenshot; the data-key figures."""
    driver.get(page.resolve().as_uri())
    errors = [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
    )
    assert images and all(done and width > 0 for done, width in images), images
    assert driver.execute_script("return document.querySelectorAll('.injected').length") == 0
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1200, min(height + 40, 6000))
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 1000
    print(f"screenshot: {screenshot}")
    return driver.execute_script(
        "const o = {}; document.querySelectorAll('[data-key]').forEach("
        "e => { o[e.dataset.key] = e.textContent; }); return o;"
    )


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _equal(shown: str, value: Any) -> bool:
    if isinstance(value, float) and (not value.is_integer() or "." in shown):
        return abs(float(shown) - value) <= 5e-5  # shown with 4 decimals
    return shown == str(int(value) if isinstance(value, float) else value)


def test_run_report_in_chromium(browser: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_synthetic(data, num_ids=4, num_test_ids=3, num_cameras=3, img_h=64, img_w=32)
    query = sorted((data / "query").glob("*.jpg"))[0]
    marked = query.with_name(query.name[:-4] + MARKUP + ".jpg")
    query.rename(marked)
    params = {
        "batches_dir": str(data),
        "working_dir": str(tmp_path / "runs"),
        "img_h": 64,
        "img_w": 32,
        "batch_size": 8,
        "epoch": 2,
        "optimizer": "adam",
        "lr": {"base_lr": 0.001, "decay_step": [1], "decay_unit": "epoch"},
        "model_params": {"backbone": "resnet18"},
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate", "metric": "mAP"},
        "data": {"num_workers": 0},
        "progress": False,
        "device": "cpu",
    }
    (tmp_path / "params.json").write_text(json.dumps(params))
    assert main(["train", "-c", str(tmp_path / "params.json"), "--sub-working-dir", "r"]) == 0
    run = tmp_path / "runs" / "r"
    assert (run / "report" / "report.html").is_file()  # written by the trainer
    assert main(["report", str(run), "--queries", "100", "--topk", "5"]) == 0  # every query
    shown = _open(browser, run / "report" / "report.html", tmp_path / "report.png")
    evaluation = json.loads((run / "eval.json").read_text())
    figures = json.loads((run / "report" / "report.json").read_text())
    metrics = {k: v for k, v in shown.items() if k.startswith("metrics.")}
    assert set(metrics) == {f"metrics.{k}" for k in evaluation["metrics"]}
    for key, text in metrics.items():
        assert _equal(text, _lookup(evaluation, key)), key
    best = [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").open()) if r["best"]]
    assert shown["best_epoch"] == str(best[-1])
    others = {k: v for k, v in shown.items() if k not in metrics and k != "best_epoch"}
    assert any(k.startswith("per_camera.") for k in others)
    assert len(figures["worst"]) == evaluation["metrics"]["num_valid_queries"]
    for key, text in others.items():
        assert _equal(text, _lookup(figures, key)), key
    names = [v for k, v in shown.items() if k.endswith(".name")]
    assert marked.relative_to(data).as_posix() in names  # the markup is plain text


def test_data_check_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    root = tmp_path / "planted"
    plan = generate_synthetic(
        root, num_ids=6, num_test_ids=6, num_cameras=3, img_h=64, img_w=32, plant=True
    )["planted"]
    single = root / plan["single_image_id"][0]
    marked = single.with_name(single.name[:-4] + MARKUP + ".jpg")
    single.rename(marked)
    out = tmp_path / "check"
    args = ["data", "check", str(root), "-o", str(out), "-q", "--feature-size", "128x64"]
    assert main(args) == 1
    shown = _open(browser, out / "check.html", tmp_path / "check.png")
    result = json.loads((out / "check.json").read_text())
    assert {k for k in shown if k.startswith("summary.")} == {
        f"summary.{k}" for k in result["summary"]
    }
    assert sum(k.startswith("splits.") for k in shown) >= 3 * 9
    for key, text in shown.items():
        assert _equal(text, _lookup(result, key)), key
    verdict = browser.find_element("id", "verdict")
    assert verdict.get_attribute("data-leakage") == "true" and "LEAKAGE" in verdict.text
    captions = [e.text for e in browser.find_elements("css selector", "figcaption")]
    assert any(marked.relative_to(root).as_posix() in c.replace("\n", "") for c in captions)
