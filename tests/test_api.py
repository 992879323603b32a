"""The HTTP API at its edges: validation, limits, path tricks, the admin endpoint; never a 500.

A tiny corpus of its own (three short articles) keeps this file fast; the session `embedder` is shared.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import pytest

BACKENDS = ["files", "postgres"]  # the service and client tests run against both stores (tests/conftest.py)
from fastapi.testclient import TestClient
from filelock import FileLock

from qa.api import create_app
from qa.config import Settings, SettingsError, load_settings
from qa.files.schema import LOCK_FILE
from qa.indexer import build_index
from qa.service import QAService
from conftest import LOCAL

SECRET = "ISI-RAHASIA-DI-LUAR-INDEKS"
TOKEN = "s3cret-admin-token"

ARTICLES = {
    "jembatan.txt": "---\ntitle: Jembatan Merah Putih di Ambon\n---\n"
                    "Jembatan Merah Putih di Ambon diresmikan pada 4 April 2016. Jembatan itu memiliki panjang "
                    "1.140 meter. Jembatan tersebut menghubungkan Desa Galala dan Desa Poka.\n",
    "kopi.txt": "---\ntitle: Festival Kopi Gayo di Takengon\n---\n"
                "Festival Kopi Gayo digelar di Takengon, Aceh Tengah. Festival itu diikuti oleh 120 petani kopi. "
                "Panitia menjual 3.000 cangkir kopi pada hari pertama.\n",
    "berita/kereta.txt": "---\ntitle: Kereta cepat Whoosh\n---\n"
                         "Kereta cepat Jakarta-Bandung mulai beroperasi pada 2 Oktober 2023. Kereta itu diberi nama "
                         "Whoosh. Kecepatan maksimumnya mencapai 350 kilometer per jam.\n",
}


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("api")
    corpus = root / "corpus"
    for rel, text in ARTICLES.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    (root / "secret.txt").write_text(SECRET, encoding="utf-8")  # beside the corpus: must never be served
    (root / "index").mkdir()
    (root / "index" / "secret.txt").write_text(SECRET, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", admin_token=None)
    build_index(settings, embedder=embedder)
    return settings


def make_client(settings: Settings, embedder, **overrides) -> TestClient:
    settings = settings.model_copy(update=overrides)
    return TestClient(create_app(settings, service=QAService(settings, embedder=embedder)), base_url=LOCAL)


@pytest.fixture(scope="module")
def api(small_index, embedder):
    with make_client(small_index, embedder) as client:
        yield client


def detail(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body["detail"]


# --- answers -----------------------------------------------------------------------------------------------

def test_post_and_get_ask_answer_the_same(api):
    posted = api.post("/ask", json={"question": "Berapa petani kopi yang mengikuti Festival Kopi Gayo?"})
    got = api.get("/ask", params={"q": "Berapa petani kopi yang mengikuti Festival Kopi Gayo?"})
    assert posted.status_code == got.status_code == 200
    a, b = posted.json(), got.json()
    assert a["answer"] == b["answer"] and "120" in a["answer"]
    first = a["citations"][0]
    assert first["doc_id"] == "kopi.txt"
    source = api.get(f"/api/sources/{first['doc_id']}").json()
    assert source["text"][first["answer_start"]:first["answer_end"]] == a["answer"]
    assert set(a["timings_ms"]) >= {"embed", "search", "read", "total"}


def test_top_k_limits_citations(api):
    body = api.post("/ask", json={"question": "Kapan kereta cepat Whoosh beroperasi?", "top_k": 1}).json()
    assert body["answer"] == "2 Oktober 2023" and len(body["citations"]) == 1
    assert api.post("/ask", json={"question": "Kapan kereta cepat Whoosh beroperasi?", "top_k": 50}).status_code == 200


def test_a_question_without_top_k_takes_the_default_setting_everywhere(small_index, embedder):
    question = "Kapan kereta cepat Whoosh beroperasi?"
    with make_client(small_index, embedder, top_k_default=1, top_k_max=3) as client:
        posted = client.post("/ask", json={"question": question})
        got = client.get("/ask", params={"q": question})
        assert posted.status_code == got.status_code == 200
        assert len(posted.json()["citations"]) == len(got.json()["citations"]) == 1
        schema = client.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]["properties"]["top_k"]
        assert (schema["default"], schema["maximum"]) == (1, 3)
        assert detail(client.post("/ask", json={"question": question, "top_k": 4})) == "top_k must be between 1 and 3"


def test_a_default_top_k_above_the_maximum_is_refused_at_start():
    from qa.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"^invalid setting QA_TOP_K_DEFAULT \(5\) is above QA_TOP_K_MAX \(3\): "
                                            "every question asked without top_k would be refused$"):
        load_settings(top_k_max=3)


# --- invalid input: 4xx with a message that says what is wrong ------------------------------------------

@pytest.mark.parametrize("top_k", ["1_2", " 5", "+5", "5.5", "\u0665", "lima"])
def test_a_link_whose_top_k_is_not_written_in_digits_is_refused(api, top_k):
    response = api.get("/ask", params={"q": "Kapan Putin tiba?", "top_k": top_k})
    assert response.status_code == 422
    assert detail(response) == "top_k: must be a whole number written in digits, such as 5"


def test_a_link_whose_top_k_is_negative_is_told_the_range(api):
    response = api.get("/ask", params={"q": "Kapan Putin tiba?", "top_k": "-1"})
    assert (response.status_code, detail(response)) == (422, "top_k must be between 1 and 50")


def test_an_unknown_article_is_named_without_repeating_an_id_of_any_length(api):
    response = api.get("/api/sources/" + "x" * 10_000)
    assert response.status_code == 404 and len(detail(response)) < 300


@pytest.mark.parametrize("content, content_type, status, message", [
    ('{"question": "Kapan?"}', "application/x-www-form-urlencoded", 422, "request body was sent as "
     "application/x-www-form-urlencoded, which is not read as JSON: send the header Content-Type: application/json"),
    ('{"question": "Kapan?"}', "text/plain; charset=utf-8", 422, "request body was sent as text/plain, which is not "
     "read as JSON: send the header Content-Type: application/json"),
    ("", "application/json", 422, "request body is empty: send a JSON object"),
    ("", None, 422, "request body is empty: send a JSON object"),
    ("[1, 2]", "application/json", 422, "request body is not a JSON object"),
    (b'{"question": "\xff\xfe"}', "application/json", 400, "request body is not valid JSON: it is not UTF-8 text"),
], ids=["form", "text", "empty", "empty-no-type", "list", "not-utf8"])
def test_a_body_that_is_not_a_json_object_says_how_to_send_one(api, content, content_type, status, message):
    headers = {"content-type": content_type} if content_type else {}
    response = api.post("/ask", content=content, headers=headers)
    assert response.status_code == status
    assert detail(response).startswith(message)


@pytest.mark.parametrize("body, status, words", [
    ({"question": ""}, 422, "empty"),
    ({"question": "   \n\t "}, 422, "empty"),
    ({"question": "\u200b\u200b"}, 422, "empty"),  # zero-width spaces
    ({"question": "\u202e"}, 422, "empty"),  # a right-to-left override
    ({"question": "\u0000"}, 422, "empty"),
    ({"question": "x" * 10_240}, 422, "too long"),
    ({"question": 42}, 422, "question"),
    ({"question": None}, 422, "question"),
    ({"question": ["a", "b"]}, 422, "question"),
    ({"question": {"text": "a"}}, 422, "question"),
    ({"question": "Kapan?", "top_k": "5"}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": 2.5}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": 1e300}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": 0.0}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": True}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": None}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": 0}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": -1}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": 1000}, 422, "top_k"),
    ({"question": "Kapan?", "top_k": 10**30}, 422, "top_k"),
    ({"top_k": 5}, 422, "question"),
    ({"question": "Kapan?", "extra": 1}, 422, "extra"),
    ([], 422, "body"),
    ("Kapan?", 422, "body"),
    (None, 422, "body"),
])
def test_post_ask_rejects_bad_values(api, body, status, words):
    response = api.post("/ask", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words in detail(response).lower()


NOT_AN_OBJECT = 'send a JSON object such as {"question": "…"} with the header Content-Type: application/json'


@pytest.mark.parametrize("raw, status, message", [
    (b"", 422, f"request body is empty: {NOT_AN_OBJECT}"),
    (b"{", 400, "request body is not valid JSON"),
    (b"{'question': 'x'}", 400, "request body is not valid JSON"),
    (b"question=Kapan", 400, "request body is not valid JSON"),
    (b"\xff\xfe\x00", 400, "request body is not valid JSON: it is not UTF-8 text"),
    (b'{"question": "a",}', 400, "request body is not valid JSON"),
    (b"NaN", 422, f"request body is not a JSON object: {NOT_AN_OBJECT}"),
    (b"[" * 20_000 + b"]" * 20_000, 400, "request body is not valid JSON: it is nested too deeply"),
    (b'{"question": "halo", "top_k": ' + b"1" * 4301 + b"}", 400,
     "request body is not valid JSON: it holds a number of more than 4300 digits"),
])
def test_post_ask_rejects_non_json(api, raw, status, message):
    response = api.post("/ask", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert detail(response) == message


def test_non_json_content_type_is_4xx(api):
    response = api.post("/ask", content=b"Kapan?", headers={"content-type": "text/plain"})
    assert response.status_code == 422, response.text
    detail(response)


def test_lone_surrogate_is_rejected(api):
    response = api.post("/ask", content=b'{"question": "Kapan \\ud800?"}', headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "unicode" in detail(response).lower()


def test_get_ask_refuses_a_question_that_is_not_utf8_once_percent_decoded(api):
    response = api.get("/ask?q=Kapan%FF%FE%3F")
    assert response.status_code == 422, response.text
    assert detail(response) == ("the query string is not UTF-8 text once percent-decoded: percent-encode the "
                                "question's UTF-8 bytes (é is %C3%A9)")
    assert api.get("/ask?q=Kapan%20kaf%C3%A9%20dibuka%3F").status_code == 200
    assert api.get("/ask?q=Kapan+jembatan+diresmikan%3F&utm_source=%FF").status_code == 200  # not the question's


def test_a_query_string_question_is_checked_byte_by_byte():
    from qa.request_body import fields_are_utf8

    def question_is_utf8(query_string: bytes) -> bool:
        return fields_are_utf8(query_string, only=b"q")

    assert question_is_utf8(b"q=caf%C3%A9&top_k=5") and question_is_utf8(b"top_k=5&x=%FF&q=ok")
    assert not question_is_utf8(b"q=caf%E9")  # Latin-1 percent-encoded
    assert not question_is_utf8("q=café".encode())  # raw bytes over 0x7F: Starlette would read them as Latin-1


def test_odd_but_valid_text_is_answered_or_abstained(api):
    plain = api.post("/ask", json={"question": "Kapan jembatan diresmikan?"}).json()
    assert plain["answer"] == "4 April 2016"
    for question in ["\u0000Kapan\u0000?", "🙂" * 100, "Kapan jembatan diresmikan?" + "\u200b" * 50,
                     "<script>alert(1)</script>", "' OR 1=1 --", "١٢٣ ٤٥٦", "ｋａｐａｎ"]:
        response = api.post("/ask", json={"question": question})
        assert response.status_code == 200, (question, response.text)
        body = response.json()
        assert body["question"] == question
        if question.startswith("Kapan jembatan"):  # invisible characters do not change the answer
            assert body["answer"] == plain["answer"]
        if not body["abstained"]:  # any answer is still a verbatim slice of its first citation's article
            first = body["citations"][0]
            text = api.get(f"/api/sources/{first['doc_id']}").json()["text"]
            assert text[first["answer_start"]:first["answer_end"]] == body["answer"]


@pytest.mark.parametrize("params, status, words", [
    ({}, 422, "q"),
    ({"q": ""}, 422, "empty"),
    ({"q": "x" * 10_240}, 422, "too long"),
    ({"q": "Kapan?", "top_k": "abc"}, 422, "top_k"),
    ({"q": "Kapan?", "top_k": "0"}, 422, "top_k"),
    ({"q": "Kapan?", "top_k": "1000"}, 422, "top_k"),
    ({"q": "Kapan?", "top_k": "1.5"}, 422, "top_k"),
])
def test_get_ask_rejects_bad_values(api, params, status, words):
    response = api.get("/ask", params=params)
    assert response.status_code == status, response.text
    assert words in detail(response).lower()


# --- limits ------------------------------------------------------------------------------------------------

def test_oversized_body_is_413(api, small_index):
    limit = small_index.max_body_bytes
    big = json.dumps({"question": "x" * (limit + 10)}).encode()
    response = api.post("/ask", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert detail(response) == (f"request body is larger than {limit} bytes: a question has at most "
                                f"{small_index.max_question_chars} characters")


def test_oversized_chunked_body_is_413(api, small_index):
    """No content-length (chunked): the limit still holds, and it is still a 413, not a parse error."""
    def chunks():
        yield b'{"question": "'
        for _ in range(small_index.max_body_bytes // 1000 + 2):
            yield b"x" * 1000
        yield b'"}'

    response = api.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    detail(response)


def test_body_at_the_limit_is_read(api, small_index):
    head = b'{"question": "Kapan jembatan diresmikan?"'
    body = head + b" " * (small_index.max_body_bytes - len(head) - 1) + b"}"  # JSON allows the padding
    assert len(body) == small_index.max_body_bytes
    response = api.post("/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_slow_answer_times_out_with_504(small_index, embedder, monkeypatch):
    with make_client(small_index, embedder, request_timeout_s=0.3) as client:
        service = client.app.state.service

        def slow_ask(question, top_k=None, history=None):
            time.sleep(1.0)
            raise AssertionError("should have timed out")

        monkeypatch.setattr(service, "ask", slow_ask)
        response = client.post("/ask", json={"question": "Kapan jembatan diresmikan?"})
        assert response.status_code == 504
        assert "0.3" in detail(response)
        assert client.get("/ask", params={"q": "Kapan?"}).status_code == 504


def test_no_index_is_503_not_500(tmp_path, embedder):
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    with make_client(settings, embedder) as client:
        for response in (client.post("/ask", json={"question": "Kapan?"}), client.get("/ask", params={"q": "Kapan?"}),
                         client.get("/api/sources"), client.get("/api/sources/kopi.txt")):
            assert response.status_code == 503, response.text
            assert "qa index" in detail(response)
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert "qa index" in health.json()["detail"]


def test_damaged_new_generation_keeps_the_old_one(small_index, embedder, tmp_path):
    """CURRENT pointing at a generation that cannot be read: keep answering from the loaded one."""
    import shutil

    index = tmp_path / "index"
    shutil.copytree(small_index.index_dir, index)
    with make_client(small_index, embedder, index_dir=index, reload_check_interval_s=0.0) as client:
        before = client.get("/health").json()["generation"]
        broken = index / "generations" / "20991231T235959-broken"
        broken.mkdir()
        (broken / "store.sqlite").write_bytes(b"not a database")
        (index / "CURRENT").write_text(broken.name + "\n")
        for _ in range(5):
            assert client.post("/ask", json={"question": "Kapan jembatan diresmikan?"}).status_code == 200
            time.sleep(0.05)
        health = client.get("/health").json()
        assert health["generation"] == before and "broken" in health["reload_error"]


# --- sources and path tricks -----------------------------------------------------------------------------

def test_sources_list_and_one(api):
    listed = api.get("/api/sources").json()
    assert {d["doc_id"] for d in listed} == set(ARTICLES)
    one = api.get("/api/sources/berita/kereta.txt")
    assert one.status_code == 200 and "Whoosh" in one.json()["text"]


TRICKS = [
    "../secret.txt", "../../etc/passwd", "/etc/passwd", "//etc/passwd", "berita/../kopi.txt", "./kopi.txt",
    "..%2fsecret.txt", "%2e%2e/secret.txt", "%2e%2e%2fsecret.txt", "..%5csecret.txt", "..\\secret.txt",
    "%252e%252e%252fsecret.txt", "%2fetc%2fpasswd", "kopi.txt%00", "kopi.txt\x00.png", "../index/secret.txt",
    "....//secret.txt", "%c0%ae%c0%ae/secret.txt", "~/secret.txt", "file:///etc/passwd", "", ".",
    "CURRENT", "../index/CURRENT", "kopi.txt/", "KOPI.TXT",
]


def raw_get(app, raw_path: str) -> tuple[int, bytes]:
    """Send a path to the ASGI app exactly as a server would (percent-decoded once, no dot-segment clean-up)."""
    raw = raw_path.encode("latin-1", "backslashreplace")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(raw_path), "raw_path": raw, "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    # In a thread of its own: after a browser test, Playwright's event loop is running in this one, and
    # asyncio.run refuses to start a second.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("trick", TRICKS)
def test_source_path_tricks_are_404(api, trick):
    prefixes = ["/api/sources/"]
    if any(getattr(r, "path", "").startswith("/sources/") for r in api.app.routes):
        prefixes.append("/sources/")  # the HTML source viewer, when it is mounted
    for prefix in prefixes:
        if prefix + trick == "/sources/":
            continue  # the list of sources, redirected to (tests/test_web.py)
        status, body = raw_get(api.app, prefix + trick)
        assert status == 404, (prefix + trick, status, body[:200])
        assert SECRET.encode() not in body and b"root:" not in body


def test_source_lookup_never_touches_the_file_system(api, monkeypatch):
    """Documents come from the loaded index only: no request path reaches open()."""
    import builtins
    import io
    import os

    opened = []
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def spy(name, real):
        def wrapper(file, *args, **kwargs):
            opened.append((name, file))
            return real(file, *args, **kwargs)
        return wrapper

    api.get("/api/sources/kopi.txt")  # warm: nothing lazily loaded on the path below
    monkeypatch.setattr(builtins, "open", spy("open", real_open))
    monkeypatch.setattr(io, "open", spy("io.open", real_io_open))
    monkeypatch.setattr(os, "open", spy("os.open", real_os_open))
    for trick in ["../secret.txt", "/etc/passwd", "kopi.txt"]:
        raw_get(api.app, "/api/sources/" + trick)
    assert not [f for _, f in opened if "secret" in str(f) or "passwd" in str(f) or str(f).endswith("kopi.txt")]


def test_the_api_docs_load_nothing_from_elsewhere(api):
    page = "/docs"
    assert api.get("/redoc").status_code == 404  # its script fetches a logo from the internet
    response = api.get(page)
    assert response.status_code == 200 and "News QA" in response.text
    urls = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert any(url.endswith(".js") for url in urls)
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert api.get(url).status_code == 200, url


def test_static_files_do_not_escape(api):
    for trick in ["/static/../qa/config.py", "/static/..%2fqa%2fconfig.py", "/static/%2e%2e/pyproject.toml",
                  "/static//etc/passwd"]:
        status, body = raw_get(api.app, trick)
        assert status in (400, 404), (trick, status)
        assert b"BaseSettings" not in body and b"root:" not in body


# --- admin endpoint ------------------------------------------------------------------------------------------

def test_reindex_is_off_without_a_token(api):
    response = api.post("/admin/reindex", headers={"x-admin-token": "anything"})
    assert response.status_code == 404
    assert "QA_ADMIN_TOKEN" in detail(response)


@pytest.fixture
def admin(small_index, embedder):
    with make_client(small_index, embedder, admin_token=TOKEN) as client:
        yield client


@pytest.mark.parametrize("headers", [{}, {"x-admin-token": ""}, {"x-admin-token": "wrong"},
                                     {"x-admin-token": TOKEN + "x"}, {"authorization": "Bearer wrong"},
                                     {"authorization": TOKEN}, {"authorization": "Basic " + TOKEN},
                                     {"x-admin-token": "é".encode("latin-1")}])
def test_reindex_refuses_a_wrong_token(admin, headers):
    response = admin.post("/admin/reindex", headers=headers)
    assert response.status_code == 401, response.text
    assert "token" in detail(response)


@pytest.mark.parametrize("headers", [{"x-admin-token": TOKEN}, {"authorization": f"Bearer {TOKEN}"},
                                     {"authorization": f"bearer  {TOKEN}"}])
def test_reindex_with_the_token(admin, headers):
    response = admin.post("/admin/reindex", headers=headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["generation"] == admin.get("/health").json()["generation"]
    assert sorted(report["unchanged"]) == sorted(ARTICLES)


def test_reindex_while_another_build_runs_is_409(admin, small_index):
    lock = FileLock(str(small_index.index_dir / LOCK_FILE))
    with lock.acquire(timeout=30):
        response = admin.post("/admin/reindex", headers={"x-admin-token": TOKEN})
    assert response.status_code == 409
    assert "another build" in detail(response)
    assert admin.post("/admin/reindex", headers={"x-admin-token": TOKEN}).status_code == 200


def test_reindex_when_the_embedding_model_cannot_load_is_503_that_says_so(admin, monkeypatch):
    from qa.embed import ModelLoadError

    def cannot_load():
        raise ModelLoadError("cannot load the embedding model 'gone/model': no such folder")

    monkeypatch.setattr(admin.app.state.service, "reindex", cannot_load)
    response = admin.post("/admin/reindex", headers={"x-admin-token": TOKEN})
    assert response.status_code == 503
    assert detail(response) == "cannot load the embedding model 'gone/model': no such folder"


def test_reindex_that_cannot_write_its_index_is_a_500_that_says_why(admin, monkeypatch):
    from qa.index_rows import IndexWriteError

    def disk_full():
        raise IndexWriteError("writing the index into /srv/index failed (No space left on device); the previous "
                              "index is still the one in use")

    monkeypatch.setattr(admin.app.state.service, "reindex", disk_full)
    response = admin.post("/admin/reindex", headers={"x-admin-token": TOKEN})
    assert response.status_code == 500
    assert detail(response) == ("writing the index into /srv/index failed (No space left on device); the previous "
                                "index is still the one in use")


def test_reindex_of_a_missing_corpus_is_422_and_keeps_serving(small_index, embedder, tmp_path):
    with make_client(small_index, embedder, admin_token=TOKEN, corpus_dir=tmp_path / "gone") as client:
        response = client.post("/admin/reindex", headers={"x-admin-token": TOKEN})
        assert response.status_code == 422
        assert "does not exist" in detail(response)
        assert client.post("/ask", json={"question": "Kapan jembatan diresmikan?"}).status_code == 200


# --- nothing answers 500 --------------------------------------------------------------------------------------

def test_wrong_methods_and_paths(api):
    assert api.delete("/ask").status_code == 405
    assert api.delete("/ask").headers["allow"] == "GET, HEAD, POST"  # HEAD is answered as GET
    assert api.get("/admin/reindex").headers["allow"] == "POST"
    assert api.put("/api/sources/kopi.txt").status_code == 405
    assert api.get("/admin/reindex").status_code == 405
    assert api.get("/nope").status_code == 404
    assert api.get("/health").json()["status"] == "ok"


# Follow-up questions: the conversation's earlier turns come with the question.
AMBASSADOR = "Siapa Duta Besar Rusia untuk Korea Utara?"
HOPE = "Apa harapannya untuk tahun 2024?"
VISITOR = "Siapa menurut dia akan berkunjung ke Pyongyang?"


def test_a_follow_up_is_read_with_the_names_of_earlier_turns(client):
    history = []
    for question in (AMBASSADOR, HOPE):
        body = client.post("/ask", json={"question": question, "history": history}).json()
        history.append({"question": question, "answer": body["answer"]})
    assert history[0]["answer"] == "Alexander Matsegora"
    body = client.post("/ask", json={"question": VISITOR, "history": history}).json()
    assert body["question"] == VISITOR
    assert "Vladimir Putin" in body["answer"]
    assert "Alexander Matsegora" in body["context_used"]  # from the first turn: the second names nobody
    alone = client.post("/ask", json={"question": VISITOR}).json()
    assert alone["context_used"] == []


def test_a_null_history_is_no_history_and_a_get_without_q_says_where_the_question_goes(client):
    with_null = client.post("/ask", json={"question": AMBASSADOR, "history": None})
    assert with_null.status_code == 200 and with_null.json()["answer"] == "Alexander Matsegora"
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]["properties"]["history"]
    branches = {branch.get("type"): branch for branch in schema["anyOf"]}
    assert set(branches) == {"array", "null"} and branches["array"]["maxItems"] == 5 and "maxItems" not in schema
    response = client.get("/ask", params={"question": "Siapa?"})
    assert response.status_code == 422
    assert response.json()["detail"] == ("q: Field required (the question goes in q: "
                                         "/ask?q=Kapan+Putin+tiba+di+Pyongyang%3F)")


def test_a_self_contained_question_ignores_its_history(client):
    history = [{"question": "When did Putin arrive in Pyongyang in 2024?", "answer": None}]
    with_history = client.post("/ask", json={"question": AMBASSADOR, "history": history}).json()
    alone = client.post("/ask", json={"question": AMBASSADOR}).json()
    assert with_history["answer"] == alone["answer"] == "Alexander Matsegora"
    assert with_history["context_used"] == []


@pytest.mark.parametrize("history, message", [
    ([{"question": "Siapa?", "answer": None}] * 6, "history has 6 turns; at most 5 are accepted"),
    ([{"question": "x" * 501, "answer": None}], "history.0.question is too long (501 characters; the limit is 500)"),
    ([{"question": "   ", "answer": None}], "history.0.question is empty"),
    ([{"question": 5, "answer": None}], "history.0.question: Input should be a valid string"),
    ([{"question": "Siapa?", "answer": 7}], "history.0.answer: Input should be a valid string"),
    ([{"question": "Siapa?", "when": "kemarin"}], "history.0.when: Extra inputs are not permitted"),
    (["Siapa?"], "history.0: Input should be a valid dictionary"),
    ("Siapa?", "history: Input should be a valid list"),
])
def test_bad_history_gets_a_422_that_says_what_is_wrong(client, history, message):
    response = client.post("/ask", json={"question": "Kapan dia datang?", "history": history})
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_an_earlier_answer_with_a_lone_surrogate_is_a_422(client):
    body = ('{"question": "Kapan dia tiba di sana?", '
            '"history": [{"question": "Siapa presiden Rusia?", "answer": "Vladimir Putin\\ud800"}]}')
    response = client.post("/ask", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == "history.0.answer is not valid Unicode text (it holds a lone surrogate)"


def test_a_long_earlier_answer_is_read_cut_not_refused(client):
    """The reader's own answers can be longer than the limit on earlier answers: sent back, they must not break the
    conversation."""
    def asked_after(answer):
        history = [{"question": "Siapa Duta Besar Rusia untuk Korea Utara?", "answer": answer},
                   {"question": "Apa harapannya untuk tahun 2024?", "answer": "terobosan"}]
        return client.post("/ask", json={"question": "Siapa menurut dia akan berkunjung ke Pyongyang?", "history": history})

    response = asked_after("Alexander Matsegora, " + "duta besar yang lama bertugas di Pyongyang, " * 10)
    assert response.status_code == 200, response.text
    # A long answer is a description, not a name to carry: read as if the turn had none.
    assert response.json()["answer"] == asked_after(None).json()["answer"]
    assert response.json()["context_used"] == ["Duta Besar Rusia", "Korea Utara"]


def test_a_huge_history_is_refused_by_its_length_in_a_short_reply(client):
    response = client.post("/ask", json={"question": "Kapan?", "history": [1] * 21_000})
    assert response.status_code == 422
    assert response.json()["detail"] == "history has 21000 turns; at most 5 are accepted (send the latest ones)"


def test_many_wrong_fields_are_named_ten_at_a_time(client):
    response = client.post("/ask", json={"question": "Kapan?", "history": [1, 2, 3, 4, 5],
                                         **{f"extra{n}": n for n in range(30)}})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.count(": ") == 10 and detail.endswith("; and 25 more")


@pytest.mark.parametrize("path", ["/", "/health", "/timeline", "/api/sources", "/ask?q=Kapan+jembatan+diresmikan%3F",
                                  "/static/style.css"])
def test_head_is_answered_as_get_without_a_body(api, path):
    head, get = api.head(path), api.get(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]


def test_an_admin_token_that_a_header_cannot_carry_is_refused_at_start():
    with pytest.raises(SettingsError, match=r"QA_ADMIN_TOKEN=\(hidden\): must be printable ASCII without spaces"):
        load_settings(admin_token="pässwörd")


# --- which requests are answered -----------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000"])
def test_requests_addressed_to_this_machine_are_answered(api, host):
    response = api.get("/health", headers={"host": host})
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("host", ["rebind.attacker.example:8000", "127.0.0.1.attacker.example"])
def test_a_request_addressed_to_another_name_is_refused(api, host):
    """DNS rebinding: a page on another site that points its name at 127.0.0.1 cannot read the service."""
    response = api.get("/api/sources", headers={"host": host})
    assert response.status_code == 400
    assert response.text == "Invalid host header"


def test_a_service_on_another_loopback_address_answers_requests_addressed_to_it(small_index, embedder):
    with make_client(small_index, embedder, host="127.0.0.2") as client:
        assert client.get("/health", headers={"host": "127.0.0.2:8000"}).status_code == 200
        assert client.get("/health", headers={"host": "rebind.attacker.example"}).status_code == 400


def test_a_service_for_the_network_answers_any_name(small_index, embedder):
    with make_client(small_index, embedder, host="0.0.0.0") as client:
        assert client.get("/health", headers={"host": "qa.example.org"}).status_code == 200


@pytest.mark.parametrize("path, content_type", [("/ask", "application/json"),
                                                ("/", "application/x-www-form-urlencoded")])
def test_a_client_that_leaves_mid_upload_leaves_no_error_in_the_log(live_server, caplog, path, content_type):
    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())
    uvicorn_log = logging.getLogger("uvicorn")  # uvicorn's loggers do not propagate: the root's capture sees nothing
    uvicorn_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not caplog.records:  # the server notices the going within moments
                time.sleep(0.1)
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_history_limit_messages_count_in_words_a_person_would_use():
    from qa.validation import too_many_turns

    assert too_many_turns(1, 0) == "history has 1 turn; none are accepted (QA_MAX_HISTORY_TURNS is 0)"
    assert too_many_turns(6, 5) == "history has 6 turns; at most 5 are accepted (send the latest ones)"
