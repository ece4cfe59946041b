"""A real browser for the pages the API serves: Debian's Chromium, headless, driven by
Selenium through Debian's ChromeDriver (scripts/setup.sh installs both)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Every host but the farm's loopback address is unknown to the browser: a page that needs a CDN
# (or anything else) fails its test, as it would on a private network.
BLOCK_OTHER_HOSTS = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
# A folder: the tests save a picture of each page there (the README's, in docs/screenshots).
SCREENSHOTS = os.environ.get("MODELFARM_SCREENSHOTS")


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", BLOCK_OTHER_HOSTS):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    """Saves the page as <name>.png in MODELFARM_SCREENSHOTS, when it is set."""
    if SCREENSHOTS:
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def loaded_from(driver: webdriver.Chrome) -> list[str]:
    """Every resource the page loaded (scripts, styles, images, API calls), by URL."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )


def errors_of(driver: webdriver.Chrome) -> list[str]:
    """What the page logged as errors (failed loads among them)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def click_through(driver: webdriver.Chrome, selector: str) -> None:
    """Clicks and waits for the page it leads to (click() returns before it loads)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    WebDriverWait(driver, 30).until(lambda _: _left(page))


def _left(element: WebElement) -> bool:
    """Whether the element's page was left: stale, or (ChromeDriver, mid-navigation) in no
    document at all."""
    try:
        element.is_enabled()
        return False
    except WebDriverException:
        return True


def sign_in(driver: webdriver.Chrome, base_url: str, email: str, password: str) -> None:
    """Signs the browser in through the sign-in form, as a fresh browser (no cookies), and
    reads out what earlier pages logged."""
    driver.delete_all_cookies()
    driver.get(f"{base_url}/signin")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(password)
    click_through(driver, "form.account button")
    assert driver.current_url == f"{base_url}/models", driver.current_url
    errors_of(driver)
