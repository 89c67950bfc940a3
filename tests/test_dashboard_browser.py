"""``sim dashboard`` in a real browser: Debian's Chromium driven by Playwright.

The server runs as the user starts it (``python -m sim dashboard``, warnings as errors) on a free
loopback port, in its own process group, killed at the end whatever happens. The browser may
reach only that server: any other request (a CDN, fonts, telemetry) is blocked and fails the
test, so the page is shown to render offline. The test opens the page, waits for the first run
(the scenario as written against the baseline), raises the M6 price, runs again, and checks that
the probability, the paired difference and the fan chart are redrawn for the new run, then steps
the single-run view twice. Started with ``--forecast DIR`` (a small real ``sim forecast``,
tests/forecast_folders.py), the dashboard has a Forecast page that shows what it assimilated.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXTRA = ("solara", "solara_assets", "uvicorn", "playwright")
MISSING = [m for m in EXTRA if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the dashboard extra is not installed (missing {MISSING}): pip install -e '.[dev,dashboard]'",
    ),
]

PROBABILITY = re.compile(r"^m6_launch: (\d\.\d\d) \[(\d\.\d\d)-(\d\.\d\d)\]$")
SIGNED = re.compile(r"deliveries ([+-][\d,]+) \[95% CI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def dashboard(tmp_path: Path, *args: str) -> Iterator[str]:
    """``sim dashboard ARGS`` on a free port; yields its URL once it answers; always killed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SIM_DEBUG"}
    env["PYTHONWARNINGS"] = "error"
    log = tmp_path / "server.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sim", "dashboard", *args, "--port", str(port)], cwd=ROOT, env=env,
                                stdout=err, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server, its worker processes and their forkserver
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    text = log.read_text()
    assert "Traceback" not in text and "Error" not in text, text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``sim dashboard scenarios/m6_launch.yaml`` at a coarse scale; yields its URL; always killed."""
    with dashboard(tmp_path, "scenarios/m6_launch.yaml", "--replications", "2", "--scale", "2000", "--workers", "2") as url:
        yield url


@contextlib.contextmanager
def offline_page(server: str) -> Iterator[Any]:
    """A Chromium page that may reach only ``server``; on leaving, no other request was made and none failed."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})

            def only_the_server(route) -> None:
                url = route.request.url
                if url.startswith(server) or url.startswith(server.replace("http", "ws", 1)) or url.startswith("data:"):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", only_the_server)
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            yield page
        finally:
            browser.close()
    assert outside == [], f"the page asked for something other than its server: {outside}"
    assert failed == [], f"requests that failed: {failed}"


@pytest.mark.slow
def test_page_runs_a_scenario_and_updates_when_the_m6_price_moves(server: str) -> None:
    with offline_page(server) as page:
        page.goto(server)

        # the first run: the scenario as written against the baseline
        page.wait_for_selector(".sim-probability", timeout=60_000)
        first_probability = page.inner_text(".sim-probability").strip()
        first_diff = page.inner_text(".sim-delivered-diff")
        first_fan = page.locator(".sim-fan img").get_attribute("src")
        assert PROBABILITY.match(first_probability), first_probability
        assert "Run 1: m6_launch against baseline, 2 replicates each at scale 2000" in page.inner_text("body")

        # raise the M6 price far enough that its order book no longer fills (at RMB 500k the M6 is
        # still capacity-bound in the baseline, and its effect is below the noise of 2 replicates)
        price = page.get_by_label("M6 list price (RMB)")
        price.fill("900000")
        price.press("Enter")
        page.get_by_text("scenario file: 250,000").wait_for(timeout=10_000)
        page.locator("button.sim-run").click()
        page.wait_for_function(
            "document.querySelector('.sim-run-number') && document.querySelector('.sim-run-number').textContent === 'run 2'",
            timeout=60_000,
        )
        second_probability = page.inner_text(".sim-probability").strip()
        second_diff = page.inner_text(".sim-delivered-diff")
        second_fan = page.locator(".sim-fan img").get_attribute("src")
        body = page.inner_text("body")
        assert PROBABILITY.match(second_probability), second_probability
        assert "Run 2: m6_launch against baseline" in body and "1 of 2 batches from the cache" in body
        # a dearer M6 sells fewer cars: the paired gain over the baseline (same seeds) shrinks
        gain = [int(SIGNED.search(d).group(1).replace(",", "")) for d in (first_diff, second_diff)]
        assert gain[1] < gain[0], (first_diff, second_diff)
        fan = page.locator(".sim-fan img")
        assert second_fan != first_fan and fan.evaluate(
            "i => i.complete && i.naturalWidth > 600"
        )  # a new, drawn figure
        page.get_by_text("Reproduce on the command line").click()
        page.get_by_text("--set 'products.AITO M6.price=900000'").wait_for(timeout=10_000)

        # the single-run view: Mesa's controls step the model month by month
        page.get_by_role("tab", name="Single run").click()
        step = page.get_by_role("button", name="Step")
        step.click()
        page.wait_for_function(
            "document.querySelector('.sim-single-month')?.textContent === 'month 2021-12'", timeout=30_000
        )
        step.click()
        page.wait_for_function(
            "document.querySelector('.sim-single-month')?.textContent === 'month 2022-01'", timeout=30_000
        )
        assert "AITO M5" in page.inner_text("body")


@pytest.mark.slow
def test_forecast_page_shows_what_the_forecast_assimilated(tmp_path: Path) -> None:
    from forecast_folders import ORIGIN, PARTICLES, forecast_folder

    from sim.analysis.compare import target_table
    from sim.present.forecast_folder import assimilation_of
    from sim.runs.store import load_results

    folder = forecast_folder(tmp_path / "folders")
    res = load_results(folder)
    a = assimilation_of(res.manifest)
    assert a is not None
    first = target_table(res)[0]
    expected = f"drifting: {first['probability']:.2f} [{first['probability_low']:.2f}-{first['probability_high']:.2f}]"
    with dashboard(tmp_path, "scenarios/m6_launch.yaml", "--forecast", str(folder), "--workers", "1") as url, \
            offline_page(url) as page:  # fmt: skip
        page.goto(url + "forecast")
        page.wait_for_selector(".sim-forecast-probability", timeout=60_000)
        assert page.locator(".sim-forecast-probability").first.inner_text().strip() == expected
        assert page.inner_text(".sim-forecast-ess").strip() == (
            f"final effective sample size {a.final_ess:.1f} of {PARTICLES} particles")  # fmt: skip
        for figure in ("fan", "ess-figure", "moved"):
            img = page.locator(f".sim-forecast-{figure} img")
            assert img.evaluate("i => i.complete && i.naturalWidth > 600"), figure  # drawn
        body = page.inner_text("body")
        assert f"origin {ORIGIN}: {len(a.figures)} figure(s)" in body
        assert f"before the figures of {ORIGIN}:" in body
        assert "A cumulative delivered to 2024-08-20" in body  # the table of the figures
        assert [t.strip().lower() for t in page.get_by_role("tab").all_inner_texts()] == ["scenarios", "single run", "forecast"]
