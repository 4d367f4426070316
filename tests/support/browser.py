"""Headless Chromium (Debian `chromium` + `chromium-driver`) driven by Selenium 4."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

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


def login(driver: webdriver.Chrome, url: str, username: str, password: str) -> None:
    """Log in through Airflow's login form and wait until it has left the login page."""
    wait = WebDriverWait(driver, 60)
    driver.get(f"{url}/auth/login")
    wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "input[name=username]")),
        "the login form's username field",
    ).send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password + Keys.ENTER)
    wait.until(lambda d: "/auth/login" not in d.current_url, "leaving the login page after the login")


def open_cluster_page(driver: webdriver.Chrome) -> None:
    """From a logged-in Airflow page: the navigation's Cluster entry, then into the page's frame."""
    wait = WebDriverWait(driver, 60)
    wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href$='plugin/cluster']")),
        "the navigation's Cluster entry",
    ).click()
    driver.switch_to.frame(
        wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[title='Cluster']")),
            "the Cluster page's frame",
        )
    )


def why(exc: Exception) -> str:
    """An exception's message, without the chromedriver stack of addresses that says nothing."""
    return str(exc.msg) if isinstance(exc, WebDriverException) else str(exc)


def shown(driver: webdriver.Chrome, limit: int = 2000) -> str:
    """Where the browser is and the text it shows (of the current frame), for a failure's message."""
    try:
        text = driver.find_element(By.TAG_NAME, "body").text
        return f"at {driver.current_url}, showing:\n{text[:limit]}"
    except WebDriverException as exc:
        return f"(the page could not be read: {exc.msg})"


@contextlib.contextmanager
def failure_kept(driver: webdriver.Chrome, screenshot: Path, page_name: str) -> Iterator[None]:
    """Save `screenshot` when the block ends well. When it fails, save `<stem>-failure.png` and raise
    an AssertionError that says which step gave up (a wait's message names what it waited for)
    and what the page showed then, read in the frame the block was in. A wait that gave up reads
    "waiting for ..."; a plain assert inside the block reads "checking ...", with its message."""
    try:
        yield
        driver.switch_to.default_content()
        driver.save_screenshot(str(screenshot))
    except Exception as exc:
        page = shown(driver)
        driver.switch_to.default_content()
        driver.save_screenshot(str(screenshot.with_name(f"{screenshot.stem}-failure.png")))
        step = f"waiting for {why(exc)}" if isinstance(exc, WebDriverException) else f"checking {exc}"
        raise AssertionError(f"{page_name}, {step}\n{page}") from exc


def cluster_page_shows_decision(
    url: str, password: str, queue: str, action: str, reason: str, screenshot: Path
) -> None:
    """Log in, open the Cluster entry of the UI's navigation: the page shows `queue`'s card and a
    decision row of `action` whose reason contains `reason`. A screenshot is saved either way
    (`<screenshot>` on success, `<screenshot stem>-failure.png` otherwise)."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with (
        chromium(log=screenshot.with_suffix(".chromedriver.log")) as driver,
        failure_kept(driver, screenshot, "the Cluster page"),
    ):
        wait = WebDriverWait(driver, 60)
        driver.set_window_size(1440, 1300)
        login(driver, url, "admin", password)
        open_cluster_page(driver)
        card = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f"section[data-queue='{queue}']")),
            f"the card of queue {queue}",
        )
        assert f"Queue {queue}" in card.text, f"the card of queue {queue} names it: {card.text!r}"
        cells = f"tr.decision[data-queue='{queue}'][data-action='{action}'] td.reason"

        # Any row of that action will do: a later decision of the same action (a replacement after
        # a lost node) sits above the one asked for. The page reloads itself, hence stale cells.
        def matching(driver: webdriver.Chrome) -> bool:
            return any(reason in c.text for c in driver.find_elements(By.CSS_SELECTOR, cells))

        WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,)).until(
            matching, f"a {action} decision row of queue {queue} whose reason holds {reason!r}"
        )


def task_log_page_shows(url: str, password: str, path: str, line: str, screenshot: Path) -> None:
    """Log in, open a task instance's page at `path` (its Logs tab comes first) and wait until the
    log shows `line`. A screenshot is saved either way (`-failure` added on failure)."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with (
        chromium(log=screenshot.with_suffix(".chromedriver.log")) as driver,
        failure_kept(driver, screenshot, "the task's log page"),
    ):
        login(driver, url, "admin", password)
        driver.get(f"{url}{path}")
        WebDriverWait(driver, 90).until(
            lambda d: line in d.find_element(By.TAG_NAME, "body").text, f"the log line {line!r}"
        )
