"""A real headless browser for tests: Debian's chromium driven by selenium through /usr/bin/chromedriver.

Without chromium the browser tests skip with the reason, unless SKILLER_BROWSER_TESTS=required (CI),
where a missing browser is a failure."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = os.environ.get("SKILLER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SKILLER_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000"]
REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return None


def require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("SKILLER_BROWSER_TESTS") == "required":
        pytest.fail(f"browser tests are required here but {reason}")
    pytest.skip(f"no headless browser: {reason}")


@contextlib.contextmanager
def chromium() -> Iterator:
    """A fresh headless chromium (own profile dir) that records the console; quit and removed afterwards."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="skiller-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """Severe console entries since the last call (the log is drained on read)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def artifacts_dir(name: str) -> Path:
    """Where a test run keeps its screenshots: $SKILLER_TEST_ARTIFACTS or tests/.artifacts (git-ignored)."""
    root = Path(os.environ.get("SKILLER_TEST_ARTIFACTS", REPO / "tests" / ".artifacts"))
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver, path: Path) -> Path:
    """The whole page, not just the first screen (height capped so huge pages stay reasonable)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": max(600, min(height, 8000)), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path
