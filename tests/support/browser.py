"""Headless Chromium (Debian `chromium` + `chromium-driver`) driven by Selenium 4."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium tries to reach Google's hosts at every start.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1440,1000",
    "--ignore-certificate-errors",
)


@contextlib.contextmanager
def chromium(log: Path | None = None) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its own empty profile; quit afterwards."""
    with tempfile.TemporaryDirectory(prefix="airtasks-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        service = Service(CHROMEDRIVER, log_output=str(log) if log else None)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            yield driver
        finally:
            driver.quit()
