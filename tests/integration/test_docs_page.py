"""The OpenAPI page works offline (issue 28): in a real browser, /docs shows every operation,
and every script, style and image it loads comes from the farm itself, none from a CDN."""

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.browser import errors_of, loaded_from, screenshot
from tests.utils import API_URL


def test_the_api_page_renders_with_every_asset_from_the_farm(browser):
    browser.get(f"{API_URL}/docs")
    WebDriverWait(browser, 30).until(
        lambda page: len(page.find_elements(By.CSS_SELECTOR, ".opblock")) > 20
    )
    paths = {each.text for each in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/jobs", "/api/jobs/{job_id}/events", "/health"} <= paths
    screenshot(browser, "docs")
    loaded = loaded_from(browser)
    assert any(url.endswith("/swagger-ui-bundle.js") for url in loaded)
    assert [url for url in loaded if not url.startswith(API_URL)] == []
    assert errors_of(browser) == []


def test_the_api_page_has_no_cdn_fallback_and_redoc_is_off(anonymous):
    page = anonymous.get("/docs").text
    assert "cdn." not in page and "https://" not in page
    assert anonymous.get("/redoc").status_code == 404
