"""The web chat in real headless Chromium, used as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import staying_on
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

EXIT_URL = "https://www.wikipedia.org/"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page(browser: Browser, server: RunningServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 780}, locale="en-US")
    page = context.new_page()

    # The quick exit goes to a neutral public site; it is answered here so nothing
    # leaves the machine during tests.
    def neutral_site(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<title>Wikipedia</title>")

    context.route(EXIT_URL, neutral_site)
    with staying_on(page, server.url, server.ws_url, EXIT_URL, "data:"):
        page.goto(server.url + "/chat")
        yield page
    context.close()


def test_a_person_says_hello_reads_the_reply_and_clicks_a_button(page: Page) -> None:
    expect(page).to_have_title("Chat")
    page.get_by_label("Your message").fill("hello")
    page.get_by_role("button", name="Send").click()
    log = page.get_by_role("log")
    expect(log).to_contain_text("You don't need to give your name")
    expect(log).to_contain_text("Is it safe for you to talk right now?")
    page.get_by_role("button", name="Yes, I can talk").click()
    expect(log).to_contain_text("What would you like to do?")
    expect(page.get_by_role("button", name="Report something I saw")).to_be_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat.png"))


def test_enter_sends_and_new_messages_are_announced(page: Page) -> None:
    log = page.get_by_role("log")
    assert log.get_attribute("aria-live") == "polite"
    page.get_by_label("Your message").fill("what are my rights")
    page.keyboard.press("Enter")
    expect(log).to_contain_text("whatever your immigration status")
    expect(page.get_by_label("Your message")).to_have_value("")


def _assert_no_trace(page: Page, server: RunningServer, entries_before: int) -> None:
    expect(page).to_have_url(EXIT_URL)
    state = page.context.storage_state()
    assert state["cookies"] == [] and state["origins"] == []
    # The chat's history entry was replaced, not stacked: Back leads to the page
    # before it (the tab's blank start page here), never to the chat.
    assert page.evaluate("history.length") == entries_before
    page.go_back()
    assert not page.url.startswith(server.url)


def test_quick_exit_leaves_no_trace(page: Page, server: RunningServer) -> None:
    page.get_by_label("Your message").fill("hello")
    page.keyboard.press("Enter")
    expect(page.get_by_role("log")).to_contain_text("safe for you to talk")
    entries = page.evaluate("history.length")
    page.get_by_role("button", name="Quick exit").click()
    _assert_no_trace(page, server, entries)


def test_escape_twice_is_a_quick_exit(page: Page, server: RunningServer) -> None:
    page.get_by_label("Your message").fill("hello")
    entries = page.evaluate("history.length")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    _assert_no_trace(page, server, entries)


def test_a_message_that_looks_like_html_is_shown_as_text(page: Page) -> None:
    page.on("dialog", lambda dialog: pytest.fail("a script ran"))
    page.get_by_label("Your message").fill("<img src=x onerror=alert(1)>")
    page.keyboard.press("Enter")
    expect(page.get_by_role("log")).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator("#log .msg.bot")).not_to_have_count(0)  # the bot answered the turn
    assert page.locator("#log img").count() == 0


def test_the_delete_button_in_the_chat_also_clears_the_page(page: Page) -> None:
    page.get_by_label("Your message").fill("my boss took my passport")
    page.keyboard.press("Enter")
    log = page.get_by_role("log")
    expect(log).to_contain_text("Help does not depend on your name")
    page.get_by_label("Your message").fill("stop")
    page.keyboard.press("Enter")
    expect(log).to_contain_text("I will stop here")
    log.get_by_role("button", name="Delete this conversation").click()  # the bot's, not the footer's
    expect(log).to_contain_text("This conversation has been deleted")
    expect(log).not_to_contain_text("passport")
    expect(page.locator("#log .msg")).to_have_count(1)


@pytest.fixture
def arabic_page(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """A phone whose browser is set to Arabic."""
    context = browser.new_context(viewport={"width": 390, "height": 780}, locale="ar-EG")
    page = context.new_page()
    page.goto(server.url + "/chat")
    yield page
    context.close()


def test_the_page_speaks_the_browsers_language_and_turns_for_arabic(arabic_page: Page) -> None:
    page = arabic_page
    html = page.locator("html")
    # Before anything is written, the browser's language is the first guess.
    expect(html).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("button", name="خروج سريع")).to_be_visible()
    page.get_by_label("رسالتك").fill("مرحبا، أنا بحاجة إلى مساعدة من فضلكم")
    page.get_by_role("button", name="إرسال").click()
    log = page.get_by_role("log")
    expect(log.locator(".msg.bot").first).to_have_attribute("dir", "rtl")
    expect(log.locator(".msg.bot").first).to_have_attribute("lang", "ar")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat-arabic.png"))


def test_the_language_menu_switches_the_conversation_and_the_page(page: Page) -> None:
    page.get_by_role("button", name="Language").click()
    buttons = page.locator(".msg.bot .buttons button")
    expect(buttons).to_have_count(12)
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("log")).to_contain_text("A partir de ahora")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("button", name="Enviar")).to_be_visible()
    page.get_by_label("Tu mensaje").fill("what are my rights")  # still Spanish: the choice sticks
    page.keyboard.press("Enter")
    expect(page.get_by_role("log").locator(".msg.bot").last).to_have_attribute("lang", "es")
