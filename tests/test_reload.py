"""A running server follows the corpus: rebuilt indexes are swapped in without a failed request.

Real uvicorn servers on free localhost ports, `qa index` in other processes, SIGKILL mid-build, the
build lock, the `--watch` rebuilder and `qa serve --workers 2`. Corpora are a few short articles (the real
model embeds each sentence), and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from filelock import FileLock

from qa.api import create_app
from qa.config import Settings
from qa.files.pointer import current_generation
from qa.files.reader import load_index
from qa.files.schema import GENERATIONS_DIR, LOCK_FILE, TMP_PREFIX
from qa.index_rows import BuildBusyError
from qa.indexer import build_index
from qa.service import QAService
from conftest import LOCAL

PROJECT_DIR = Path(__file__).resolve().parent.parent
TOKEN = "reload-admin-token"

JEMBATAN = ("---\ntitle: Jembatan Merah Putih di Ambon\n---\n"
            "Jembatan Merah Putih di Ambon diresmikan pada 4 April 2016. Jembatan itu memiliki panjang 1.140 meter. "
            "Pembangunannya menelan biaya sekitar Rp 779 miliar. Jembatan tersebut menghubungkan Desa Galala dan "
            "Desa Poka.\n")
PALA_FACT = " Wali Kota Ambon, Bodewin Wattimena, menanam 500 pohon pala di dekat jembatan pada 17 Agustus 2031.\n"
KOPI = ("---\ntitle: Festival Kopi Gayo di Takengon\n---\n"
        "Festival Kopi Gayo digelar di Takengon, Aceh Tengah. Festival itu diikuti oleh 120 petani kopi. "
        "Kopi Gayo dikenal dengan aroma yang kuat. Panitia menjual 3.000 cangkir kopi pada hari pertama.\n")
KERETA = ("---\ntitle: Kereta cepat Whoosh\n---\n"
          "Kereta cepat Jakarta-Bandung mulai beroperasi pada 2 Oktober 2023. Kereta itu diberi nama Whoosh. "
          "Kecepatan maksimumnya mencapai 350 kilometer per jam. Waktu tempuh Jakarta ke Bandung sekitar 40 menit.\n")

Q_PALA = "Berapa pohon pala yang ditanam di dekat jembatan?"
Q_KOPI = "Berapa petani kopi yang mengikuti Festival Kopi Gayo?"
Q_SPEED = "Berapa kecepatan maksimum kereta cepat Whoosh?"
QUESTIONS = [Q_PALA, Q_KOPI, Q_SPEED, "Kapan Jembatan Merah Putih diresmikan?", "When did the Whoosh train start?",
             "Siapa yang menanam pohon pala?", "Berapa panjang jembatan itu?"]


# --- helpers ---------------------------------------------------------------------------------------------------

def write_corpus(corpus: Path, files: dict[str, str]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")


def make_settings(root: Path, **overrides) -> Settings:
    values = {"corpus_dir": root / "corpus", "index_dir": root / "index", "admin_token": TOKEN,
              "reload_check_interval_s": 0.1, "request_timeout_s": 60.0, **overrides}
    return Settings(**values)


def subprocess_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}
    if settings is not None:
        env.update({"QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir)})
    return env


def qa_index(settings: Settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`qa index` in another process."""
    return subprocess.run([sys.executable, "-m", "qa.cli", "index", "--corpus", str(settings.corpus_dir),
                           "--index", str(settings.index_dir), *args],
                          cwd=PROJECT_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def serving(service: QAService):
    """A real uvicorn server for the service, in a background thread, on a free localhost port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service.settings, service=service), log_level="warning",
                                           lifespan="on", timeout_keep_alive=60))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


class Askers:
    """Threads that keep asking questions until stopped; every request that is not a clean 200 is a failure."""

    def __init__(self, base_url: str, threads: int = 4, max_seconds: float = 900) -> None:
        self.base_url, self.max_seconds = base_url, max_seconds
        self.stop_event = threading.Event()
        self.failures: list[str] = []
        self.answered = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self) -> Askers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _run(self, number: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.base_url, timeout=120) as client:
            turn = number
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                question = QUESTIONS[turn % len(QUESTIONS)]
                turn += 1
                try:
                    if turn % 2:
                        response = client.post("/ask", json={"question": question})
                    else:
                        response = client.get("/ask", params={"q": question, "top_k": 3})
                    problem = None if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"
                    if problem is None:
                        problem = self._inconsistency(response.json())
                except Exception as exc:  # a dropped connection is a failed request too
                    problem = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if problem:
                        self.failures.append(f"{question!r}: {problem}")
                    else:
                        self.answered += 1

    @staticmethod
    def _inconsistency(body: dict) -> str | None:
        """Answer and citation must come from the same index: the span sits inside the cited passage."""
        if body["abstained"]:
            return None
        first = body["citations"][0]
        inside = first["passage"][first["answer_start"] - first["start"]:first["answer_end"] - first["start"]]
        return None if inside == body["answer"] else f"answer {body['answer']!r} is not in its citation"

    def wait_for_answers(self, count: int, timeout: float = 120) -> None:
        """Until `count` more answers came back; a server that stops answering fails here, it is not waited out."""
        target = self.answered + count
        deadline = time.monotonic() + timeout
        while self.answered < target and time.monotonic() < deadline and not self.failures:
            time.sleep(0.05)
        assert self.failures or self.answered >= target, f"only {self.answered} of {target} answers came back"


def wait_for_generation(base_url: str, generation: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = httpx.get(f"{base_url}/health", timeout=30).json().get("generation")
        if seen == generation:
            return
        time.sleep(0.05)
    raise AssertionError(f"server still on generation {seen}, expected {generation}")


def ask(base_url: str, question: str) -> dict:
    response = httpx.post(f"{base_url}/ask", json={"question": question}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def cited(answer: dict) -> set[str]:
    return {c["doc_id"] for c in answer["citations"]}


@pytest.fixture
def small_corpus(tmp_path, embedder) -> Settings:
    settings = make_settings(tmp_path)
    write_corpus(settings.corpus_dir, {"jembatan.txt": JEMBATAN, "kopi.txt": KOPI, "kereta.txt": KERETA})
    build_index(settings, embedder=embedder)
    return settings


# --- the swap ----------------------------------------------------------------------------------------------------

def test_answers_follow_three_rebuilds_without_a_failed_request(small_corpus, embedder):
    settings = small_corpus
    service = QAService(settings, embedder=embedder)
    with serving(service) as base, Askers(base, threads=4) as askers:
        askers.wait_for_answers(8)
        before = ask(base, Q_PALA)
        assert "500" not in (before["answer"] or "")
        assert "350" in ask(base, Q_SPEED)["answer"]

        # 1. A fact added to an article, indexed by `qa index` in another process: the server notices CURRENT.
        (settings.corpus_dir / "jembatan.txt").write_text(JEMBATAN.rstrip() + PALA_FACT, encoding="utf-8")
        done = qa_index(settings)
        assert done.returncode == 0, done.stderr
        first = current_generation(settings.index_dir)
        wait_for_generation(base, first)
        after = ask(base, Q_PALA)
        assert not after["abstained"] and "500" in after["answer"], after
        assert after["citations"][0]["doc_id"] == "jembatan.txt"
        askers.wait_for_answers(8)

        # 2. An article deleted, rebuilt over HTTP: swapped in before the response returns.
        (settings.corpus_dir / "kopi.txt").unlink()
        response = httpx.post(f"{base}/admin/reindex", headers={"x-admin-token": TOKEN}, timeout=600)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["removed"] == ["kopi.txt"] and report["generation"] != first
        assert httpx.get(f"{base}/health").json()["generation"] == report["generation"]
        assert "kopi.txt" not in cited(ask(base, Q_KOPI))
        assert httpx.get(f"{base}/api/sources/kopi.txt").status_code == 404
        assert "kopi.txt" not in {d["doc_id"] for d in httpx.get(f"{base}/api/sources").json()}
        askers.wait_for_answers(8)

        # 3. A fact changed, `qa index` again.
        (settings.corpus_dir / "kereta.txt").write_text(KERETA.replace("350", "420"), encoding="utf-8")
        done = qa_index(settings)
        assert done.returncode == 0, done.stderr
        third = current_generation(settings.index_dir)
        assert third not in (first, report["generation"])
        wait_for_generation(base, third)
        speed = ask(base, Q_SPEED)
        assert "420" in speed["answer"] and "350" not in speed["answer"], speed
        askers.wait_for_answers(8)
        askers.stop()
    assert askers.failures == []
    assert askers.answered >= 32


def test_request_in_flight_finishes_on_the_old_index(small_corpus, embedder, monkeypatch):
    import qa.service

    settings = small_corpus.model_copy(update={"reload_check_interval_s": 0.0})
    service = QAService(settings, embedder=embedder)
    old = service.state.index.generation
    entered, release = threading.Event(), threading.Event()
    real_answer = qa.service.answer_question
    used: list[str] = []

    def held_answer(index, *args, **kwargs):
        used.append(index.generation)
        if len(used) == 1:
            entered.set()
            release.wait(timeout=120)
        return real_answer(index, *args, **kwargs)

    monkeypatch.setattr(qa.service, "answer_question", held_answer)
    result = {}
    in_flight = threading.Thread(target=lambda: result.update(answer=service.ask(Q_SPEED)))
    in_flight.start()
    try:
        assert entered.wait(timeout=60)
        (settings.corpus_dir / "kereta.txt").write_text(KERETA.replace("350", "420"), encoding="utf-8")
        report = build_index(settings, embedder=embedder)
        service.refresh(force=True, wait=True)
        assert service.state.index.generation == report.generation != old
        fresh = service.ask(Q_SPEED)
    finally:
        release.set()
        in_flight.join(timeout=120)
    assert used == [old, report.generation]
    assert "350" in result["answer"].answer
    assert "420" in fresh.answer


# --- a build killed mid-way ---------------------------------------------------------------------------------------

BULK_FILES = 56  # over 50 files, so `qa index` prints progress to a pipe too


def bulk_article(number: int) -> str:
    return (f"---\ntitle: Laporan cuaca kota {number}\n---\n"
            f"Hujan deras turun di kota nomor {number} selama {number % 9 + 2} jam. Ketinggian air mencapai "
            f"{number + 10} sentimeter. Warga diminta waspada hingga hari ke-{number % 7 + 1}.\n")


def test_killed_rebuild_keeps_the_old_index_and_the_next_build_succeeds(small_corpus, embedder):
    settings = small_corpus
    old = current_generation(settings.index_dir)
    write_corpus(settings.corpus_dir, {f"cuaca/kota-{n:03d}.txt": bulk_article(n) for n in range(BULK_FILES)})
    service = QAService(settings, embedder=embedder)
    with serving(service) as base, Askers(base, threads=3) as askers:
        askers.wait_for_answers(6)
        process = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "index", "--corpus", str(settings.corpus_dir),
             "--index", str(settings.index_dir)],
            cwd=PROJECT_DIR, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        output = bytearray()
        reader = threading.Thread(target=lambda: [output.extend(chunk) for chunk in iter(
            lambda: os.read(process.stderr.fileno(), 4096), b"")], daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 300
            done = 0
            while done < 8:  # a few articles embedded, most still to go
                assert process.poll() is None, f"build ended before it could be killed: {bytes(output)[-2000:]!r}"
                assert time.monotonic() < deadline, f"no build progress seen: {bytes(output)[-2000:]!r}"
                counts = re.findall(rb"\| *(\d+)/(\d+) \[", bytes(output))  # tqdm: "| 8/59 [00:02<..."
                done = int(counts[-1][0]) if counts else 0
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)
            reader.join(timeout=10)

        # The server keeps answering from the old, complete generation; the lock died with the process.
        assert current_generation(settings.index_dir) == old
        askers.wait_for_answers(6)
        assert httpx.get(f"{base}/health").json()["generation"] == old
        assert "cuaca/kota-000.txt" not in {d["doc_id"] for d in httpx.get(f"{base}/api/sources").json()}
        with FileLock(str(settings.index_dir / LOCK_FILE)).acquire(timeout=10):
            pass

        # The next build succeeds, cleans up after the killed one, and is swapped in.
        report = build_index(settings, embedder=embedder, lock_timeout=60)
        assert len(report.added) == BULK_FILES and report.generation != old
        assert not list((settings.index_dir / GENERATIONS_DIR).glob(f"{TMP_PREFIX}*"))
        wait_for_generation(base, report.generation)
        assert httpx.get(f"{base}/api/sources/cuaca/kota-000.txt").status_code == 200
        askers.wait_for_answers(6)
        askers.stop()
    assert askers.failures == []


# --- the build lock -------------------------------------------------------------------------------------------------

def test_a_second_build_is_refused_or_waits_never_interleaves(small_corpus, embedder):
    settings = small_corpus
    (settings.corpus_dir / "kereta.txt").write_text(KERETA.replace("350", "420"), encoding="utf-8")
    holding, release = threading.Event(), threading.Event()
    first: dict = {}

    def slow_progress(done, total, name):
        holding.set()
        release.wait(timeout=300)

    def first_build():
        first["report"] = build_index(settings, progress=slow_progress, embedder=embedder)

    builder = threading.Thread(target=first_build)
    builder.start()
    try:
        assert holding.wait(timeout=60)
        with pytest.raises(BuildBusyError, match="another build"):
            build_index(settings, embedder=embedder, lock_timeout=0.2)
        refused = qa_index(settings)
        assert refused.returncode == 2 and "another build" in refused.stderr, refused.stderr
        service = QAService(settings, embedder=embedder)
        app = create_app(settings, service=service)
        from fastapi.testclient import TestClient

        with TestClient(app, base_url=LOCAL) as client:
            busy = client.post("/admin/reindex", headers={"x-admin-token": TOKEN})
        assert busy.status_code == 409 and "another build" in busy.json()["detail"]
        waiting = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "index", "--json", "--wait", "300", "--corpus", str(settings.corpus_dir),
             "--index", str(settings.index_dir)],
            cwd=PROJECT_DIR, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert waiting.poll() is None, waiting.communicate()  # still waiting for the lock, not done or refused
    finally:
        release.set()
        builder.join(timeout=300)
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, err
    assert first["report"].updated == ["kereta.txt"]
    waited = json.loads(out)  # the waiting build ran after the first one, on its result: nothing left to embed
    assert sorted(waited["unchanged"]) == ["jembatan.txt", "kereta.txt", "kopi.txt"]
    assert waited["embedded_passages"] == 0 and waited["generation"] == first["report"].generation
    index = load_index(settings.index_dir)
    assert set(index.documents) == {"jembatan.txt", "kopi.txt", "kereta.txt"}
    assert "420" in index.documents["kereta.txt"].text


# --- qa serve --watch --------------------------------------------------------------------------------------------------

def documents_become(settings: Settings, expected: set[str]) -> None:
    """Wait until the index holds exactly these articles (a watcher's rebuild)."""
    deadline = time.monotonic() + 120
    while set(load_index(settings.index_dir).documents) != expected:
        assert time.monotonic() < deadline, sorted(load_index(settings.index_dir).documents)
        time.sleep(0.2)


def watching(settings: Settings) -> threading.Event:
    """A watcher started, once it has brought the index up to date and watches; its stop event."""
    import qa.watch

    ready = threading.Event()
    stop = qa.watch.start_watcher(settings, ready)
    assert ready.wait(120), "the watcher did not start watching"
    return stop


def counted_watch_builds(monkeypatch, embedder) -> list[str]:
    """The generation of each build the watcher runs from now on, in order (built with the tests' embedder)."""
    import qa.watch

    calls: list[str] = []

    def counted_build(build_settings, **kwargs):
        report = build_index(build_settings, embedder=embedder, **kwargs)
        calls.append(report.generation)
        return report

    monkeypatch.setattr(qa.watch, "build_index", counted_build)
    return calls


def test_watch_rebuilds_once_per_burst_of_changes(small_corpus, embedder, monkeypatch, caplog):
    import logging

    import qa.watch

    settings = small_corpus
    calls = counted_watch_builds(monkeypatch, embedder)
    old = current_generation(settings.index_dir)
    with caplog.at_level(logging.INFO, logger="qa.watch"):
        stop = watching(settings)
    try:
        assert calls == [old]  # brought up to date at start: nothing had changed, nothing new was written
        said = [r.getMessage() for r in caplog.records if r.name == "qa.watch"]
        assert any(m.startswith("the index is up to date with the corpus (0 added / ") for m in said), said
        assert not any(m.startswith("rebuilt:") for m in said), said  # not "rebuilt" when nothing was
        calls.clear()
        (settings.corpus_dir / "jembatan.txt").write_text(JEMBATAN.rstrip() + PALA_FACT, encoding="utf-8")
        time.sleep(0.3)  # a burst: each change within the quiet period of the one before
        (settings.corpus_dir / "kopi.txt").unlink()
        time.sleep(0.3)
        write_corpus(settings.corpus_dir, {"baru/festival.md": "# Festival Layang-layang\n\nFestival Layang-layang "
                                           "Pangandaran digelar pada 12 Juli 2031.\n"})
        deadline = time.monotonic() + 180
        while not calls and time.monotonic() < deadline:
            time.sleep(0.1)
        assert calls, "the watcher did not rebuild"
        time.sleep(qa.watch.QUIET_MS / 1000 + 2.0)
        assert len(calls) == 1, calls  # one rebuild for the burst
        index = load_index(settings.index_dir)
        assert index.generation == calls[0] != old
        assert set(index.documents) == {"jembatan.txt", "kereta.txt", "baru/festival.md"}

        (settings.corpus_dir / "notes.swp").write_text("not an article")  # ignored: not an article file
        time.sleep(qa.watch.QUIET_MS / 1000 + 2.0)
        assert len(calls) == 1, calls
    finally:
        stop.set()


def test_an_article_written_while_the_watcher_catches_up_is_built_too(small_corpus, embedder, monkeypatch, tmp_path):
    import qa.watch

    settings = small_corpus.model_copy(update={"index_dir": tmp_path / "no-index-yet"})
    builds: list[set[str]] = []

    def build_while_a_user_writes(build_settings, **kwargs):
        report = build_index(build_settings, embedder=embedder, **kwargs)
        if not builds:  # the first build, at start, has read the folder: someone saves an article before it ends
            write_corpus(settings.corpus_dir, {"susulan.md": "# Susulan\n\nFestival digelar pada 12 Juli 2031.\n"})
        builds.append(set(load_index(build_settings.index_dir).documents))
        return report

    monkeypatch.setattr(qa.watch, "build_index", build_while_a_user_writes)
    stop = watching(settings)
    try:
        documents_become(settings, {"jembatan.txt", "kopi.txt", "kereta.txt", "susulan.md"})
    finally:
        stop.set()


def test_watch_waits_for_a_file_to_stop_changing_and_ignores_what_is_no_article(small_corpus, embedder,
                                                                               monkeypatch, caplog):
    import qa.watch

    settings = small_corpus
    calls = counted_watch_builds(monkeypatch, embedder)
    (settings.corpus_dir / "rusak.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with caplog.at_level("INFO", logger="qa.watch"):
        stop = watching(settings)
        try:
            calls.clear()
            ticker = settings.corpus_dir / "kopi.txt"
            for n in range(8):  # a file saved every 0.4 s: built once it is done, not at every pause
                ticker.write_text(KOPI + f"\nPembaruan ke-{n}.\n", encoding="utf-8")
                time.sleep(0.4)
            deadline = time.monotonic() + 120
            while not calls and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(qa.watch.QUIET_MS / 1000 + 2.5)
            assert len(calls) == 1, calls
            assert "Pembaruan ke-7" in load_index(settings.index_dir).documents["kopi.txt"].text

            (settings.corpus_dir / ".git").mkdir()  # what git status, vim's write test and a tidy-up leave
            (settings.corpus_dir / ".git" / "index").write_bytes(b"DIRC")
            (settings.corpus_dir / "4913").write_text("")
            (settings.corpus_dir / "4913").unlink()
            (settings.corpus_dir / "draf").mkdir()
            (settings.corpus_dir / "draf").rmdir()
            (settings.corpus_dir / "laporan.pdf").write_bytes(b"%PDF-1.4")
            (settings.corpus_dir / "laporan.pdf").unlink()
            time.sleep(qa.watch.QUIET_MS / 1000 + 3.0)
            assert len(calls) == 1, calls
        finally:
            stop.set()
    assert caplog.text.count("skipped rusak.txt: binary file, not text") == 1  # said once, not at every rebuild
    assert "changed: kopi.txt" in caplog.text


def test_watch_brings_the_index_up_to_date_at_start(small_corpus, embedder, monkeypatch, tmp_path):
    import qa.watch

    monkeypatch.setattr(qa.watch, "build_index",
                        lambda build_settings, **kwargs: build_index(build_settings, embedder=embedder, **kwargs))
    settings = small_corpus
    (settings.corpus_dir / "kopi.txt").unlink()  # while no server was running
    stop = watching(settings)
    stop.set()
    assert set(load_index(settings.index_dir).documents) == {"jembatan.txt", "kereta.txt"}

    fresh = settings.model_copy(update={"index_dir": tmp_path / "no-index-yet"})
    stop = watching(fresh)  # a first build, not a 503 until some file happens to change
    stop.set()
    assert set(load_index(fresh.index_dir).documents) == {"jembatan.txt", "kereta.txt"}


def test_a_service_waiting_for_the_watchers_first_build_says_it_is_coming(small_corpus, embedder, monkeypatch,
                                                                          tmp_path):
    import qa.watch

    embedding_may_go = threading.Event()

    class HeldEmbedder:  # the first build holds on its embedding until the test has looked at /health
        def __getattr__(self, name):
            return getattr(embedder, name)

        def encode_documents(self, *args, **kwargs):
            embedding_may_go.wait(60)
            return embedder.encode_documents(*args, **kwargs)

    monkeypatch.setattr(qa.watch, "build_index",
                        lambda build_settings, **kwargs: build_index(build_settings, embedder=HeldEmbedder(), **kwargs))
    fresh = small_corpus.model_copy(update={"index_dir": tmp_path / "no-index-yet"})
    service = QAService(fresh, embedder=embedder)
    assert "build it with `qa index --index " in service.health()["detail"]
    ready = threading.Event()
    stop = qa.watch.start_watcher(fresh, ready)
    try:
        deadline = time.monotonic() + 30
        while "being built" not in service.health()["detail"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.health() == {"status": "unavailable", "detail": f"the index in {fresh.index_dir} is being "
                                    "built; questions are answered as soon as it is done"}
        embedding_may_go.set()
        assert ready.wait(120)
        assert service.health()["status"] == "ok"
    finally:
        embedding_may_go.set()
        stop.set()


def test_watch_follows_folders_moved_in_and_out_and_made_with_files_in_them(small_corpus, embedder, monkeypatch,
                                                                            tmp_path):
    import shutil

    import qa.watch

    settings = small_corpus
    monkeypatch.setattr(qa.watch, "build_index",
                        lambda build_settings, **kwargs: build_index(build_settings, embedder=embedder, **kwargs))

    outside = tmp_path / "outside" / "arsip.2031"  # a folder whose name looks like a file's once it is gone
    write_corpus(outside, {"paus.md": "# Paus Berkunjung\n\nPaus berkunjung ke Jakarta pada 3 September 2031.\n"})
    stop = watching(settings)
    try:
        before = {"jembatan.txt", "kopi.txt", "kereta.txt"}
        shutil.move(outside, settings.corpus_dir / "arsip.2031")
        documents_become(settings, before | {"arsip.2031/paus.md"})
        shutil.move(settings.corpus_dir / "arsip.2031", outside)
        documents_become(settings, before)
        (settings.corpus_dir / "baru").mkdir()
        (settings.corpus_dir / "baru" / "festival.md").write_text(
            "# Festival\n\nFestival Layang-layang Pangandaran digelar pada 12 Juli 2031.\n", encoding="utf-8")
        documents_become(settings, before | {"baru/festival.md"})
    finally:
        stop.set()


def test_watch_follows_a_corpus_folder_that_is_replaced_or_removed_and_made_again(small_corpus, embedder,
                                                                                  monkeypatch, tmp_path, caplog):
    import shutil

    import qa.watch

    settings = small_corpus
    monkeypatch.setattr(qa.watch, "build_index",
                        lambda build_settings, **kwargs: build_index(build_settings, embedder=embedder, **kwargs))

    festival = "# Festival\n\nFestival Layang-layang Pangandaran digelar pada 12 Juli 2031.\n"
    replacement = tmp_path / "new"
    write_corpus(replacement, {"kopi.txt": KOPI})
    stop = watching(settings)
    try:
        settings.corpus_dir.rename(tmp_path / "old")
        replacement.rename(settings.corpus_dir)
        documents_become(settings, {"kopi.txt"})
        write_corpus(settings.corpus_dir, {"festival.md": festival})  # in the folder now at the path
        documents_become(settings, {"kopi.txt", "festival.md"})
        write_corpus(tmp_path / "old", {"lama.md": festival})  # the folder moved away no longer counts
        time.sleep(qa.watch.QUIET_MS / 1000 + 2.0)
        assert set(load_index(settings.index_dir).documents) == {"kopi.txt", "festival.md"}

        caplog.clear()
        with caplog.at_level("INFO", logger="qa.watch"):
            shutil.rmtree(settings.corpus_dir)
            time.sleep(qa.watch.QUIET_MS / 1000 + 2.0)  # no folder to build from: the index stays
        assert set(load_index(settings.index_dir).documents) == {"kopi.txt", "festival.md"}
        assert "is gone or not a folder" in caplog.text and "another folder" not in caplog.text
        write_corpus(settings.corpus_dir, {"kereta.txt": KERETA})
        documents_become(settings, {"kereta.txt"})
        write_corpus(settings.corpus_dir, {"festival.md": festival})
        documents_become(settings, {"kereta.txt", "festival.md"})
    finally:
        stop.set()


def test_watch_follows_a_corpus_link_pointed_at_another_folder(small_corpus, embedder, monkeypatch, tmp_path):
    """Deployments swap a link to publish a new set of articles."""
    import qa.watch

    settings = small_corpus
    monkeypatch.setattr(qa.watch, "build_index",
                        lambda build_settings, **kwargs: build_index(build_settings, embedder=embedder, **kwargs))
    settings.corpus_dir.rename(tmp_path / "release-1")
    settings.corpus_dir.symlink_to(tmp_path / "release-1")
    write_corpus(tmp_path / "release-2", {"kereta.txt": KERETA})
    stop = watching(settings)
    try:
        (tmp_path / "next").symlink_to(tmp_path / "release-2")
        os.replace(tmp_path / "next", settings.corpus_dir)
        documents_become(settings, {"kereta.txt"})
    finally:
        stop.set()


def test_watch_outlives_a_file_name_that_is_not_utf8(small_corpus, embedder, monkeypatch, caplog):
    import logging

    import qa.watch

    settings = small_corpus
    monkeypatch.setattr(qa.watch, "build_index",
                        lambda build_settings, **kwargs: build_index(build_settings, embedder=embedder, **kwargs))
    caplog.set_level(logging.INFO, logger="qa.watch")
    stop = watching(settings)
    try:
        with open(os.fsencode(settings.corpus_dir) + b"/caf\xe9.txt", "wb") as bad:  # a name from an old zip
            bad.write(b"Kafe\n\nKafe Tugu didirikan pada tahun 1960.\n")
        time.sleep(qa.watch.QUIET_MS / 1000 + 2.0)
        os.mkdir(os.fsencode(settings.corpus_dir) + b"/arsip-\xff")  # a folder of such a name: refused at every start
        write_corpus(settings.corpus_dir, {"festival.md": "# Festival\n\nFestival digelar pada 12 Juli 2031.\n"})
        deadline = time.monotonic() + 120
        while "festival.md" not in load_index(settings.index_dir).documents:
            assert time.monotonic() < deadline, "the watcher stopped rebuilding"
            time.sleep(0.2)
        time.sleep(1.0)
        quiet_from = len(caplog.records)
        time.sleep(5.0)  # nothing changes: nothing more to say
        said_while_quiet = [r.getMessage() for r in caplog.records[quiet_from:] if r.name == "qa.watch"]
    finally:
        stop.set()
    said = [r.getMessage() for r in caplog.records if r.name == "qa.watch"]
    assert any("file name is not UTF-8" in m for m in said), said  # the build names it to be renamed
    assert any("folder name is not UTF-8" in m for m in said), said
    assert not any("watching the corpus folder failed" in m for m in said), said  # and it is no failure
    assert said_while_quiet == [], said_while_quiet


def test_serve_watch_says_what_each_rebuild_did_and_which_files_it_skipped(small_corpus, tmp_path):
    settings = small_corpus
    port = free_port()
    log_file = tmp_path / "serve.log"
    with open(log_file, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "serve", "--watch", "--port", str(port),
             "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
            cwd=PROJECT_DIR, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_line(server, log_file, "Application startup complete")
        assert f"serving on http://127.0.0.1:{port}/" in log_file.read_text()
        assert "serving index generation" in log_file.read_text()
        write_corpus(settings.corpus_dir, {"baru/festival.md": "# Festival Layang-layang\n\nFestival Layang-layang "
                                           "Pangandaran digelar pada 12 Juli 2031.\n"})
        (settings.corpus_dir / "rusak.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
        wait_for_line(server, log_file, "rebuilt: 1 added / 0 updated / 0 removed / 3 unchanged")
        text = log_file.read_text()
        assert "corpus changed" in text and "WARNING:  skipped rusak.txt: binary file, not text" in text
        assert "1 skipped" in text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_serve_on_a_port_in_use_says_so_and_claims_nothing(small_corpus):
    settings = small_corpus
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--port", str(port),
                                 "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
                                cwd=PROJECT_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "serving on" not in result.stdout and "Traceback" not in result.stderr


def wait_for_line(server: subprocess.Popen, log_file: Path, line: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while line not in log_file.read_text(errors="replace"):
        assert server.poll() is None, log_file.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"no {line!r} in: " + log_file.read_text(errors="replace")[-3000:]
        time.sleep(0.1)


# --- qa serve --workers 2 ------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_workers_share_the_index_and_all_pick_up_a_rebuild(small_corpus, tmp_path):
    settings = small_corpus
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--workers", "2", "--port", str(port),
         "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
        cwd=PROJECT_DIR, env=subprocess_env(QA_RELOAD_CHECK_INTERVAL_S="0.2", QA_ADMIN_TOKEN=TOKEN,
                                            QA_REQUEST_TIMEOUT_S="60"),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def health_from_many(count: int = 16) -> list[dict]:
        """/health over fresh connections from several threads, so that both workers get some."""
        replies: list[dict] = []

        def one():
            replies.append(httpx.get(f"{base}/health", timeout=60, headers={"connection": "close"}).json())

        threads = [threading.Thread(target=one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return replies

    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "qa serve --workers 2 did not come up"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=5).json().get("status") == "ok":
                    break
            time.sleep(0.5)
        old = current_generation(settings.index_dir)
        pids: set[int] = set()
        for _ in range(20):
            replies = health_from_many()
            assert all(r["generation"] == old for r in replies)
            pids |= {r["pid"] for r in replies}
            if len(pids) >= 2:
                break
        assert len(pids) == 2, f"only saw workers {pids}"
        assert "350" in ask(base, Q_SPEED)["answer"]

        # Rebuild through one worker; every worker swaps to the new generation.
        (settings.corpus_dir / "kereta.txt").write_text(KERETA.replace("350", "420"), encoding="utf-8")
        response = httpx.post(f"{base}/admin/reindex", headers={"x-admin-token": TOKEN}, timeout=600)
        assert response.status_code == 200, response.text
        new = response.json()["generation"]
        assert new != old
        on_new: set[int] = set()
        deadline = time.monotonic() + 120
        while on_new != pids and time.monotonic() < deadline:
            on_new |= {r["pid"] for r in health_from_many() if r["generation"] == new}
        assert on_new == pids, f"workers on the new index: {on_new} of {pids}"
        for _ in range(6):
            assert "420" in ask(base, Q_SPEED)["answer"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()


def test_the_first_request_after_a_quiet_rebuild_gets_the_new_index(small_corpus, embedder, caplog):
    """No request has to notice a rebuild for the service to switch: a deleted article is not cited, and not
    served, by the first request that comes after it, however long the service was left alone."""
    from fastapi.testclient import TestClient

    caplog.set_level("INFO", logger="qa.service")  # it says which generation it serves once it switches
    service = QAService(small_corpus, embedder=embedder)
    with TestClient(create_app(small_corpus, service=service), base_url=LOCAL) as client:
        assert client.get("/api/sources/kopi.txt").status_code == 200
        (small_corpus.corpus_dir / "kopi.txt").unlink()
        built = build_index(small_corpus, embedder=embedder)
        switched = f"serving index generation {built.generation}"
        deadline = time.monotonic() + 60  # the service switches by itself; this only stops a hang
        while switched not in caplog.messages:  # no request, no health check: nothing asks
            assert time.monotonic() < deadline, "the service did not switch to the new index"
            time.sleep(0.2)
        assert client.get("/api/sources/kopi.txt").status_code == 404
        answer = client.post("/ask", json={"question": Q_KOPI}).json()
        assert all(c["doc_id"] != "kopi.txt" for c in answer["citations"])


def test_a_silent_store_is_asked_by_the_follower_alone_not_by_every_request(small_corpus, embedder, monkeypatch):
    # A request would wait for its own check and then for its query before its 503: twice the pool's wait.
    import qa.service

    settings = small_corpus.model_copy(update={"reload_check_interval_s": 0})
    build_index(settings, embedder=embedder)
    service = QAService(settings, embedder=embedder)
    service.refresh(force=True, wait=True)
    asked_by = []

    def silent(_settings):
        asked_by.append(threading.current_thread().name)
        raise RuntimeError("the index database did not answer")

    monkeypatch.setattr(qa.service.backend, "current_generation", silent)
    service.refresh()  # no follower: the request itself asks
    assert asked_by == ["MainThread"] and service.store_error
    stop = threading.Event()
    service.follow_index(stop)
    try:
        deadline = time.monotonic() + 10
        while "index-follower" not in asked_by:
            assert time.monotonic() < deadline, "the follower never asked"
            time.sleep(0.05)
        for _ in range(5):
            service.refresh()  # requests, with the follower running and the store known silent
        assert asked_by.count("MainThread") == 1
    finally:
        stop.set()


def test_with_no_index_and_a_silent_store_a_request_asks_it_once(tmp_path, embedder, monkeypatch):
    # Whether a first build runs is not asked of a store that has just not answered: that was a second wait.
    import qa.service

    service = QAService(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"), embedder=embedder)
    asked = []

    def silent(_settings):
        asked.append("generation")
        raise RuntimeError("the index database did not answer")

    monkeypatch.setattr(qa.service.backend, "current_generation", silent)
    monkeypatch.setattr(qa.service.backend, "build_running", lambda _settings: asked.append("build") or False)
    assert service.health() == {"status": "unavailable", "detail": "the index database did not answer"}
    assert "build" not in asked
