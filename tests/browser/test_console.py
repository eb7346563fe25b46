"""The console in real headless Chromium, used as a responder on a night shift would:
log in with TOTP, see a P1 arrive live from a signed SMS, take it, reply over SMS,
record consent, refer, close, and see the bot greet the person again."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, expect
from redis.asyncio import Redis

from tests.browser.conftest import staying_on
from tests.conftest import RunningServer, StaffAccount, add_staff
from tests.fakes import FakeTwilio
from tests.integration.test_sms import Phone
from triage.cases import CaseStore

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
T = TypeVar("T")
HOSTILE = "<img src=x onerror=alert(1)> help me now he has a knife"


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine beside Playwright's own event loop (a person's phone, a colleague)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def others_take_every_waiting_case(server: RunningServer) -> None:
    """Colleagues have taken what was waiting, so the next P1 is the one we send."""
    async def take() -> None:
        client = Redis(unix_socket_path=str(server.redis_socket))
        cases = CaseStore(client, server.cipher())
        for item in await cases.queue():
            await cases.claim(item.case_id, "colleague", reassign=True)
        await client.close(close_connection_pool=True)

    run(take())


@pytest.fixture
def night_shift(server: RunningServer) -> StaffAccount:
    return add_staff(server, "night-shift", "supervisor")


@pytest.fixture
def console(browser: Browser, server: RunningServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with staying_on(page, server.url, server.url.replace("http://", "ws://")):
        page.goto(server.url + "/console/")
        yield page
    assert dialogs == [], "a script ran from a message"
    context.close()


def log_in(page: Page, account: StaffAccount) -> None:
    form = page.locator("#login-form")
    form.get_by_label("Name").fill(account.name)
    form.get_by_label("Password").fill(account.password)
    form.get_by_label("Code from your authenticator").fill(account.code())
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Waiting")).to_be_visible()


def test_a_night_shift_from_alert_to_goodbye(console: Page, server: RunningServer, fake_twilio: FakeTwilio,
                                             night_shift: StaffAccount) -> None:
    page = console
    log_in(page, night_shift)
    others_take_every_waiting_case(server)
    page.get_by_role("button", name="Queue").click()

    phone = Phone(server)
    (after_hours,) = run(phone.text("please help me now, he is hitting me and i cant get out"))
    assert after_hours.startswith("Our team is") or "reply here" in after_hours

    # The P1 appears live, with its reasons, and raises the alarm.
    expect(page.get_by_role("alert")).to_contain_text("P1")
    row = page.locator("#queue-rows tr").first
    expect(row).to_contain_text("P1")
    expect(row).to_contain_text("sms")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "queue-p1-alert.png"))
    page.get_by_role("alert").click()

    page.get_by_role("button", name="Take the next most urgent").click()
    expect(page.locator("#case-status")).to_contain_text("with responder — night-shift")
    expect(page.locator("#summary")).to_contain_text("immediate_danger")
    expect(page.locator("#transcript")).to_contain_text("he is hitting me")

    # A reply reaches the person's phone through Twilio.
    page.get_by_placeholder("Write to the person").fill("I'm here. Are you somewhere safe right now?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#transcript")).to_contain_text("Are you somewhere safe right now?")
    sent = fake_twilio.wait_for(lambda calls: any(
        c.params.get("To") == phone.number and "somewhere safe" in c.params.get("Body", "") for c in calls))
    assert sent
    # And the person's answer appears live.
    assert run(phone.text("yes i am in the bathroom, the door is locked")) == []
    expect(page.locator("#transcript")).to_contain_text("in the bathroom")

    # Consent first, then the referral it allows.
    page.locator("#consent-what").select_option("referral")
    page.locator("#consent-partner").select_option("safe-harbour")
    page.get_by_role("button", name="Record consent").click()
    expect(page.locator("#ledger")).to_contain_text("consent: referral:safe-harbour")
    page.locator("#refer-partner").select_option("safe-harbour")
    page.get_by_role("button", name="Refer").click()
    expect(page.locator("#ledger")).to_contain_text("referral: safe-harbour")
    page.get_by_placeholder("Write to the person").fill("")
    page.screenshot(path=str(SCREENSHOTS / "case.png"), full_page=True)

    # Closing says goodbye in the person's language and gives them back to the bot.
    page.get_by_role("button", name="Close and hand back to the bot").click()
    expect(page.locator("#case-status")).to_contain_text("closed")
    fake_twilio.wait_for(lambda calls: any(
        c.params.get("To") == phone.number and "close this conversation" in c.params.get("Body", "")
        for c in calls))
    notice, _ = run(phone.text("hello"))
    assert "don't need to give your name" in notice

    page.get_by_role("button", name="Dashboard").click()
    expect(page.locator("#charts")).to_contain_text("By priority")
    expect(page.locator("#waits")).to_contain_text("P1")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    page.get_by_role("button", name="Audit log").click()
    expect(page.locator("#audit-verified")).to_contain_text("Chain verified")
    expect(page.locator("#audit-rows")).to_contain_text("refer")
    page.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=True)


def test_a_message_carrying_html_is_shown_as_text(console: Page, server: RunningServer) -> None:
    page = console
    log_in(page, add_staff(server, "careful-reader", "responder"))
    others_take_every_waiting_case(server)
    page.get_by_role("button", name="Queue").click()
    run(Phone(server).text(HOSTILE))
    expect(page.locator("#queue-rows tr")).to_have_count(1)
    page.get_by_role("button", name="Take the next most urgent").click()
    expect(page.locator("#transcript")).to_contain_text(HOSTILE)
    assert page.locator("#transcript img").count() == 0
