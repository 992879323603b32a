"""End to end in headless Chromium (Debian's chromium, driven by Playwright) against a real uvicorn server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qa.chat_view import date_words
from qa.confidence import confidence_words

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}
VETO_QUESTION = "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"
AMBASSADOR_QUESTION = "Siapa Duta Besar Rusia untuk Korea Utara?"
UNSURE_QUESTION = "Who is the mayor of Vladivostok?"  # the articles do not say; the reader answers anyway, unsure

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium binary at {CHROMIUM} (Debian: apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """open_page(viewport=..., javascript=...) -> a page in a fresh context, closed after the test."""
    contexts = []

    def open_(viewport=DESKTOP, javascript=True):
        context = browser.new_context(viewport=viewport, java_script_enabled=javascript, reduced_motion="reduce")
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


def assert_lands_on_highlighted_passage(page, answer: str | None = None):
    expect(page).to_have_url(re.compile(r"/sources/[^?#]+\?start=\d+&end=\d+.*#cited$"))
    passage = page.locator("mark.passage#cited")
    expect(passage).to_be_visible()
    expect(passage).to_be_in_viewport()
    if answer:
        expect(passage.locator("mark.answer-span")).to_have_text(answer)


def follow_first_source(page, turn: str):
    """Open the first article chip of a turn and follow its first passage."""
    group = page.locator(f"{turn} .source-group").first
    if not group.evaluate("details => details.open"):
        group.locator("summary").click()
    expect(group.locator(".group-passages a").first).to_be_visible()
    group.locator(".group-passages a").first.click()


def test_ask_with_javascript_then_follow_the_citation(open_page, live_server, service):
    page = open_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(live_server + "/")
    box = page.get_by_label("Your question")
    expect(box).to_be_focused()
    page.evaluate("window.stillTheSamePage = true")

    held = []  # hold /ask back, to see the page say it is working
    page.route("**/ask", lambda route: held.append(route))
    box.fill(VETO_QUESTION)
    box.press("Enter")
    expect(page.locator("#turn-1 .pending")).to_be_visible()
    expect(page.locator("#ask-status")).to_have_text("Looking through the articles…")
    expect(box).to_have_value("")
    for _ in range(500):  # at most 10 s: a page that never asks /ask fails here instead of hanging
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the page did not ask /ask"
    box.fill(AMBASSADOR_QUESTION)  # asked while the first is pending: kept in the box, and the reader told why
    box.press("Enter")
    expect(page.locator("#ask-note")).to_have_text("Still looking for the last answer: ask this one once it has come.")
    expect(page.locator("#ask-note")).to_have_attribute("role", "status")  # a notice, not an alert: nothing is wrong
    expect(page.locator("#ask-error")).to_have_text("")
    expect(box).to_have_value(AMBASSADOR_QUESTION)
    expect(box).not_to_have_attribute("aria-invalid", "true")
    question = page.locator("#turn-1 .question")
    top_before = question.evaluate("e => e.getBoundingClientRect().top + window.scrollY")
    held[0].continue_()
    page.unroute("**/ask")

    reply = page.locator("#turn-1 .reply:not(.pending)")
    expect(reply.locator(".answer")).to_have_text("Answer: 28 Maret 2024")
    expect(reply.locator(".sentence mark")).to_have_text("28 Maret 2024")
    words, level = confidence_words(service.ask(VETO_QUESTION).confidence)
    expect(reply.locator(".confidence")).to_have_text(words)
    expect(reply.locator(".caution")).to_have_count(1 if level == "low" else 0)
    expect(reply.locator("time")).to_have_attribute("datetime", "2024-03-28")
    expect(reply.locator(".chip").first).to_be_visible()
    assert question.evaluate("e => e.getBoundingClientRect().top + window.scrollY") == pytest.approx(top_before, abs=1)
    expect(box).to_be_focused()
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator("#ask-note")).to_have_text("")  # the notice goes with the wait
    expect(page.locator("#conversation .turn")).to_have_count(1)

    page.get_by_role("button", name=AMBASSADOR_QUESTION).click()
    expect(page.locator("#turn-2 .reply:not(.pending) .chip").first).to_be_visible()
    expect(page.locator("#turn-1 .answer")).to_have_text("Answer: 28 Maret 2024")
    expect(box).to_be_focused()
    assert page.evaluate("window.stillTheSamePage") is True

    follow_first_source(page, "#turn-1")
    assert_lands_on_highlighted_passage(page, "28 Maret 2024")

    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.get_by_role("link", name="Back to the chat").click()  # goes back in history, to the conversation as it was
    expect(page.locator("#conversation .turn")).to_have_count(2)
    assert page.url == live_server + "/" and errors == []
    # This browser draws the page anew (no back/forward cache): the reader is back at the link followed, in the
    # first turn, with its article's passages open, not at the last turn.
    followed = page.locator("#turn-1 .source-group").first.locator(".group-passages a").first
    expect(followed).to_be_focused()
    expect(followed).to_be_in_viewport()
    page.goto(live_server + "/")  # a fresh load of the chat in the same tab draws the conversation again
    expect(page.locator("#turn-2 .answer")).to_contain_text("Alexander Matsegora")
    page.get_by_role("link", name="Start over").click()
    expect(page.locator("#conversation .turn")).to_have_count(0)
    assert all(url.startswith(live_server) for url in requests), "a request left the app"


def test_ask_without_javascript_then_follow_the_citation(open_page, live_server):
    page = open_page(javascript=False)
    page.goto(live_server + "/")
    page.get_by_label("Your question").fill(VETO_QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page).to_have_url(live_server + "/#turn-1")
    expect(page.locator("#turn-1 .answer")).to_have_text("Answer: 28 Maret 2024")
    expect(page.locator("#turn-1 .sentence mark")).to_have_text("28 Maret 2024")

    page.get_by_role("button", name=AMBASSADOR_QUESTION).click()
    expect(page).to_have_url(live_server + "/#turn-2")
    expect(page.locator("#turn-1 .question")).to_contain_text(VETO_QUESTION)
    expect(page.locator("#turn-2 .question")).to_contain_text(AMBASSADOR_QUESTION)
    expect(page.locator("#turn-2 .chip").first).to_be_visible()

    follow_first_source(page, "#turn-1")
    assert_lands_on_highlighted_passage(page, "28 Maret 2024")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_question_with_html_shows_as_text(open_page, live_server, javascript):
    page = open_page(javascript=javascript)
    page.goto(live_server + "/")
    question = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script><b>Kapan</b> Rusia memveto?'
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#turn-1 .reply:not(.pending)")).to_be_visible()
    expect(page.locator("#turn-1 .question")).to_have_text("You asked: " + question)
    assert page.locator("#conversation img, #conversation script, #conversation b").count() == 0
    if javascript:
        assert page.evaluate("window.pwned") is None


def test_keyboard_only(open_page, live_server):
    page = open_page()
    page.goto(live_server + "/sources")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Ask", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Your question")).to_be_focused()
    # Focused, the question box shows the same 3px ring as every other control.
    assert page.locator(".ask-row").evaluate("e => getComputedStyle(e).outlineWidth") == "3px"
    page.keyboard.type(VETO_QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator("#turn-1 .reply:not(.pending) .chip").first).to_be_visible()
    # Each turn begins with its question as a heading, so headings lead from turn to turn.
    expect(page.get_by_role("heading", level=2, name="You asked: " + VETO_QUESTION)).to_be_visible()
    page.keyboard.press("Shift+Tab")  # the last article chip of the last answer comes just before the question box
    chip = page.locator("#turn-1 .chip").last
    expect(chip).to_be_focused()
    page.keyboard.press("Enter")  # opens the article's passages
    page.keyboard.press("Tab")
    expect(page.locator("#turn-1 .source-group").last.locator(".group-passages a").first).to_be_focused()
    page.keyboard.press("Enter")
    assert_lands_on_highlighted_passage(page)


COVERED_BY_THE_BAR = """() => {
  const el = document.activeElement, bar = document.getElementById("ask");
  if (!el || el === document.body || bar.contains(el)) return null;
  const r = el.getBoundingClientRect(), b = bar.getBoundingClientRect();
  return r.bottom > b.top + 1 && r.top < b.bottom ? el.outerHTML.slice(0, 120) : null;
}"""


def test_a_link_reached_with_tab_is_never_hidden_under_the_question_bar(open_page, live_server):
    page = open_page(viewport={"width": 1280, "height": 800})
    page.goto(live_server + "/")
    for number, question in enumerate([VETO_QUESTION, AMBASSADOR_QUESTION, UNSURE_QUESTION], 1):
        page.get_by_label("Your question").fill(question)
        page.keyboard.press("Enter")
        expect(page.locator(f"#turn-{number} .reply:not(.pending)")).to_be_visible()
    page.locator("details.source-group").evaluate_all("groups => groups.forEach(g => g.open = true)")
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("a").first.focus()
    covered = []
    for _ in range(60):
        page.keyboard.press("Tab")
        if (hidden := page.evaluate(COVERED_BY_THE_BAR)) is not None:
            covered.append(hidden)
    assert covered == []


def test_phone_width_has_no_horizontal_scroll(open_page, live_server):
    page = open_page(viewport=PHONE)

    page.goto(live_server + "/")
    assert_fits(page, "the empty chat")
    page.get_by_role("button", name="When did Putin arrive in Pyongyang?").click()
    expect(page.locator("#turn-1 .reply:not(.pending)")).to_be_visible()
    page.get_by_label("Your question").fill("What is the capital of France?")
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#turn-2 .reply:not(.pending)")).to_be_visible()
    assert_fits(page, "the chat with answers")
    # Titles cut short would read alike ("Rusia dan Korea Utara…"), and a phone shows no tooltip: shown whole.
    for title in page.locator(".chip-title").all():
        assert title.evaluate("t => t.scrollWidth <= t.clientWidth"), title.inner_text()
    page.locator("#turn-1 .source-group").first.locator("summary").click()
    assert_fits(page, "the chat with an article's passages open")
    follow_first_source(page, "#turn-1")
    assert_lands_on_highlighted_passage(page)
    assert_fits(page, "the source viewer")
    page.goto(live_server + "/sources")
    assert_fits(page, "the list of sources")


def test_the_question_box_shows_its_whole_placeholder_on_a_375_px_phone(open_page, live_server):
    page = open_page(viewport={"width": 375, "height": 740})
    page.goto(live_server + "/")
    text_width, room = page.locator("#question").evaluate("""box => {
        const style = getComputedStyle(box);
        const canvas = document.createElement("canvas").getContext("2d");
        canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        return [canvas.measureText(box.placeholder).width,
                box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)];
    }""")
    assert text_width <= room, f"the placeholder needs {text_width:.0f}px and has {room:.0f}px"


# Every element of a turn with its classes, link and own text: what the server draws and what app.js draws.
TURN_SHAPE = """turn => [...turn.querySelectorAll('*')].map(n =>
    [n.tagName, n.className, n.getAttribute('href') || '', n.children.length ? '' : n.textContent.trim()]
        .join(' | '))"""


@pytest.mark.parametrize("question", [VETO_QUESTION, "What is the capital of France?", UNSURE_QUESTION,
                                      "Berapa kuda yang dibawa kereta dari Rusia ke Korea Utara?"])
def test_javascript_draws_a_turn_as_the_server_does(open_page, live_server, question):
    page = open_page()
    page.goto(live_server + "/")
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#turn-1 .reply:not(.pending)")).to_be_visible()
    drawn_by_script = page.locator("#turn-1").evaluate(TURN_SHAPE)

    server_html = page.request.post(live_server + "/", form={"question": question}).text()
    static = open_page()
    static.set_content(server_html)  # on about:blank, so app.js does not load
    assert static.locator("#turn-1").evaluate(TURN_SHAPE) == drawn_by_script


@pytest.mark.parametrize("normalized", [
    {"type": "date", "value": "2024-03-28"}, {"type": "date", "value": "1950-06"},
    {"type": "date", "value": "1990", "qualifier": "late"}, {"type": "decade", "value": "2000s", "qualifier": "early"},
    {"type": "decade", "value": "1990s"}, {"type": "date_range", "value": "1950/1953"},
    {"type": "date_range", "value": "2003/2009", "qualifier": "mid-to-late"}])
def test_javascript_words_a_date_as_the_server_does(open_page, live_server, service, normalized):
    answered = service.ask(VETO_QUESTION)
    page = open_page()

    def with_date(route):  # the real answer, with the date to word in place of its own
        body = route.fetch().json() | {"normalized": normalized, "timeline_url": None}
        route.fulfill(json=body)

    page.route("**/ask", with_date)
    page.goto(live_server + "/")
    page.get_by_label("Your question").fill(answered.question)
    page.get_by_label("Your question").press("Enter")
    words, machine = date_words(normalized)
    fact = page.locator("#turn-1 .fact")
    expect(fact).to_have_text(f"Date: {words}")
    assert fact.locator("time").count() == (1 if machine else 0)


def test_an_unsure_answer_is_shown_with_a_warning(open_page, live_server, service):
    from qa.confidence import LOW_CONFIDENCE_NOTE

    assert confidence_words(service.ask(UNSURE_QUESTION).confidence)[1] == "low"  # the case under test
    page = open_page()
    page.goto(live_server + "/")
    ask(page, UNSURE_QUESTION, 1)
    reply = page.locator("#turn-1 .reply:not(.pending)")
    expect(reply.locator(".confidence")).to_have_text("Low confidence")
    expect(reply.locator(".caution")).to_have_text(LOW_CONFIDENCE_NOTE)
    # A screen reader hears the warning too, not only the answer.
    answer = service.ask(UNSURE_QUESTION).answer
    expect(page.locator("#ask-status")).to_have_text(f"Answer: {answer}. Low confidence. {LOW_CONFIDENCE_NOTE}")


def test_the_api_docs_page_shows_the_operations_without_the_internet(open_page, live_server):
    page = open_page()
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(live_server + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/ask").first).to_be_visible()
    assert failed == []


def assert_fits(page, where: str):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{where} scrolls sideways by {overflow}px at {page.viewport_size['width']}px wide"


def ask(page, question: str, n: int):
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    expect(page.locator(f"#turn-{n} .reply:not(.pending)")).to_be_visible()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_three_turn_conversation_whose_third_turn_needs_the_first(open_page, live_server, javascript):
    page = open_page(viewport=PHONE, javascript=javascript)
    page.goto(live_server + "/")
    ask(page, "Siapa Duta Besar Rusia untuk Korea Utara?", 1)
    expect(page.locator("#turn-1 .answer")).to_have_text("Answer: Alexander Matsegora")
    ask(page, "Apa harapannya untuk tahun 2024?", 2)
    ask(page, "Siapa menurut dia akan berkunjung ke Pyongyang?", 3)
    expect(page.locator("#turn-3 .answer")).to_contain_text("Vladimir Putin")
    expect(page.locator("#turn-3 .context-used")).to_contain_text("Alexander Matsegora")  # named in turn 1 only
    expect(page.locator("#turn-1 .answer")).to_have_text("Answer: Alexander Matsegora")
    assert_fits(page, "a three-turn conversation on a 360px screen")

    page.get_by_role("link", name="Start over").click()
    expect(page.locator("#conversation .turn")).to_have_count(0)
    ask(page, "Siapa menurut dia akan berkunjung ke Pyongyang?", 1)
    expect(page.locator("#turn-1 .context-used")).to_have_count(0)  # a new conversation has no earlier words


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_sources_are_grouped_by_article_and_open_to_the_highlighted_passages(open_page, live_server, javascript,
                                                                             service):
    question = "Di kota mana Kim Jong Un dan Putin mengadakan pertemuan puncak pertama mereka?"
    citations = service.ask(question).citations
    articles = list(dict.fromkeys(c.doc_id for c in citations))
    page = open_page(javascript=javascript)
    page.goto(live_server + "/")
    ask(page, question, 1)
    chips = page.locator("#turn-1 .source-group")
    expect(chips).to_have_count(len(articles))
    first = chips.first
    passages = first.locator(".group-passages a")
    expect(passages.first).to_be_hidden()
    first.locator("summary").click()
    expect(passages).to_have_count(sum(c.doc_id == articles[0] for c in citations))
    # Open, the chip shows its article's whole name (closed, a long one is cut with an ellipsis on a wide screen).
    title = first.locator(".chip-title")
    assert title.evaluate("e => e.scrollWidth <= e.clientWidth && getComputedStyle(e).whiteSpace === 'normal'")
    for i in range(passages.count()):
        expect(passages.nth(i).locator("mark")).to_have_text("Vladivostok")
    passages.first.click()
    assert_lands_on_highlighted_passage(page, "Vladivostok")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_timeline_filter_then_follow_an_event_to_its_sentence(open_page, live_server, javascript):
    page = open_page(viewport=PHONE, javascript=javascript)
    page.goto(live_server + "/")
    page.get_by_role("link", name="Timeline").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    everything = page.locator("ol.events > li.event").count()
    assert everything > 40
    assert_fits(page, "the timeline on a 360px screen")
    # Every year label of the axis whole and apart at a phone's type size (the SVG's box cuts what leaves it).
    boxes = page.evaluate("""() => { const svg = document.querySelector('.axis svg');
        const view = svg.viewBox.baseVal;
        return [...svg.querySelectorAll('.tick-label')].map(t => { const b = t.getBBox(); return [b.x, b.x + b.width]; })
            .concat([[view.x, view.x + view.width]]); }""")
    *labels, (left, right) = boxes
    assert len(labels) >= 3 and all(left <= a and b <= right for a, b in labels), labels
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(labels, labels[1:])), labels

    page.get_by_label("Article").select_option(
        label="Rusia dan Korea Utara Memiliki Hubungan yang Rumit Selama Beberapa Dekade")
    page.get_by_label("From year").fill("1990")
    page.get_by_label("To year").fill("2009")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/timeline\?article=.+&from=1990&to=2009"))
    events = page.locator("ol.events > li.event")
    assert 0 < events.count() < everything
    expect(page.locator(".lede")).to_contain_text(f"{events.count()} of {everything} events")
    for i in range(events.count()):
        year = int(re.search(r"(19|20)\d\d", events.nth(i).locator(".event-date").inner_text()).group())
        assert 1990 <= year <= 2009
    assert_fits(page, "the filtered timeline on a 360px screen")

    date = events.first.locator(".event-text mark").first.inner_text()  # the date it is placed by; the link marks it
    events.first.locator(".event-source a").click()
    assert_lands_on_highlighted_passage(page, date)


def test_a_date_answer_links_to_its_place_on_the_timeline(open_page, live_server):
    page = open_page()
    page.goto(live_server + "/")
    ask(page, VETO_QUESTION, 1)
    page.locator("#turn-1").get_by_role("link", name="on the timeline").click()
    expect(page).to_have_url(re.compile(r"/timeline#e[0-9a-f]+-\d+$"))
    event = page.locator("li.event:target")
    expect(event).to_be_in_viewport()
    expect(event.locator(".event-text mark")).to_have_text("28 Maret 2024")


def test_back_to_the_chat_from_a_source_opened_in_a_tab_of_its_own_opens_the_chat(open_page, live_server):
    page = open_page()
    page.goto(live_server + "/")
    page.get_by_role("button", name=AMBASSADOR_QUESTION).click()
    group = page.locator("#turn-1 .source-group").first
    group.locator("summary").click()
    with page.context.expect_page() as opened:
        group.locator(".group-passages a").first.click(modifiers=["Control"])
    tab = opened.value
    assert_lands_on_highlighted_passage(tab)
    assert tab.evaluate("[document.referrer, history.length]") == [live_server + "/", 1]
    tab.get_by_role("link", name="Back to the chat").click()  # nothing to go back to in this tab: the chat opens
    expect(tab).to_have_url(live_server + "/")
    expect(tab.get_by_label("Your question")).to_be_visible()
    expect(page.locator("#turn-1 .answer")).to_contain_text("Alexander Matsegora")  # the first tab keeps its talk


def test_on_a_very_short_screen_the_question_bar_scrolls_with_the_page(open_page, live_server):
    page = open_page(viewport={"width": 640, "height": 300})  # a desktop page at 400% zoom, or a phone sideways
    page.goto(live_server + "/")
    assert page.locator("#ask").evaluate("e => getComputedStyle(e).position") == "static"
    tall = open_page()
    tall.goto(live_server + "/")
    assert tall.locator("#ask").evaluate("e => getComputedStyle(e).position") == "sticky"


def test_a_double_click_on_ask_asks_once_and_raises_no_browser_warning(open_page, live_server):
    page = open_page()
    page.goto(live_server + "/")
    page.get_by_label("Your question").fill(AMBASSADOR_QUESTION)
    page.locator("#ask-button").dblclick()
    expect(page.locator("#turn-1 .reply:not(.pending) .answer")).to_have_text("Answer: Alexander Matsegora")
    expect(page.locator("#conversation .turn")).to_have_count(1)
    expect(page.locator("#ask-error")).to_have_text("")
    # The browser's own "Please fill out this field." is off: the script checks for an empty question itself.
    assert page.locator("#ask").evaluate("form => form.noValidate") is True


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_question_of_only_punctuation_is_told_why_not_answered_alike_with_and_without_javascript(
        open_page, live_server, javascript):
    page = open_page(javascript=javascript)
    page.goto(live_server + "/")
    page.get_by_label("Your question").fill("?!?!...")
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#ask-error")).to_have_text("A question needs words: this one has no letter or digit.")
    expect(page.locator(".turn")).to_have_count(0)


def test_a_followed_link_is_kept_only_for_the_return_it_serves(open_page, live_server):
    page = open_page()
    page.goto(live_server + "/")
    ask(page, VETO_QUESTION, 1)
    kept = "() => sessionStorage.getItem('newsqa.followed')"
    group = page.locator("#turn-1 .source-group").first
    group.locator("summary").click()
    link = group.locator(".group-passages a").first
    with page.context.expect_page() as other_tab:
        link.click(modifiers=["Control"])  # the source in another tab: this page stays where it is
    other_tab.value.close()
    assert page.evaluate(kept) is None
    link.click()
    expect(page).to_have_url(re.compile(r"/sources/"))
    assert page.evaluate(kept) is not None
    page.go_back()
    expect(page.locator("#turn-1 .source-group").first.locator(".group-passages a").first).to_be_focused()
    assert page.evaluate(kept) is None  # used once: a later visit to the chat starts at the last turn
    page.evaluate("sessionStorage.setItem('newsqa.followed', JSON.stringify({href: '/x', fromEnd: 0, y: 0}))")
    page.get_by_role("link", name="Start over").click()
    assert page.evaluate(kept) is None


def test_javascript_cuts_a_passage_with_emoji_where_the_server_does(open_page, live_server, service):
    """Both count code points: an emoji is one character to Python and two UTF-16 units to JavaScript."""
    from qa.records import Citation
    from qa.chat_view import around_answer

    padding = "😀 " * 150

    def with_emoji(route):  # the real answer, its first passage behind 300 characters of emoji and spaces
        body = route.fetch().json()
        first = body["citations"][0]
        first |= {"passage": padding + first["passage"], "answer_start": first["answer_start"] + len(padding),
                  "answer_end": first["answer_end"] + len(padding)}
        body["citations"] = [first]
        route.fulfill(json=body)
        shown.update(first)

    shown: dict = {}
    page = open_page()
    page.route("**/ask", with_emoji)
    page.goto(live_server + "/")
    ask(page, VETO_QUESTION, 1)
    page.locator("#turn-1 .source-group summary").first.click()
    link = page.locator("#turn-1 .group-passages a").first
    expected = around_answer(Citation(**{name: shown[name] for name in Citation.__dataclass_fields__}))
    assert link.inner_text() == expected.before + expected.answer + expected.after
    assert expected.before.startswith("…😀")


def test_javascript_cuts_a_related_passage_with_emoji_where_the_server_does(open_page, live_server):
    from qa.chat_view import excerpt

    shown: dict = {}

    def refused_with_emoji(route):  # a refusal whose one related passage opens with 300 characters of emoji
        body = route.fetch().json()
        first = body["citations"][0] | {"answer_start": None, "answer_end": None}
        first["passage"] = "🙂 " * 150 + first["passage"]
        body |= {"abstained": True, "answer": None, "normalized": None, "sentence": None, "sentence_start": None,
                 "sentence_end": None, "citations": [first], "timeline_url": None}
        shown.update(first)
        route.fulfill(json=body)

    page = open_page()
    page.route("**/ask", refused_with_emoji)
    page.goto(live_server + "/")
    ask(page, VETO_QUESTION, 1)
    expect(page.locator("#turn-1 .related p")).to_have_text(excerpt(shown["passage"]))
    assert excerpt(shown["passage"]).count("🙂") == 120  # cut at 240 code points, not 240 UTF-16 units
