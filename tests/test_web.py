"""The chat page and source viewer through TestClient: rendering, the no-JS form post, highlighting, escaping."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

BACKENDS = ["files", "postgres"]  # the service and client tests run against both stores (tests/conftest.py)

from fastapi.testclient import TestClient
from markupsafe import escape

from conftest import LOCAL
from qa.api import create_app
from qa.config import Settings
from qa.records import Answer, Citation, Document
from qa.request_body import FORM
from qa.service import QAService, ServiceUnavailable
from qa.followup import EarlierTurn
from qa.chat_view import (HISTORY_TURNS, around_answer, converse, date_words, excerpt, Parts, group_by_article,
                          paragraphs_of, recent, sent_turns, shown_name, source_view, split_highlight, turn_view)
from qa.confidence import confidence_words
from qa.links import passage_check

VETO_QUESTION = "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"
UNSURE_QUESTION = "Who is the mayor of Vladivostok?"  # the articles do not say; the reader answers anyway, unsure


def path_of(href: str) -> str:
    parts = urlsplit(href)
    return f"{parts.path}?{parts.query}"


# Plain functions


def test_split_highlight_cuts_at_the_offsets():
    text = "Alpha beta gamma delta epsilon."
    parts = split_highlight(text, 6, 22, 11, 16)
    assert parts.before + parts.head + parts.answer + parts.tail + parts.after == text
    assert (parts.before, parts.head, parts.answer, parts.tail, parts.after) == (
        "Alpha ", "beta ", "gamma", " delta", " epsilon.")


def test_the_chat_marks_the_answer_in_its_own_sentence_even_if_the_article_changed_since():
    sentence = "Rusia memveto resolusi itu pada 28 Maret 2024."

    citation = Citation("a.txt", "Veto", "/sources/a.txt", None, sentence, 100, 146, 132, 145, 0.9)
    answered = Answer("Kapan Rusia memveto?", "28 Maret 2024", False, 0.9, None, [citation], sentence, 100, 146)
    parts = turn_view(answered).sentence  # drawn from the answer alone: the article is never looked up again
    assert (parts.head, parts.answer, parts.tail) == ("Rusia memveto resolusi itu pada ", "28 Maret 2024", ".")


def test_split_highlight_without_answer_marks_only_the_span():
    parts = split_highlight("one two three", 4, 7)
    assert (parts.head, parts.answer, parts.tail) == ("two", "", "")


@pytest.mark.parametrize("span", [(None, 3), (3, 3), (5, 2), (-1, 4), (0, 99)])
def test_split_highlight_refuses_spans_outside_the_text(span):
    assert split_highlight("short text", *span) is None


ARTICLE = "Judul\n\nSatu dua tiga.\nEmpat.\n\nLima enam tujuh."


def test_an_article_is_drawn_as_its_paragraphs_with_the_passage_marked_in_each_it_covers():
    # The passage runs from "tiga" over the break into "Lima enam"; the answer is "Empat".
    start, end = ARTICLE.index("tiga"), ARTICLE.index(" tujuh")
    answer = ARTICLE.index("Empat")
    paragraphs = paragraphs_of(ARTICLE, split_highlight(ARTICLE, start, end, answer, answer + 5))
    assert [p.text for p in paragraphs] == ["Judul", "Satu dua tiga.\nEmpat.", "Lima enam tujuh."]
    assert [p.cited for p in paragraphs] == [False, True, False]  # #cited on the passage's first paragraph only
    assert paragraphs[0].parts is None
    assert paragraphs[1].parts == Parts("Satu dua ", "tiga.\n", "Empat", ".", "")
    assert paragraphs[2].parts == Parts("", "Lima enam", "", "", " tujuh.")


def test_a_passage_that_starts_at_a_paragraph_break_is_cited_in_the_next_paragraph():
    paragraphs = paragraphs_of(ARTICLE, split_highlight(ARTICLE, ARTICLE.index("\n"), ARTICLE.index("\nEmpat")))
    assert [(p.parts is not None, p.cited) for p in paragraphs] == [(False, False), (True, True), (False, False)]
    assert paragraphs_of(ARTICLE, None) == [type(paragraphs[0])(text, None, False) for text in ARTICLE.split("\n\n")]


def test_split_highlight_drops_an_answer_outside_the_span():
    parts = split_highlight("one two three four", 4, 13, 14, 18)
    assert (parts.head, parts.answer, parts.tail) == ("two three", "", "")


SOURCE = Document("veto.txt", "Rusia memveto resolusi", "Rusia memveto resolusi itu pada 28 Maret 2024.\n\n"
                  "Dewan Keamanan PBB lalu bersidang lagi.",
                  {"source_url": "https://example.com/veto", "source_id": "veto-1", "publisher": "Antara",
                   "published_on": "2024-03-28"})
SENTENCE = (0, SOURCE.text.index("\n"))  # the first paragraph's sentence
DATE = (SOURCE.text.index("28 Maret"), SOURCE.text.index("."))


def link(start, end, answer=None, check=None) -> dict:
    """A source link's query parameters, as the citations give them out (qa.links.citation_url)."""
    params = {"start": str(start), "end": str(end)}
    if answer:
        params |= {"astart": str(answer[0]), "aend": str(answer[1])}
    params["check"] = passage_check(SOURCE.text[start:end]) if check is None else check
    return params


def marked(view) -> list[tuple[str, str, bool]]:
    """Each highlighted paragraph's passage words, the answer words in bold among them and whether #cited is there."""
    return [(p.parts.head + p.parts.answer + p.parts.tail, p.parts.answer, p.cited) for p in view.paragraphs if p.parts]


def test_a_source_link_highlights_its_passage_and_the_answer_in_bold():
    view = source_view(SOURCE, link(*SENTENCE, DATE))
    assert view.lost is None
    assert marked(view) == [("Rusia memveto resolusi itu pada 28 Maret 2024.", "28 Maret 2024", True)]
    assert [p.text for p in view.paragraphs] == ["Rusia memveto resolusi itu pada 28 Maret 2024.",
                                                 "Dewan Keamanan PBB lalu bersidang lagi."]
    assert (view.parts.head, view.parts.answer, view.parts.tail) == ("Rusia memveto resolusi itu pada ",
                                                                     "28 Maret 2024", ".")


def test_a_source_link_over_two_paragraphs_marks_both_and_lands_on_the_first():
    start, end = SOURCE.text.index("28 Maret"), SOURCE.text.index(" lalu")
    view = source_view(SOURCE, link(start, end))
    assert view.lost is None
    assert marked(view) == [("28 Maret 2024.", "", True), ("Dewan Keamanan PBB", "", False)]


def test_a_source_page_without_a_link_highlights_nothing_and_says_nothing():
    view = source_view(SOURCE, {})
    assert view.parts is None and view.lost is None and marked(view) == []
    assert [p.text for p in view.paragraphs] == SOURCE.text.split("\n\n")


@pytest.mark.parametrize("params, lost", [
    ({"start": "abc", "end": "10"}, "malformed"),
    ({"start": "9", "end": "3"}, "malformed"),
    ({"start": "9", "end": "9"}, "malformed"),
    ({"start": "12"}, "malformed"),  # a link cut short
    ({"end": "12"}, "malformed"),
    ({"start": "-1", "end": "5"}, "malformed"),
    ({"start": "²", "end": "5"}, "malformed"),  # a digit to str.isdigit, not an offset
    ({"start": "0", "end": "1" * 13}, "malformed"),  # more digits than any article has characters
    ({"start": "5", "end": "99999999"}, "passage"),  # past the end of this version of the article
    (link(*SENTENCE, DATE, check="0000000000"), "passage"),  # the article changed since the link was made
    ({"astart": str(DATE[0]), "aend": str(DATE[1])}, None),  # an answer with no passage asks for nothing
])
def test_a_source_link_that_cannot_be_highlighted_highlights_nothing_and_says_why(params, lost):
    view = source_view(SOURCE, params)
    assert view.lost == lost
    assert view.parts is None and marked(view) == []


@pytest.mark.parametrize("answer", [(40, 60), (5, 5), (DATE[0], None), (None, DATE[1])])
def test_a_source_link_whose_answer_is_outside_its_passage_highlights_only_the_passage(answer):
    params = link(0, 22)  # "Rusia memveto resolusi"
    params |= {name: str(value) for name, value in zip(("astart", "aend"), answer) if value is not None}
    view = source_view(SOURCE, params)
    assert view.lost == "answer"
    assert marked(view) == [("Rusia memveto resolusi", "", True)]


def test_a_source_link_without_a_check_is_highlighted_as_it_points():
    params = link(*SENTENCE, DATE)
    del params["check"]  # a link made before links carried one
    assert marked(source_view(SOURCE, params)) == [("Rusia memveto resolusi itu pada 28 Maret 2024.",
                                                    "28 Maret 2024", True)]


def test_a_source_page_shows_the_articles_own_metadata_and_its_address():
    view = source_view(SOURCE, {})
    assert view.meta == [("Publisher", "Antara"), ("Published on", "2024-03-28")]  # no source id, no address
    assert (view.original, view.original_text) == ("https://example.com/veto", "https://example.com/veto")
    script = Document("x.txt", "X", "Teks.", {"source_url": "javascript:alert(1)"})
    assert (source_view(script, {}).original, source_view(script, {}).original_text) == (None, "javascript:alert(1)")
    assert source_view(Document("y.txt", "Y", "Teks."), {}).original_text is None


def test_the_chat_script_puts_a_confidence_in_the_same_words():
    from qa.confidence import CONFIDENCE_BANDS
    from qa.web import WEB_DIR

    script = (WEB_DIR / "static" / "app.js").read_text(encoding="utf-8")
    bands = re.findall(r'if \(confidence >= ([\d.]+)\) return \["([^"]+)", "(\w+)"\];', script)
    assert [(float(lowest), words, level) for lowest, words, level in bands] == list(CONFIDENCE_BANDS[:-1])
    assert 'return ["%s", "%s"];' % CONFIDENCE_BANDS[-1][1:] in script


def test_the_chat_script_warns_under_an_unsure_answer_in_the_same_words():
    from qa.confidence import LOW_CONFIDENCE_NOTE
    from qa.web import WEB_DIR

    script = (WEB_DIR / "static" / "app.js").read_text(encoding="utf-8")
    assert f'const LOW_CONFIDENCE_NOTE = "{LOW_CONFIDENCE_NOTE}";' in script  # shown: tests/test_browser.py


def test_only_the_lowest_band_comes_with_a_warning():
    from qa.confidence import LOW_CONFIDENCE_NOTE, confidence_note

    assert confidence_note(0.29) == LOW_CONFIDENCE_NOTE and confidence_note(0.0) == LOW_CONFIDENCE_NOTE
    assert confidence_note(0.3) is None and confidence_note(0.9) is None


def test_confidence_and_dates_in_words():
    assert confidence_words(0.95) == ("High confidence", "high")
    assert confidence_words(0.85) == ("High confidence", "high") and confidence_words(0.849)[0] == "Fairly sure"
    assert confidence_words(0.7)[0] == "Fairly sure"
    assert confidence_words(0.3) == ("Fairly sure", "medium")
    assert confidence_words(0.29) == ("Low confidence", "low")
    assert date_words({"type": "date", "value": "2024-03-28"}) == ("28 March 2024", "2024-03-28")
    assert date_words({"type": "date", "value": "1950-06"}) == ("June 1950", "1950-06")
    assert date_words({"type": "date", "value": "1994"}) == ("1994", "1994")
    assert date_words({"type": "date_range", "value": "1950/1953"}) == ("1950–1953", None)
    assert date_words({"type": "decade", "value": "1990s"}) == ("the 1990s", None)
    assert date_words({"type": "decade", "value": "2000s", "qualifier": "early"}) == ("early 2000s", None)
    assert date_words({"type": "date", "value": "1990", "qualifier": "late"}) == ("late 1990", "1990")
    assert date_words(None) is None
    assert date_words({"type": "number", "value": 30}) is None  # "30" is not shown as "Date: 30"


def test_excerpt_cuts_at_a_word():
    assert excerpt("a  b\nc") == "a b c"
    cut = excerpt("word " * 100, 50)
    assert cut.endswith("word…") and len(cut) <= 51


def test_a_chat_form_carries_the_latest_turns_and_those_they_were_asked_with_within_bounds():
    turns = [EarlierTurn(str(i), f"answer {i}") for i in range(20)]
    assert recent(turns[:2]) == turns[:2]
    assert recent(turns) == turns[-2 * HISTORY_TURNS:]
    long = [EarlierTurn("x" * 500, "y" * 300)] * 10
    assert recent(long) == long[:5]  # 4,000 characters
    assert sent_turns(["a", "b", "c"], ["A", ""], 300) == [EarlierTurn("a", "A"), EarlierTurn("b", None),
                                                           EarlierTurn("c", None)]
    assert sent_turns(["a"], ["z" * 400], 300) == [EarlierTurn("a", "z" * 300)]


def test_without_javascript_an_earlier_turn_keeps_its_answer_as_the_conversation_grows():
    class Echo:
        """Answers a question with the answers it was asked after: an answer that depends on its history."""

        def ask(self, question, history=None):
            said = "+".join(turn.answer or "-" for turn in history or [])
            return Answer(question, f"{question}[{said}]", False, 0.9, None, [])

    service, earlier, seen = Echo(), [], {}
    for n in range(9):
        turns, earlier = converse(service, recent(earlier, 3), f"q{n}", 3)
        for turn in turns:  # every turn drawn again reads as it did when it was first answered
            assert seen.setdefault(turn.question, turn.answer.answer) == turn.answer.answer
        assert [t.question for t in turns] == [f"q{i}" for i in range(max(0, n - 3), n + 1)]
    assert seen["q3"] == "q3[q0[]+q1[q0[]]+q2[q0[]+q1[q0[]]]]"  # asked with the three turns before it


def _citation(doc_id: str, passage: str, start: int, answer: str) -> Citation:
    at = passage.index(answer)
    return Citation(doc_id, doc_id.upper(), f"/sources/{doc_id}?start={start}", None, passage, start,
                    start + len(passage), start + at, start + at + len(answer), 0.5)


def test_citations_are_grouped_by_article_in_the_order_of_their_best_passage():
    citations = [_citation("b", "Putin tiba di Pyongyang.", 10, "Pyongyang"),
                 _citation("a", "Di Pyongyang, Putin disambut.", 0, "Pyongyang"),
                 _citation("b", "Kim menyambut di Pyongyang.", 90, "Pyongyang")]
    groups = group_by_article(citations)
    assert [(g.number, g.title, len(g.passages)) for g in groups] == [(1, "B", 2), (2, "A", 1)]
    assert [p.href for p in groups[0].passages] == ["/sources/b?start=10", "/sources/b?start=90"]
    assert all(p.answer == "Pyongyang" for g in groups for p in g.passages)


def test_a_long_passage_is_cut_around_its_answer_at_words():
    passage = "kata " * 60 + "JAWABAN" + " lain" * 60
    cut = around_answer(_citation("a", passage, 0, "JAWABAN"), context=40)
    assert cut.answer == "JAWABAN"
    assert cut.before.startswith("…kata") and cut.before.endswith("kata ") and len(cut.before) <= 42
    assert cut.after.startswith(" lain") and cut.after.endswith("lain…") and len(cut.after) <= 42


# Pages over the bundled corpus


def test_chat_page_renders_everything_from_the_app(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    assert '<label for="question"' in html and 'name="question"' in html
    assert "Siapa Duta Besar Rusia untuk Korea Utara?" in html
    assert 'href="/sources"' in html
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert url.startswith(("/", "#")), f"{url} is not served by the app"
    for asset in ("/static/style.css", "/static/app.js", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200


def test_a_browser_asking_for_favicon_ico_on_a_json_page_gets_the_icon(client):
    response = client.get("/favicon.ico")
    assert (response.status_code, response.headers["content-type"]) == (200, "image/svg+xml")
    assert response.content == client.get("/static/favicon.svg").content


def test_form_post_answers_without_javascript(client, service):
    response = client.post("/", data={"question": VETO_QUESTION})
    assert response.status_code == 200
    html = response.text
    assert "28 Maret 2024" in html
    assert "<mark>28 Maret 2024</mark>" in html
    assert '<time datetime="2024-03-28">28 March 2024</time>' in html
    answer = service.ask(VETO_QUESTION)
    assert confidence_words(answer.confidence)[0] in html  # the API's confidence, in words
    citation = answer.citations[0]
    assert f'href="{escape(citation.url)}"' in html
    assert 'action="/#turn-2"' in html and 'id="turn-1"' in html


def test_an_unsure_answer_comes_with_a_warning_and_a_surer_one_without(client, service):
    from qa.confidence import LOW_CONFIDENCE_NOTE

    unsure, sure = service.ask(UNSURE_QUESTION), service.ask(VETO_QUESTION)
    assert not unsure.abstained and confidence_words(unsure.confidence)[1] == "low"  # the case under test
    assert not sure.abstained and confidence_words(sure.confidence)[1] != "low"
    html = client.post("/", data={"question": UNSURE_QUESTION}).text
    assert f'<p class="note caution">{LOW_CONFIDENCE_NOTE}</p>' in html and escape(unsure.answer) in html
    assert LOW_CONFIDENCE_NOTE not in client.post("/", data={"question": VETO_QUESTION}).text


def test_a_number_answer_is_not_shown_as_a_date(client, service):
    question = "Berapa kuda yang dibawa kereta dari Rusia ke Korea Utara?"
    answer = service.ask(question)
    assert answer.answer == "30" and answer.normalized == {"type": "number", "value": 30}
    html = client.post("/", data={"question": question}).text
    assert '<span class="sr-only">Answer: </span>30</p>' in html
    assert "Date:" not in html


def test_form_post_keeps_the_earlier_questions(client):
    first = "Siapa Duta Besar Rusia untuk Korea Utara?"
    response = client.post("/", data={"history": [first], "question": VETO_QUESTION})
    html = response.text
    assert html.index(first) < html.index(VETO_QUESTION, html.index('id="conversation"'))
    assert 'id="turn-2"' in html
    hidden = re.findall(r'<input type="hidden" name="history" value="([^"]*)">', html)
    answers = re.findall(r'<input type="hidden" name="history_answer" value="([^"]*)">', html)
    assert hidden[-2:] == [first, VETO_QUESTION] and answers[-1] == "28 Maret 2024"


def test_without_javascript_a_long_conversation_says_its_earlier_questions_are_not_shown(client):
    questions = [f"Kapan Putin tiba di Pyongyang? ({n})" for n in range(HISTORY_TURNS + 1)]
    html = client.post("/", data={"history": questions, "history_answer": ["19 Juni 2024"] * len(questions),
                                  "question": VETO_QUESTION}).text
    assert f"Earlier questions of this conversation are not shown; the latest {HISTORY_TURNS + 1} are." in html
    assert questions[0] not in html.split('id="conversation"')[1].split("</section>")[0]
    assert "Earlier questions" not in client.post("/", data={"question": VETO_QUESTION}).text


def test_the_examples_show_answers_in_both_languages_and_a_refusal(client, service):
    from qa.web import EXAMPLES

    html = client.get("/").text
    replies = [service.ask(example) for example in EXAMPLES]
    for example, reply in zip(EXAMPLES, replies):
        assert f'value="{escape(example)}"' in html
    answered = {reply.answer for reply in replies if not reply.abstained}
    assert answered == {"19 Juni 2024", "Alexander Matsegora", "dua jam"}
    assert [reply.abstained for reply in replies] == [False, False, False, True]


def test_example_button_posts_its_question(client):
    response = client.post("/", data={"example": VETO_QUESTION})
    assert response.status_code == 200 and "<mark>28 Maret 2024</mark>" in response.text


def test_a_question_too_long_is_refused_with_its_length_not_cut_short(client):
    question = "Kapan Putin tiba di Pyongyang? " * 30
    assert "maxlength" not in client.get("/").text  # a browser would cut a pasted question without a word
    response = client.post("/", data={"question": question})
    assert response.status_code == 422
    assert "Question is too long (930 characters; the limit is 500)." in response.text
    assert "<title>Error: Ask the articles · News QA</title>" in response.text  # what a screen reader reads first
    assert "<title>Ask the articles · News QA</title>" in client.get("/").text


def test_a_refused_question_lands_on_the_question_box_not_on_a_turn_that_was_not_drawn(client):
    # The form posts to /#turn-2 after one turn; refused, the page draws no turn 2, so the browser would stay at
    # the top. The anchor is on the question box instead.
    page = client.post("/", data={"history": "Kapan Putin tiba di Pyongyang?", "history_answer": "19 Juni 2024",
                                  "question": "x" * 501})
    assert page.status_code == 422 and 'action="/#turn-2"' in page.text
    assert 'id="turn-2"' in page.text and page.text.index('id="turn-2"') < page.text.index('id="ask"')
    answered = client.post("/", data={"question": "Kapan Putin tiba di Pyongyang?"})
    assert answered.text.count('id="turn-1"') == 1 and 'id="turn-2"' not in answered.text


@pytest.mark.parametrize("question", ["?!?!...", "🇷🇺🤝🇰🇵❓"])
def test_a_question_without_a_letter_or_digit_is_told_why_not_answered(client, question):
    response = client.post("/", data={"question": question})
    assert response.status_code == 422
    assert "A question needs words: this one has no letter or digit." in response.text
    assert "The sources don" not in response.text and '<article class="turn"' not in response.text


def test_empty_question_says_what_is_wrong(client):
    response = client.post("/", data={"question": "   "})
    assert response.status_code == 422
    assert "Please type a question first." in response.text
    assert 'aria-invalid="true"' in response.text


def test_question_with_html_shows_as_text(client):
    question = '<script>alert("q")</script><b>Kapan</b> Rusia memveto resolusi?'
    response = client.post("/", data={"question": question})
    assert response.status_code == 200
    assert "<script>alert" not in response.text and "<b>Kapan" not in response.text
    assert "&lt;script&gt;alert(&#34;q&#34;)&lt;/script&gt;&lt;b&gt;Kapan&lt;/b&gt;" in response.text


def test_source_viewer_highlights_the_cited_passage_and_answer(client, service):
    answer = service.ask(VETO_QUESTION)
    citation = answer.citations[0]
    text = service.document(citation.doc_id).text
    response = client.get(path_of(citation.url))
    assert response.status_code == 200
    html = response.text
    # The passage is marked in each paragraph it covers, the answer inside the paragraph that holds it.
    answer_mark = f'<mark class="answer-span">{escape(answer.answer)}</mark>'
    assert html.count(answer_mark) == 1
    marked = re.findall(r'<mark class="passage"( id="cited" tabindex="-1")?>(.*?)</mark>',
                        html.replace(answer_mark, str(escape(answer.answer))), flags=re.S)
    assert marked and marked[0][0] and not any(cited for cited, _ in marked[1:])
    assert "".join(inner for _, inner in marked) == str(escape(re.sub(r"\n{2,}", "", text[citation.start:citation.end])))
    assert text[citation.answer_start:citation.answer_end] == answer.answer == "28 Maret 2024"
    assert f"<h1 lang=\"id\">{escape(citation.title)}</h1>" in html
    assert "The linked passage is highlighted and the words quoted from it are in bold." in html
    assert "Source id" not in html  # the corpus's key for question files, nothing a reader can use


LOST_PASSAGE = "The passage this link points to is not in this version of the article"
NO_RANGE = "This link's passage range is not a valid one"


@pytest.mark.parametrize("query, notice", [
    ("", None),
    ("?start=5&end=99999999", LOST_PASSAGE),  # past the end of this version of the article
    ("?start=abc&end=10", NO_RANGE),
    ("?start=9&end=3", NO_RANGE),
    ("?start=12", NO_RANGE),  # a link cut short
    ("?start=%C2%B2&end=5", NO_RANGE),  # a superscript two is a digit to str.isdigit, not an offset
    ("?start=0&end=" + "1" * 4301, NO_RANGE),  # more digits than Python converts by default
])
def test_source_viewer_without_usable_offsets_shows_the_plain_text_and_says_why(client, service, query, notice):
    doc = service.documents()[0]
    response = client.get(f"/sources/{doc.doc_id}{query}")
    assert response.status_code == 200
    assert "<mark" not in response.text
    assert re.findall(r"<p>(.*?)</p>", response.text.split('<div class="text" lang="id">')[1], flags=re.S) == [
        str(escape(paragraph)) for paragraph in doc.text.split("\n\n")]
    for text in (LOST_PASSAGE, NO_RANGE):
        assert (text in response.text) is (text == notice)


def test_a_link_whose_answer_is_outside_its_passage_highlights_the_passage_and_says_so(client, service):
    doc = service.documents()[0]
    html = client.get(f"/sources/{doc.doc_id}?start=10&end=40&astart=500&aend=510").text
    assert '<mark class="passage" id="cited"' in html and "answer-span" not in html
    assert "The answer this link points to is not inside the cited passage" in html


def test_a_form_too_large_to_read_gets_the_chat_page_saying_so(client):
    response = client.post("/", data={"question": "\u91d1" * 8000}, headers={"accept": "text/html"})
    assert response.status_code == 413 and response.headers["content-type"].startswith("text/html")
    assert ("The question is too long to send (the form is over 64 kB); a question has at most 500 characters."
            in response.text)


def test_a_form_that_is_not_utf8_is_refused_not_answered_with_replacement_characters(client):
    response = client.post("/", content=b"question=%FF%FE+rusak", headers={"content-type": FORM})
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert "The form is not UTF-8 text" in response.text and "\ufffd" not in response.text


def test_json_sent_to_the_chat_page_says_where_json_goes(client):
    response = client.post("/", json={"question": "Kapan Putin tiba?"})
    assert response.status_code == 415 and response.headers["content-type"].startswith("text/html")
    assert "not application/json: to ask from a program, send JSON to /ask." in response.text


def test_a_form_the_server_will_not_parse_gets_the_chat_page_saying_so(client):
    response = client.post("/", content="&".join(f"f{n}=x" for n in range(1001)),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert "The form could not be read (Too many fields. Maximum number of fields is 1000)." in response.text


@pytest.mark.parametrize("field", ["question", "history"])
def test_a_multipart_form_or_a_file_sent_as_a_question_is_refused_on_the_chat_page(client, field):
    """The page's own form is urlencoded; a multipart one could carry files, and bytes that are not UTF-8 would
    be read as Latin-1."""
    data = {"question": "Kapan Putin tiba?"} if field == "history" else {}
    response = client.post("/", data=data, files={field: ("q.txt", b"Kapan Putin tiba?", "text/plain")})
    assert response.status_code == 415 and response.headers["content-type"].startswith("text/html")
    assert (f"The chat page reads its own form ({FORM}), not multipart/form-data: to ask from a program, send "
            "JSON to /ask.") in response.text
    assert "UploadFile" not in response.text


def test_a_file_name_with_a_direction_override_is_shown_as_it_is_spelt():
    assert shown_name("photo\u202etxt.gpj") == "photo<U+202E>txt.gpj"
    assert shown_name("artikel baru (2).txt") == "artikel baru (2).txt"


def test_a_wrong_link_gets_a_page_in_a_browser_and_json_elsewhere(client):
    in_browser = client.get("/no-such-page", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert in_browser.status_code == 404 and in_browser.headers["content-type"].startswith("text/html")
    assert "There is no page at /no-such-page." in in_browser.text and 'href="/"' in in_browser.text
    by_program = client.get("/no-such-page")
    assert by_program.status_code == 404 and by_program.json() == {"detail": "Not Found"}
    assert client.get("/api/sources/nope", headers={"accept": "text/html"}).json()["detail"].startswith("no article")


def test_unknown_source_is_a_404_page(client):
    for path in ("/sources/no-such-article.txt", "/sources/..%2Fpyproject.toml", "/sources/%2e%2e/corpus/x"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "No such article" in response.text


def test_sources_list_links_every_article(client, service):
    response = client.get("/sources")
    assert response.status_code == 200
    # With a trailing slash too, as "/timeline/" (not "There is no article with the id “”").
    slashed = client.get("/sources/")
    assert (slashed.status_code, slashed.text) == (200, response.text)
    assert [r.status_code for r in slashed.history] == [307]
    for doc in service.documents():
        assert str(escape(doc.title)) in response.text
        assert f'href="/sources/{doc.doc_id}"' in response.text


# Hostile article text, through a service that serves one made-up article


HOSTILE_TEXT = "Intro <script>alert('doc')</script> then <b>Jakarta</b> & <i>more</i>."
HOSTILE_TITLE = "<img src=x onerror=alert(1)> Title"


class HostileService(QAService):
    def __init__(self) -> None:
        super().__init__(Settings())
        self.doc = Document("evil.html", HOSTILE_TITLE, HOSTILE_TEXT,
                            {"source_url": "javascript:alert(1)", "publisher": "<b>Pub</b>"})

    def documents(self):
        return [self.doc]

    def document(self, doc_id):
        return self.doc if doc_id == self.doc.doc_id else None

    def ask(self, question, top_k=None, history=None):
        answer_start = HOSTILE_TEXT.index("<b>")
        answer_end = answer_start + len("<b>Jakarta</b>")
        citation = Citation(self.doc.doc_id, HOSTILE_TITLE, "/sources/evil.html#p0", None, HOSTILE_TEXT, 0,
                            len(HOSTILE_TEXT), answer_start, answer_end, 0.9)
        return Answer(question, HOSTILE_TEXT[answer_start:answer_end], False, 0.9, None, [citation],
                      HOSTILE_TEXT, 0, len(HOSTILE_TEXT))


@pytest.fixture(scope="module")
def hostile_client():
    with TestClient(create_app(Settings(), service=HostileService()), base_url=LOCAL) as test_client:
        yield test_client


def test_article_html_in_an_answer_renders_as_text(hostile_client):
    html = hostile_client.post("/", data={"question": "Where?"}).text
    assert "<script>alert('doc')" not in html and "<b>Jakarta</b>" not in html and "<img src=x" not in html
    assert "<mark>&lt;b&gt;Jakarta&lt;/b&gt;</mark>" in html
    assert "&lt;img src=x onerror=alert(1)&gt; Title" in html


def test_article_html_in_the_viewer_renders_as_text(hostile_client):
    html = hostile_client.get("/sources/evil.html?start=0&end=20").text
    assert "<script>alert('doc')" not in html and "<img src=x" not in html and "<b>Pub</b>" not in html
    assert "Intro &lt;script&gt;alert(</mark>&#39;doc&#39;)" in html
    assert "&lt;/script&gt; then &lt;b&gt;Jakarta&lt;/b&gt; &amp;" in html
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html  # shown, not linked
    listed = hostile_client.get("/api/sources").json()[0]
    assert listed["source_url"] is None and listed["meta"]["source_url"] == "javascript:alert(1)"
    listing = hostile_client.get("/sources").text
    assert "<img src=x" not in listing and "&lt;img src=x onerror=alert(1)&gt; Title" in listing


class DownService(QAService):
    def __init__(self) -> None:
        super().__init__(Settings())

    def _down(self, *args, **kwargs):
        raise ServiceUnavailable("no index yet: run `qa index`")

    ask = documents = document = _down


def test_pages_say_when_no_index_is_loaded():
    with TestClient(create_app(Settings(), service=DownService()), base_url=LOCAL) as down:
        assert down.get("/").status_code == 200
        for response in (down.post("/", data={"question": "Siapa?"}), down.get("/sources"), down.get("/sources/x")):
            assert response.status_code == 503
            assert "run `qa index`" in response.text


def test_an_answer_shows_one_chip_per_article_that_opens_to_its_passages(client):
    question = "Di kota mana Kim Jong Un dan Putin mengadakan pertemuan puncak pertama mereka?"
    body = client.post("/ask", json={"question": question}).json()
    html = client.post("/", data={"question": question}).text
    articles = list(dict.fromkeys(c["doc_id"] for c in body["citations"]))
    assert len(articles) >= 2
    assert html.count('<summary class="chip">') == len(articles)
    counts = [int(n) for n in re.findall(r'class="chip-count">(\d+) passages?<', html)]
    assert counts == [sum(c["doc_id"] == doc for c in body["citations"]) for doc in articles]
    assert html.count(f"<mark>{body['answer']}</mark>") == len(body["citations"]) + 1  # + the answer's sentence
    for citation in body["citations"]:
        assert f'href="{escape(citation["url"])}"' in html


def test_the_no_javascript_chat_jumps_to_the_new_answer_once_old_turns_fall_off(client):
    earlier = [f"Kapan Putin tiba di Pyongyang {n}?" for n in range(HISTORY_TURNS)]
    html = client.post("/", data={"history": earlier, "question": "Siapa Duta Besar Rusia untuk Korea Utara?"}).text
    assert html.count('<article class="turn"') == HISTORY_TURNS + 1
    # The next post carries the latest HISTORY_TURNS questions, so its answer is turn HISTORY_TURNS + 1 again.
    assert html.count(f'action="/#turn-{HISTORY_TURNS + 1}"') == 1 + 4 and "#turn-7" not in html
    again = client.post("/", data={"history": re.findall(r'name="history" value="([^"]*)"', html)[:HISTORY_TURNS],
                                   "question": "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"}).text
    assert f'id="turn-{HISTORY_TURNS + 1}"' in again


def test_both_chats_send_no_more_earlier_turns_than_the_service_accepts(service, embedder):
    settings = service.settings.model_copy(update={"max_history_turns": 1})
    with TestClient(create_app(settings, service=QAService(settings, embedder=embedder)), base_url=LOCAL) as strict:
        response = strict.post("/", data={"history": ["Siapa Duta Besar Rusia untuk Korea Utara?",
                                                      "Apa harapannya untuk tahun 2024?"],
                                          "question": "Siapa menurut dia akan berkunjung ke Pyongyang?"})
    assert response.status_code == 200, response.text
    assert response.text.count('<article class="turn"') == 2  # the latest earlier question and the new one
    assert 'data-history-turns="1"' in response.text  # what web/static/app.js sends with /ask


def test_the_no_javascript_chat_carries_the_conversation_and_shows_the_earlier_words(client):
    ambassador, hope, visitor = ("Siapa Duta Besar Rusia untuk Korea Utara?", "Apa harapannya untuk tahun 2024?",
                                 "Siapa menurut dia akan berkunjung ke Pyongyang?")
    html = client.post("/", data={"history": [ambassador, hope], "question": visitor}).text
    assert html.count('<article class="turn"') == 3
    third = html[html.index('id="turn-3"'):]
    assert "Alexander Matsegora" in third[:third.index('class="reply')]  # the context line, before the answer
    assert re.search(r'<p class="answer"[^>]*><span class="sr-only">Answer: </span>[^<]*Vladimir Putin', third)
    assert html.count(f'<input type="hidden" name="history" value="{visitor}">') == 1 + 4  # ask form + examples


def test_history_text_is_escaped_everywhere_it_is_shown(client):
    hostile = '<img src=x onerror=alert(1)>"><script>alert(2)</script> Siapa dia?'
    html = client.post("/", data={"history": [hostile], "question": "Kapan dia datang?"}).text
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    assert str(escape(hostile)) in html


def test_a_refusal_says_the_sources_do_not_say_and_lists_the_closest_passages(client):
    html = client.post("/", data={"question": "Who won the 2022 FIFA World Cup?"}).text
    reply = html[html.index('id="turn-1"'):]
    assert "The sources don’t say." in reply
    assert "No passage answers this clearly enough to quote. These come closest:" in reply
    related = reply[reply.index('<ol class="related">'):reply.index("</ol>")]
    links = re.findall(r'<a href="(/sources/[^"]+)">', related)
    assert len(links) >= 1
    # Opened, a related passage is not called cited: it was not an answer.
    opened = client.get(links[0].replace("&amp;", "&")).text
    assert "The linked passage is highlighted." in opened and "quoted from it" not in opened



def test_overlapping_passages_of_one_article_are_listed_once():
    from qa.records import Citation
    from qa.chat_view import apart

    def cited(doc: str, start: int, end: int) -> Citation:
        return Citation(doc, doc, f"/sources/{doc}?start={start}", None, "x", start, end, None, None, 0.5)

    citations = [cited("a", 100, 500), cited("b", 100, 500), cited("a", 400, 900), cited("a", 500, 700)]
    assert [(c.doc_id, c.start) for c in apart(citations)] == [("a", 100), ("b", 100), ("a", 500)]


def test_a_refusal_lists_the_closest_passages_without_overlaps(client, service):
    from qa.chat_view import apart

    question = "Who is Kim Jong Un's wife?"
    answer = service.ask(question)
    assert answer.abstained
    html = client.post("/", data={"question": question}).text
    related = html[html.index('<ol class="related">'):]
    related = related[:related.index("</ol>")]
    links = [link.replace("&amp;", "&") for link in re.findall(r'<a href="(/sources/[^"]+)">', related)]
    assert links == [c.url for c in apart(answer.citations)] and links


def test_a_citation_link_made_before_its_article_changed_highlights_nothing_and_says_so(client, service):
    citation = service.ask("Kapan Rusia memveto resolusi Dewan Keamanan PBB?").citations[0]
    url = path_of(citation.url)
    assert "check=" in url
    assert '<mark class="passage" id="cited"' in client.get(url).text
    # The same characters, but the link was made for other text there (as after an edit moved the passage).
    stale = re.sub(r"check=[0-9a-f]+", "check=0000000000", url)
    html = client.get(stale).text
    assert "<mark" not in html and LOST_PASSAGE in html


def test_a_link_to_an_article_no_longer_served_says_why_and_where_the_articles_are(client):
    response = client.get("/sources/dihapus.txt?start=0&end=10")
    assert response.status_code == 404
    assert "There is no article with the id “dihapus.txt”: it may have been removed or renamed" in response.text
    assert 'href="/sources"' in response.text
    long_id = client.get("/sources/" + "x" * 10_000)
    assert long_id.status_code == 404 and "x" * 201 not in long_id.text
