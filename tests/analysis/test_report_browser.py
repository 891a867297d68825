"""The run report in a real browser: headless Chromium loads it without console errors, every
image decodes, and a screenshot is kept for people to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rnnkit.analysis.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _playwright():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright==1.49.1)")
    return sync_playwright


def render(page_path: Path, screenshot: Path) -> dict:
    """Open ``page_path`` in Chromium; console errors, page errors and image decode results."""
    sync_playwright = _playwright()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            images = page.evaluate("""() => Array.from(document.images).map(
                image => ({complete: image.complete, width: image.naturalWidth}))""")
            title = page.title()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "images": images, "title": title, "requests": requests}


@pytest.mark.parametrize("run_name", ["lm_run", pytest.param("classifier_run",
                                                             marks=pytest.mark.slow)])
def test_report_renders_in_chromium(run_name, request, tmp_path):
    run_dir = request.getfixturevalue(run_name)
    page = build_report(run_dir)
    screenshot = run_dir / "report_screenshot.png"
    result = render(page, screenshot)
    assert result["errors"] == []
    assert len(result["images"]) >= 4
    assert all(image["complete"] and image["width"] > 0 for image in result["images"])
    assert result["title"].startswith("rnnkit run report")
    # Only the page itself and its inline data: URIs are fetched; nothing from the network.
    assert all(url.startswith(("file:", "data:")) for url in result["requests"])
    assert screenshot.stat().st_size > 10_000
