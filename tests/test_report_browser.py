"""The report of m6_launch against the baseline, opened in a real browser (headless Chromium).

Needs Debian's ``chromium`` on the PATH and the Python ``playwright`` package (a dev dependency);
Playwright drives the system's Chromium (``executable_path``), not a browser it downloads. The test
is skipped, saying which is missing, when either is absent; CI installs both (``.ci/run``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report import vs_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (no 'chromium' on the PATH; Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the Python package 'playwright' is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return vs_report(tmp_path_factory)


def test_chromium_shows_every_figure_of_the_report_offline(browser, report: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.resolve().as_uri(), wait_until="load")
    images = page.evaluate(
        """() => Array.from(document.images).map(i => {
               const r = i.getBoundingClientRect();
               return {alt: i.alt, complete: i.complete, natural: i.naturalWidth, width: r.width, height: r.height};
           })"""
    )
    assert len(images) >= 4
    for img in images:
        assert img["complete"] and img["natural"] > 0, img["alt"]
        assert img["width"] > 0 and img["height"] > 0, img["alt"]
    assert not errors
    # nothing but the file itself and its embedded images is loaded
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if not u.startswith(("file:", "data:"))]
    title = page.title()
    assert "m6_launch vs baseline" in title
    page.close()


def test_the_report_prints_with_its_figures_and_without_the_navigation(browser, report: Path) -> None:
    page = browser.new_page()
    page.goto(report.resolve().as_uri(), wait_until="load")
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
    assert page.evaluate("Array.from(document.images).every(i => i.getBoundingClientRect().width > 0)")
    pdf = page.pdf(format="A4", landscape=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 100_000  # the figures are in it
    page.close()
