"""A real browser for the pages the API serves: Debian's Chromium, headless, driven by
Selenium through Debian's ChromeDriver (scripts/setup.sh installs both)."""

from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def loaded_from(driver: webdriver.Chrome) -> list[str]:
    """Every resource the page loaded (scripts, styles, images, API calls), by URL."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )


def errors_of(driver: webdriver.Chrome) -> list[str]:
    """What the page logged as errors (failed loads among them)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
