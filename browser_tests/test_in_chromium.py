"""The pages in a real browser: Debian's headless Chromium driven by selenium, JavaScript switched off.

The whole platform runs under the real supervisor (seven processes, real ports); the browser signs in to the
console, works the at-risk list, reads a customer and an A/B report, then answers a survey and unsubscribes on a
phone-sized window. Screenshots go to .data/screenshots/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from libs.common.unsubscribe import issue_unsubscribe_token
from retain_cli.embedded import free_port
from retain_cli.supervisor import PROCESSES, Supervisor
from tests.conftest import ADMIN_KEY, REPO_ROOT, Isolation
from tests.console.conftest import history, seed_ab_test
from tests.waiting import eventually

CHROMIUM = Path(os.environ.get("RETAIN_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("RETAIN_CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOTS = REPO_ROOT / ".data" / "screenshots"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
UNSUBSCRIBE_SECRET = "browser-test-unsubscribe"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    # The pages must work without scripts: a phone's simplest browser, or a cautious mail client's.
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def platform(isolated: Isolation, tmp_path: Path) -> AsyncIterator[Supervisor]:
    # A shared, busy test machine answers slower than the console's default patience.
    env = {
        **isolated.env(),
        "RETAIN_UNSUBSCRIBE_TOKEN_SECRET": UNSUBSCRIBE_SECRET,
        "RETAIN_CONSOLE_UPSTREAM_TIMEOUT_S": "30",
    }
    supervisor = Supervisor(env=env, ports={name: free_port() for name in PROCESSES}, log_dir=tmp_path)
    supervisor.start_all()
    try:
        ready = await supervisor.wait_ready(120)
        assert all(ready.values()), f"not ready: {ready}; logs in {tmp_path}"
        yield supervisor
    finally:
        await supervisor.shutdown(drain_timeout_s=20)
        supervisor.stop(PROCESSES)


def wait_for(driver: WebDriver, css: str, text: str | None = None) -> None:
    """After a click that posts a form: the next page, whose `css` element (holding `text`) appears."""

    def arrived(d: WebDriver) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and (text is None or text in found[0].text)

    try:
        WebDriverWait(driver, 30).until(arrived)
    except TimeoutException as exc:
        raise AssertionError(driver.find_element(By.TAG_NAME, "body").text) from exc


def shot(driver: WebDriver, name: str, full_height: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if full_height:
        height = driver.find_element(By.TAG_NAME, "body").size["height"] + 40
        width = driver.get_window_size()["width"]
        driver.set_window_size(width, min(max(height, 600), 4000))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


async def _prepare(platform: Supervisor, isolated: Isolation) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=20, headers=AUTH) as client:
        assert (
            await client.post(f"{platform.url('ingest')}/v1/events:batch", json={"events": history()})
        ).status_code == 202
        campaign = await client.post(
            f"{platform.url('campaign')}/v1/campaigns",
            json={
                "name": "Win back tea lovers",
                "status": "active",
                "trigger": {"kind": "stage_entered", "stage": "at_risk"},
                "actions": [{"type": "message", "channel": "email", "subject": "We miss you", "body": "Hi {name}"}],
                "variants": [{"name": "a"}, {"name": "b"}],
                "holdout_percent": 20,
            },
        )
        assert campaign.status_code == 201, campaign.text
        campaign_id = campaign.json()["id"]
        await seed_ab_test(isolated.stack.postgres.database_url(isolated.database), campaign_id)
        survey = {"survey_id": "after-delivery", "name": "After delivery", "kind": "nps", "question": "About order o-9"}
        assert (await client.post(f"{platform.url('feedback')}/v1/surveys", json=survey)).status_code == 201
        link = await client.post(
            f"{platform.url('feedback')}/v1/surveys/after-delivery/links", json={"customer_id": "c-small"}
        )
        assert link.status_code == 201, link.text

        async def scored() -> bool:
            answer = await client.get(f"{platform.url('scoring')}/v1/customers/c-big/score")
            reasons = {r["code"] for r in answer.json().get("reasons", [])} if answer.status_code == 200 else set()
            ticket = await client.get(f"{platform.url('feedback')}/v1/tickets/t-big")
            return "detractor_nps" in reasons and ticket.status_code == 200

        await eventually(scored, timeout_s=90)
    token = issue_unsubscribe_token(
        UNSUBSCRIBE_SECRET, "c-big", "email", campaign_id, datetime.now(UTC) + timedelta(days=30)
    )
    return {
        "campaign_id": campaign_id,
        "survey_url": link.json()["url"],
        "unsubscribe_url": f"{platform.url('ingest')}/unsubscribe?token={token}&lang=zh",
    }


async def test_console_and_customer_pages_in_chromium(
    platform: Supervisor, isolated: Isolation, browser: WebDriver
) -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    data = await _prepare(platform, isolated)
    console = platform.url("console")

    browser.get(f"{console}/worklist?level=0.01")
    assert "/login" in browser.current_url
    shot(browser, "01-console-sign-in")
    browser.find_element(By.ID, "api_key").send_keys(ADMIN_KEY)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    wait_for(browser, "section.work-item")
    assert "/worklist" in browser.current_url
    items = browser.find_elements(By.CSS_SELECTOR, "section.work-item")
    assert items and items[0].get_attribute("data-customer") == "c-big"
    shot(browser, "02-console-worklist")

    first = items[0].find_element(By.CSS_SELECTOR, "form[data-form='contacted']")
    Select(first.find_element(By.NAME, "outcome")).select_by_value("left_message")
    first.find_element(By.NAME, "note").send_keys("Call back on Friday")
    first.find_element(By.TAG_NAME, "button").click()
    wait_for(browser, "[data-done]")
    notice = browser.find_element(By.CSS_SELECTOR, "[data-done]")
    assert notice.get_attribute("data-done") == "c-big"
    shot(browser, "03-console-marked-contacted")

    browser.get(f"{console}/customers?by=email&q=lin@example.com")
    browser.find_element(By.LINK_TEXT, "c-big").click()
    wait_for(browser, "#score")
    assert browser.find_element(By.CSS_SELECTOR, "[data-tier]").text
    assert browser.find_elements(By.CSS_SELECTOR, "[data-reason='detractor_nps']")
    assert "Call back on Friday" in browser.find_element(By.ID, "tickets").text
    shot(browser, "04-console-customer-360")

    browser.get(f"{console}/campaigns/{data['campaign_id']}")
    chart = browser.find_element(By.CSS_SELECTOR, "svg[data-chart='uplift']")
    assert chart.size["width"] > 300 and len(chart.find_elements(By.CSS_SELECTOR, "[data-ci]")) == 2
    shot(browser, "05-console-ab-report")

    browser.get(f"{console}/tickets")
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-ticket='t-big']")
    shot(browser, "06-console-tickets")

    browser.get(f"{console}/retention")
    assert browser.find_elements(By.CSS_SELECTOR, "[data-table='kpis'], [data-insights]")
    shot(browser, "07-console-retention")

    # A customer on a phone, no login, no scripts.
    browser.set_window_size(390, 844)
    browser.get(data["survey_url"])
    browser.find_element(By.XPATH, "//label[normalize-space()='9']").click()
    browser.find_element(By.ID, "comment").send_keys("Arrived a day early, thanks")
    shot(browser, "08-survey-phone", full_height=False)
    browser.find_element(By.CSS_SELECTOR, "form button[type='submit']").click()
    wait_for(browser, "h1", "Thank you")
    shot(browser, "09-survey-thanks", full_height=False)
    browser.get(data["survey_url"])
    assert browser.find_element(By.CSS_SELECTOR, "[data-problem]").get_attribute("data-problem") == "used"

    browser.get(data["unsubscribe_url"])
    assert "这条消息是通过电子邮件发给您的" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "10-unsubscribe-phone-zh", full_height=False)
    browser.find_element(By.CSS_SELECTOR, "form[data-form='all'] button").click()
    wait_for(browser, "h1", "已保存您的设置")
    shot(browser, "11-unsubscribe-done-zh", full_height=False)

    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:

        async def withdrawn() -> bool:
            answer = await client.get(f"{platform.url('profile')}/v1/customers/c-big")
            consents = answer.json().get("consents", {}) if answer.status_code == 200 else {}
            return consents.get("email", {}).get("granted") is False and consents.get("sms", {}).get("granted") is False

        assert await eventually(withdrawn)
        answers = await client.get(
            f"{platform.url('feedback')}/v1/analysis/nps", params={"survey_id": "after-delivery"}
        )
        assert answers.status_code == 200 and answers.json()["groups"], answers.text  # the answer given in the browser
