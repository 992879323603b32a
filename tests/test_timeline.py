"""The timeline: every dated sentence of the articles, its date normalised, offsets that slice, filters."""

import re

import pytest

BACKENDS = ["files", "postgres"]  # the service and client tests run against both stores (tests/conftest.py)

from qa.dates import find_dates

TIMELINE_ARTICLE = "hubungan-rusia-korea-utara-selama-beberapa-dekade.txt"
# An independent, deliberately plain scan: a sentence is dated when it holds a four-digit year.
YEAR = re.compile(r"(?<![\d.,])(?:19|20)\d\d(?!\d)")


@pytest.mark.parametrize("text, precision, value, earliest, latest", [
    ("28 Maret 2024 — Rusia memveto", "day", "2024-03-28", "2024-03-28", "2024-03-28"),
    ("pada bulan Juni 1950, memicu", "month", "1950-06", "1950-06-01", "1950-06-30"),
    ("Uni Soviet pada tahun 1991 membuat", "year", "1991", "1991-01-01", "1991-12-31"),
    ("1990-an — Runtuhnya", "decade", "1990s", "1990-01-01", "1999-12-31"),
    ("Awal tahun 2000an — Setelah", "decade", "2000s", "2000-01-01", "2002-12-31"),
    ("Perang Korea 1950-1953.", "range", "1950/1953", "1950-01-01", "1953-12-31"),
    ("16 Januari 2024 – Menteri", "day", "2024-01-16", "2024-01-16", "2024-01-16"),
    ("diteken pada 3/2/2025 di Moskow", "day", "2025-02-03", "2025-02-03", "2025-02-03"),  # day first
    ("tanggal 19.06.2024, Putin", "day", "2024-06-19", "2024-06-19", "2024-06-19"),
    ("(2024-06-19) Putin tiba", "day", "2024-06-19", "2024-06-19", "2024-06-19"),
    ("perang 1950 hingga 1953 itu", "range", "1950/1953", "1950-01-01", "1953-12-31"),
    ("Pertengahan tahun 1950-an hingga 1960-an — Uni Soviet", "range", "1953/1969", "1953-01-01", "1969-12-31"),
    ("Pertengahan hingga akhir tahun 2000an — Meskipun", "range", "2003/2009", "2003-01-01", "2009-12-31"),
])
def test_dates_are_found_with_their_precision(text, precision, value, earliest, latest):
    (date,) = find_dates(text)
    assert (date.precision, date.value, date.earliest, date.latest) == (precision, value, earliest, latest)
    assert text[date.start:date.end] == date.text


def test_a_qualified_decade_says_which_part():
    (date,) = find_dates("Awal tahun 2000an")
    assert date.qualifier == "early"


def test_parts_of_a_decade_are_worded_as_parts_not_as_exact_years(client):
    from qa.timeline_view import date_label

    (date,) = find_dates("Pertengahan hingga akhir tahun 2000an")
    assert (date.value, date.qualifier, date_label(date)) == ("2003/2009", "mid-to-late", "mid-to-late 2000s")
    (date,) = find_dates("Pertengahan tahun 1950-an hingga 1960-an")  # decades apart: worded by the years
    assert (date.qualifier, date_label(date)) == (None, "1953–1969")
    (date,) = find_dates("awal hingga akhir tahun 1990-an")  # from its start to its end: the decade itself
    assert (date.precision, date.value, date_label(date)) == ("decade", "1990s", "the 1990s")
    (date,) = find_dates("pertengahan hingga pertengahan tahun 2000an")  # one part, said twice
    assert (date.precision, date.latest, date_label(date)) == ("decade", "2006-12-31", "mid 2000s")
    html = client.get("/timeline").text
    assert "mid-to-late 2000s" in html and "2003–2009" not in html


@pytest.mark.parametrize("text", ["Rabu (19/6) pagi", "sekitar 1.950 orang", "nomor 12345 dan 20245", "pukul 19.30",
                                  "kode 13/13/2024", "tanggal 31/2/2024", "versi 1.2.3/4/2024",
                                  "20.000 hingga 50.000 pekerja"])
def test_what_is_not_a_date_with_a_year_is_not_placed(text):
    assert find_dates(text) == []


def test_the_timeline_lists_every_dated_sentence_of_the_articles(client, service):
    index = service.state.index
    expected = set()
    for doc_id, span in index.sentence_spans:
        if YEAR.search(index.documents[doc_id].text[span.start:span.end]):
            expected.add((doc_id, span.start))
    body = client.get("/api/timeline").json()
    assert body["count"] == body["total"] == len(expected) > 40
    assert {(e["doc_id"], e["sentence_start"]) for e in body["events"]} == expected


def test_each_event_slices_to_its_sentence_and_its_date(client):
    events = client.get("/api/timeline").json()["events"]
    texts = {}
    for event in events:
        if event["doc_id"] not in texts:
            texts[event["doc_id"]] = client.get(f"/api/sources/{event['doc_id']}").json()["text"]
        text = texts[event["doc_id"]]
        assert text[event["sentence_start"]:event["sentence_end"]] == event["sentence"]
        for date in [event["date"], *event["other_dates"]]:
            assert text[date["start"]:date["end"]] == date["text"]
            assert event["sentence_start"] <= date["start"] < date["end"] <= event["sentence_end"]
        assert f"start={event['sentence_start']}&end={event['sentence_end']}" in event["url"]


def test_events_come_earliest_first(client):
    earliest = [e["date"]["earliest"] for e in client.get("/api/timeline").json()["events"]]
    assert earliest == sorted(earliest)


def test_the_veto_is_on_the_timeline_as_a_day(client):
    events = client.get("/api/timeline", params={"from": 2024, "to": 2024}).json()["events"]
    veto = [e for e in events if "memveto" in e["sentence"] and e["doc_id"] == TIMELINE_ARTICLE]
    assert [(e["date"]["value"], e["date"]["label"]) for e in veto] == [("2024-03-28", "28 March 2024")]


def test_filters_by_article_and_by_years_that_overlap(client):
    everything = client.get("/api/timeline").json()
    one = client.get("/api/timeline", params={"article": TIMELINE_ARTICLE}).json()
    assert 0 < one["count"] < everything["count"]
    assert {e["doc_id"] for e in one["events"]} == {TIMELINE_ARTICLE}
    war = client.get("/api/timeline", params={"from": 1952, "to": 1952}).json()
    assert war["count"] > 0
    assert all(e["date"]["earliest"][:4] <= "1952" <= e["date"]["latest"][:4] for e in war["events"])
    assert any(e["date"]["precision"] == "range" and e["date"]["value"] == "1950/1953" for e in war["events"])


@pytest.mark.parametrize("params, status, message", [
    ({"from": "abc"}, 422, "from must be a year such as 1950, not 'abc'"),
    ({"to": "20245"}, 422, "to must be a year such as 1950, not '20245'"),
    ({"from": "2024", "to": "2000"}, 422, "from (2024) is after to (2000)"),
    ({"article": "no-such-article.txt"}, 404, "no article with id 'no-such-article.txt'"),
])
def test_bad_filters_get_a_4xx_that_says_what_is_wrong(client, params, status, message):
    response = client.get("/api/timeline", params=params)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_the_page_draws_the_axis_and_lists_the_events(client):
    html = client.get("/timeline").text
    count = client.get("/api/timeline").json()["count"]
    assert html.count('<li class="event"') == count
    assert html.count('<circle class="dot"') == count
    assert "<svg" in html and "<script" not in html.split("</head>")[1]
    assert '<time datetime="2024-03-28">28 March 2024</time>' in html


def test_the_page_marks_every_date_a_sentence_states_so_an_answer_lands_on_its_own_date(client):
    # "2011-2012 — … pada Agustus 2011, Kim Jong Il meninggal …": an answer "Agustus 2011" links to this event.
    events = client.get("/api/timeline").json()["events"]
    event = next(e for e in events if e["sentence"].startswith("2011-2012 —"))
    assert [d["text"] for d in event["other_dates"]][:1] == ["Agustus 2011"]
    html = client.get("/timeline").text
    item = html[html.index(f'id="{event["id"]}"'):]
    item = item[:item.index("</li>")]
    assert "<mark>2011-2012</mark>" in item and "<mark>Agustus 2011</mark>" in item
    assert "2011–2012 · August 2011" in item


def test_the_page_filters_and_says_so(client):
    html = client.get("/timeline", params={"article": TIMELINE_ARTICLE, "from": "2000", "to": "2010"}).text
    api = client.get("/api/timeline", params={"article": TIMELINE_ARTICLE, "from": "2000", "to": "2010"}).json()
    assert html.count('<li class="event"') == api["count"] > 0
    assert f"{api['count']} of {api['total']} events" in html
    assert 'value="2000"' in html and 'value="2010"' in html and "selected" in html


def test_the_page_explains_a_bad_filter_under_the_form_as_filled_in_and_shows_the_whole_timeline(client):
    response = client.get("/timeline", params={"from": "2024", "to": "1990"})
    assert response.status_code == 422
    html = response.text
    assert ('<p id="filter-problem" class="error" role="alert">From (2024) is after to (1990). '
            "The whole timeline is shown.</p>") in html
    assert 'value="2024" aria-invalid="true" aria-describedby="filter-problem"' in html
    assert 'value="1990" aria-invalid="true" aria-describedby="filter-problem"' in html
    assert html.count('<li class="event"') == client.get("/api/timeline").json()["total"]
    assert '<a href="/timeline">Clear</a>' in html
    assert "<title>Error: Timeline · News QA</title>" in html


@pytest.mark.parametrize("params, invalid, valid", [
    ({"from": "abc", "to": "2000"}, 'id="from" name="from" type="text" inputmode="numeric" size="6" '
     'autocomplete="off" value="abc" aria-invalid="true"', 'value="2000">'),
    ({"from": "1990", "to": "x"}, 'value="x" aria-invalid="true"', 'value="1990">'),
    ({"article": "nope", "from": "1990"}, '<select id="article" name="article" aria-invalid="true" '
     'aria-describedby="filter-problem">', 'value="1990">'),
])
def test_the_page_marks_only_the_field_a_bad_filter_is_about_and_keeps_what_was_typed(client, params, invalid, valid):
    html = client.get("/timeline", params=params).text
    assert invalid in html
    assert valid in html  # the other field, as typed, neither invalid nor described by the problem
    assert html.count('aria-invalid="true"') == 1


def test_a_good_filter_marks_no_field_and_keeps_the_plain_title(client):
    html = client.get("/timeline", params={"from": "1990"}).text
    assert "aria-invalid" not in html and "<title>Timeline · News QA</title>" in html


@pytest.mark.parametrize("params, status, message", [
    ({"from": "abc"}, 422, "From must be a year such as 1950, not &#39;abc&#39;."),
    ({"article": "no-such-article.txt"}, 404, "No article with id &#39;no-such-article.txt&#39;."),
])
def test_the_page_and_the_api_refuse_a_filter_alike(client, params, status, message):
    page = client.get("/timeline", params=params)
    api = client.get("/api/timeline", params=params)
    assert page.status_code == api.status_code == status
    assert message in page.text and '<form class="timeline-filter"' in page.text
    assert api.json()["detail"].lower() in message.lower().replace("&#39;", "'")


def test_a_date_answer_links_to_its_place_on_the_timeline(client):
    body = client.post("/ask", json={"question": "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"}).json()
    assert body["answer"] == "28 Maret 2024"
    anchor = body["timeline_url"].removeprefix("/timeline#")
    assert f'id="{anchor}"' in client.get("/timeline").text
    assert body["timeline_url"] in client.post("/", data={"question": "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"}).text


def test_an_answer_that_is_not_a_date_has_no_timeline_link(client):
    body = client.post("/ask", json={"question": "Siapa Duta Besar Rusia untuk Korea Utara?"}).json()
    assert body["answer"] == "Alexander Matsegora" and body["timeline_url"] is None


def test_the_timeline_changes_when_an_article_changes(make_corpus, embedder):
    from qa.config import Settings
    from qa.indexer import build_index
    from qa.service import QAService

    corpus, index = make_corpus({"a.txt": "Jembatan itu diresmikan pada 4 April 2016. Panjangnya 1.140 meter."})
    settings = Settings(corpus_dir=corpus, index_dir=index, reload_check_interval_s=0)
    build_index(settings, embedder=embedder)
    service = QAService(settings, embedder=embedder)
    assert [e.date.value for e in service.select_timeline(None, None, None).events] == ["2016-04-04"]
    (corpus / "a.txt").write_text("Jembatan itu diresmikan pada 4 April 2016. Pembangunannya dimulai tahun 2011.",
                                  encoding="utf-8")
    build_index(settings, embedder=embedder)
    service.refresh(force=True, wait=True)
    assert [e.date.value for e in service.select_timeline(None, None, None).events] == ["2011", "2016-04-04"]


def test_an_articles_headline_is_not_an_event_of_its_own(make_corpus, embedder):
    from qa.config import Settings
    from qa.indexer import build_index
    from qa.service import QAService

    corpus, index = make_corpus({"festival.md": "---\ntitle: Festival Layang-layang Sanur 2025\n---\n"
                                                "Festival Layang-layang Sanur 2025\n\n"
                                                "Festival itu dibuka pada 12 Juli 2025 di Pantai Padang Galak."})
    settings = Settings(corpus_dir=corpus, index_dir=index, reload_check_interval_s=0)
    build_index(settings, embedder=embedder)
    events = QAService(settings, embedder=embedder).select_timeline(None, None, None).events
    assert [(e.sentence, e.date.value) for e in events] == [
        ("Festival itu dibuka pada 12 Juli 2025 di Pantai Padang Galak.", "2025-07-12")]


@pytest.mark.parametrize("years, sentence_start", [
    ("from=1960&to=1969", "Pertengahan tahun 1950-an hingga 1960-an"),  # inside a range of decades
    ("from=2004&to=2006", "Pertengahan hingga akhir tahun 2000an"),
    ("from=2002&to=2002", None),  # "pada tahun 2001 dan 2002": placed at 2001, found by its other date too
])
def test_a_year_filter_finds_an_event_by_any_year_it_covers_or_states(client, years, sentence_start):
    body = client.get(f"/api/timeline?{years}").json()
    first, last = (int(part.split("=")[1]) for part in years.split("&"))
    assert body["count"] > 0
    for event in body["events"]:
        dates = [event["date"], *event["other_dates"]]
        assert any(int(d["earliest"][:4]) <= last and int(d["latest"][:4]) >= first for d in dates), event
    if sentence_start:
        assert any(e["sentence"].startswith(sentence_start) for e in body["events"])
    else:
        assert any("2002" in d["text"] for e in body["events"] for d in e["other_dates"])


@pytest.mark.parametrize("years, ticks", [
    ((1950, 2024), ["1950", "1960", "1970", "1980", "1990", "2000", "2010", "2020", "2030"]),
    ((1905, 2024), ["1900", "1950", "2000", "2050"]),  # a century and more: a tick every 50 years
])
def test_the_axis_has_a_tick_at_each_end_and_every_dot_lies_between(years, ticks):
    from qa.timeline import TimelineEvent
    from qa.timeline_view import layout_axis

    events = [TimelineEvent(id=f"e{n}", doc_id="d", title="t", sentence=f"Pada tahun {y}.", sentence_start=0,
                            sentence_end=16, date=find_dates(f"Pada tahun {y}.")[0]) for n, y in enumerate(years)]
    axis = layout_axis(events)
    assert [t.label for t in axis.ticks] == ticks
    assert all(axis.ticks[0].x <= dot.x <= axis.ticks[-1].x for dot in axis.dots)
