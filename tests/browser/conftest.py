"""The browser tests' fixtures: ``syncd web`` as a real subprocess over the synced demo, and
Debian's Chromium driven headless by Playwright.

Playwright's own browser download is never used (it cannot be fetched here): the tests
launch ``/usr/bin/chromium`` from the Debian package. Without it, or without Playwright,
the tests are skipped, and under ``SYNCD_REQUIRE_DB=1`` (``.ci/run``) they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.conftest import unavailable
from tests.web_env import Site, build_synced_demo

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SYNCD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium with Playwright")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)


@dataclass
class ConsoleProcess(Site):
    """``syncd web`` in a subprocess; ``log`` holds everything it wrote."""

    log: Path = Path()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """``syncd --config DEMO web --listen 127.0.0.1:PORT``, ended after the module."""
    from syncd.config import load_config

    directory = tmp_path_factory.mktemp("browser") / "demo"
    config_path = build_synced_demo(directory)
    config = load_config(config_path)
    url = f"http://{config.web.listen}"
    log = directory / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed argv
            [sys.executable, "-m", "syncd", "--config", str(config_path), "web"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        _wait_until_up(url, process, log)
        yield ConsoleProcess(url, config, directory, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"syncd web exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url + "/login", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"syncd web did not answer within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright (a failure under SYNCD_REQUIRE_DB=1)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        unavailable("Playwright for Python (pip install playwright)", error)
    if shutil.which(CHROMIUM) is None:
        unavailable(
            f"Chromium at {CHROMIUM} (apt-get install chromium)", FileNotFoundError(CHROMIUM)
        )
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as error:  # the browser is there but does not start
            unavailable(f"Chromium at {CHROMIUM}", error)
        try:
            yield launched
        finally:
            launched.close()


def screenshot_dir(tmp: Path) -> Path:
    """Where screenshots go: ``SYNCD_SCREENSHOTS`` (e.g. docs/img, to refresh the docs'),
    else the test's temporary directory (they are taken anyway: a page that cannot render
    fails)."""
    chosen = os.environ.get("SYNCD_SCREENSHOTS")
    return Path(chosen) if chosen else tmp


def any_text(*pages: Any) -> str:
    return "\n".join(page.content() for page in pages)
