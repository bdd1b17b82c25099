"""A real browser for the console's end-to-end tests: Debian's `chromium`, driven by
selenium through Debian's `chromium-driver`, both named by path so that nothing is
ever downloaded. Screenshots go to test-artifacts/console/ (git-ignored)."""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from .harness import ROOT

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "console"
WIDTHS = {"desktop": 1280, "phone": 390}
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def start_chromium() -> webdriver.Chrome:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    assert not missing, (
        f"the console's browser tests need Chromium and its driver; missing {', '.join(missing)}: "
        "apt-get install chromium chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='tollgate-chromium-')}")
    options.add_argument(f"--window-size={WIDTHS['desktop']},900")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    return driver


def screenshots(driver: webdriver.Chrome, name: str) -> list[Path]:
    """The page as it stands, whole, at each width: `<name>-desktop.png` and `<name>-phone.png`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for label, width in WIDTHS.items():
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": label == "phone"},
        )
        height = driver.execute_script("return document.documentElement.scrollHeight")
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": _clip(width, height)},
        )
        path = ARTIFACTS / f"{name}-{label}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        saved.append(path)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return saved


def _clip(width: int, height: int) -> dict:
    return {"x": 0, "y": 0, "width": width, "height": min(max(height, 600), 4000), "scale": 1}
