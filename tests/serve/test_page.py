"""The drawing page in a real browser (Debian's chromium through Selenium): draw, watch, pick a sample.

Skipped when chromium, chromedriver or selenium is missing, unless SOFTREG_REQUIRE_BROWSER=1
(CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import call_main

pytestmark = pytest.mark.slow  # process-level runs: `make test-fast` leaves them out

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 20  # seconds for anything the page does


def _missing() -> str | None:
    for module in ("selenium", "fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[test,serve]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("SOFTREG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SOFTREG_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(driver, server URL) of the page serving a softmax run on the bundled digits."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from softreg.inference.predictor import Predictor
    from softreg.serve.app import create_app
    from softreg.serve.server import BackgroundServer

    base = tmp_path_factory.mktemp("page")
    run = base / "digits-softmax"
    assert call_main(["train", "--data", "digits", "--device", "cpu", "--out", run]) == 0
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1100,1200",
                 f"--user-data-dir={base / 'profile'}"):
        options.add_argument(flag)
    with BackgroundServer(create_app([Predictor.from_run(run)])) as server:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.set_page_load_timeout(WAIT)
            driver.get(server.url + "/")
            yield driver, server.url
        finally:
            driver.quit()


def _wait(driver, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(lambda d: condition(d), message)


def _updates(driver) -> int:
    return int(driver.find_element("id", "bars").get_attribute("data-updates") or 0)


def test_page_loads_models_bars_and_weight_templates(page):
    import httpx

    driver, url = page
    assert driver.current_url.rstrip("/") == url  # the page, at /
    assert httpx.get(url + "/", timeout=10).json() == {"status": "alive"}  # and KServe's liveness there
    _wait(driver, lambda d: len(d.find_elements("css selector", "#bars li")) == 10, "no bar per class")
    _wait(driver, lambda d: len(d.find_elements("css selector", "#weights canvas")) == 10, "no weight templates")
    assert driver.find_element("id", "weights-panel").is_displayed()
    assert driver.find_element("css selector", "label[for=model]").text == "Model"
    assert all(b.tag_name == "button" for b in driver.find_elements("css selector", ".buttons button"))
    logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] if hasattr(driver, "get_log") else []
    assert logs == []


def test_drawing_updates_the_bar_chart_while_drawing(page):
    from selenium.webdriver.common.action_chains import ActionChains

    driver, _ = page
    _wait(driver, lambda d: len(d.find_elements("css selector", "#bars li")) == 10, "page not ready")
    pad = driver.find_element("id", "pad")
    before = _updates(driver)
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(pad, -60, -90).click_and_hold()
    for dx, dy in ((40, 0), (40, 10), (0, 40), (-30, 20), (30, 20), (0, 40), (-40, 20), (-40, -10)):
        actions.move_by_offset(dx, dy).pause(0.05)
    actions.perform()  # the pen is still down
    _wait(driver, lambda d: _updates(d) > before, "the bar chart did not change while drawing")
    ActionChains(driver).release().perform()
    widths = [float(li.get_attribute("aria-label").split(": ")[1].split(" ")[0])
              for li in driver.find_elements("css selector", "#bars li")]
    assert abs(sum(widths) - 100) < 1.0  # percentages of the ten classes
    assert driver.find_element("id", "answer").text.startswith("The model says")
    best = driver.find_element("css selector", "#bars li.best")
    assert best.find_element("css selector", ".fill").size["width"] > 0  # the bar is drawn, not only its text
    shot = os.environ.get("SOFTREG_PAGE_SCREENSHOT")
    if shot:  # how docs/img/serve-page.png is made
        Path(shot).write_bytes(driver.get_screenshot_as_png())


def test_undo_and_clear(page):
    from selenium.webdriver.common.action_chains import ActionChains

    driver, _ = page
    pad = driver.find_element("id", "pad")
    ActionChains(driver).move_to_element_with_offset(pad, 0, -50).click_and_hold().move_by_offset(0, 100) \
        .release().perform()
    _wait(driver, lambda d: d.find_element("id", "answer").text.startswith("The model says"), "no answer")
    driver.find_element("id", "clear").click()
    _wait(driver, lambda d: d.find_element("id", "answer").text.startswith("Draw something"), "clear did nothing")


def test_random_test_image_button_works_from_the_keyboard(page):
    from selenium.webdriver.common.keys import Keys

    driver, _ = page
    button = driver.find_element("id", "random")
    _wait(driver, lambda d: button.is_enabled(), "random button disabled")
    before = _updates(driver)
    button.send_keys(Keys.ENTER)  # a focused button answers Enter: no mouse needed
    _wait(driver, lambda d: "true class" in d.find_element("id", "truth").text, "no test sample shown")
    assert _updates(driver) > before
