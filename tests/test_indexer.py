"""Incremental index builds: what is re-embedded, what is removed from every part of the index, and that
a build that dies at any point leaves the previous index usable and the next build repairs itself."""

from __future__ import annotations

import gc
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from filelock import FileLock

from qa.config import Settings
from qa.files import pointer
from qa.files import writer as files_writer
from qa.files.pointer import current_generation
from qa.files.reader import load_index
from qa.files.schema import BUILDING_FILE, CURRENT_FILE, GENERATIONS_DIR, LOCK_FILE, PREVIOUS_FILE, TMP_PREFIX
from qa.indexer import build_index
from qa.lexical import LexicalIndex
from qa.index_rows import BuildBusyError, BuildError, DocumentEntry, IndexCorruptError, IndexWriteError

ARTICLES = {
    "a.txt": (
        "---\ntitle: Panen Padi di Karawang\npublisher: Harian Contoh\n---\n"
        "Panen Padi di Karawang\n\n"
        "Petani di Karawang memanen padi lebih awal tahun ini. Hasil panen mencapai 7 ton per hektare. "
        "Varietas baru bernama zorbulanium dipakai di banyak sawah.\n\n"
        "Dinas pertanian mencatat kenaikan 12 persen dibanding tahun lalu."
    ),
    "ekonomi/b.md": (
        "# Harga Cabai Turun\n\n"
        "Harga cabai rawit di Pasar Induk turun menjadi Rp 40.000 per kilogram. Pedagang menyebut pasokan "
        "dari Jawa Tengah melimpah. Pembeli menyambut penurunan harga itu dengan gembira."
    ),
    "c.txt": (
        "Kereta Cepat Tambah Jadwal\n\n"
        "Operator kereta cepat menambah empat perjalanan setiap akhir pekan. Tiket kelas ekonomi dijual mulai "
        "Rp 150.000. Penumpang kereta qwertyvoss meningkat selama libur sekolah."
    ),
}
UNIQUE_WORD = {"a.txt": "zorbulanium", "c.txt": "qwertyvoss"}


@pytest.fixture
def corpus(make_corpus):
    """Settings for a fresh corpus of ARTICLES, not yet indexed."""
    corpus_dir, index_dir = make_corpus(ARTICLES)
    return Settings(corpus_dir=corpus_dir, index_dir=index_dir)


@pytest.fixture(scope="module")
def _built_once(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("built-once")
    for rel, text in ARTICLES.items():
        (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / rel).write_text(text, encoding="utf-8")
    report = build_index(Settings(corpus_dir=root / "corpus", index_dir=root / "index"), embedder=embedder)
    return root, report


@pytest.fixture
def built(_built_once, tmp_path):
    """Settings for a corpus of ARTICLES whose index is already built (a private copy for each test)."""
    root, report = _built_once
    shutil.copytree(root / "corpus", tmp_path / "corpus")
    shutil.copytree(root / "index", tmp_path / "index")
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"), report


def generation_dir(settings: Settings) -> Path:
    return settings.index_dir / GENERATIONS_DIR / current_generation(settings.index_dir)


def on_disk_counts(settings: Settings, doc_id: str) -> dict:
    """What each part of the current generation, read from disk, holds for doc_id."""
    gen = generation_dir(settings)
    con = sqlite3.connect(gen / "store.sqlite")
    try:
        counts = {table: con.execute(f"SELECT count(*) FROM {table} WHERE doc_id = ?", (doc_id,)).fetchone()[0]
                  for table in ("documents", "passages", "sentences")}
        counts["all_passages"] = con.execute("SELECT count(*) FROM passages").fetchone()[0]
    finally:
        con.close()
    counts["faiss_ntotal"] = faiss.read_index(str(gen / "passages.faiss")).ntotal
    lexical = LexicalIndex.load(gen / "bm25")
    counts["bm25_size"] = lexical.size
    if doc_id in UNIQUE_WORD:
        counts["bm25_hits"] = int(np.count_nonzero(lexical.scores(UNIQUE_WORD[doc_id])))
    return counts


def vectors_by_passage(index) -> dict:
    return {(p.doc_id, p.start, p.end): index.passage_vectors[row] for row, p in enumerate(index.passages)}


def test_first_build_indexes_every_file(corpus, embedder):
    report = build_index(corpus, embedder=embedder)
    assert sorted(report.added) == sorted(ARTICLES)
    assert (report.updated, report.removed, report.unchanged, report.skipped) == ([], [], [], [])
    assert report.full_rebuild and report.rebuild_reason == "no index yet"
    index = load_index(corpus.index_dir)
    assert report.generation == index.generation == current_generation(corpus.index_dir)
    assert report.passages == len(index.passages) == report.embedded_passages == index.vectors.ntotal
    assert report.sentences == len(index.sentence_spans)
    assert set(index.documents) == set(ARTICLES)
    assert index.documents["a.txt"].title == "Panen Padi di Karawang"
    assert index.documents["a.txt"].meta["publisher"] == "Harian Contoh"
    assert index.documents["ekonomi/b.md"].title == "Harga Cabai Turun"
    for passage in index.passages:
        assert index.documents[passage.doc_id].text[passage.start:passage.end] == passage.text
    assert report.as_dict()["added"] == report.added
    assert "3 added / 0 updated / 0 removed / 0 unchanged" in report.summary()


def test_edit_reembeds_that_article_alone(built, embedder):
    corpus, _ = built
    before = load_index(corpus.index_dir)
    path = corpus.corpus_dir / "ekonomi/b.md"
    path.write_text(path.read_text() + " Pemerintah daerah berjanji menjaga harga tetap stabil hingga akhir tahun.")

    report = build_index(corpus, embedder=embedder)
    after = load_index(corpus.index_dir)
    assert report.updated == ["ekonomi/b.md"]
    assert (report.added, report.removed) == ([], [])
    assert sorted(report.unchanged) == ["a.txt", "c.txt"]
    assert not report.full_rebuild
    assert report.embedded_passages == sum(p.doc_id == "ekonomi/b.md" for p in after.passages)
    assert "menjaga harga tetap stabil" in after.documents["ekonomi/b.md"].text
    # The other articles' vectors were copied, not recomputed.
    old, new = vectors_by_passage(before), vectors_by_passage(after)
    for key, vector in new.items():
        if key[0] != "ekonomi/b.md":
            assert np.array_equal(vector, old[key])


def test_delete_removes_every_trace_and_restore_brings_it_back(built, embedder):
    corpus, _ = built
    first = on_disk_counts(corpus, "c.txt")
    assert first["passages"] > 0 and first["bm25_hits"] > 0 and first["documents"] == 1
    original = (corpus.corpus_dir / "c.txt").read_bytes()

    (corpus.corpus_dir / "c.txt").unlink()
    report = build_index(corpus, embedder=embedder)
    assert report.removed == ["c.txt"]
    assert (report.added, report.updated, report.embedded_passages) == ([], [], 0)
    gone = on_disk_counts(corpus, "c.txt")
    assert (gone["documents"], gone["passages"], gone["sentences"], gone["bm25_hits"]) == (0, 0, 0, 0)
    assert gone["faiss_ntotal"] == gone["bm25_size"] == gone["all_passages"] == first["all_passages"] - first["passages"]
    index = load_index(corpus.index_dir)
    assert all(p.doc_id != "c.txt" for p in index.passages) and "c.txt" not in index.documents

    (corpus.corpus_dir / "c.txt").write_bytes(original)
    report = build_index(corpus, embedder=embedder)
    assert report.added == ["c.txt"] and report.removed == []
    back = on_disk_counts(corpus, "c.txt")
    assert back == first
    # The parts stay aligned: BM25's and FAISS's best row for the restored article is one of its passages.
    index = load_index(corpus.index_dir)
    assert index.passages[int(np.argmax(index.lexical.scores(UNIQUE_WORD["c.txt"])))].doc_id == "c.txt"
    row = next(r for r, p in enumerate(index.passages) if p.doc_id == "c.txt")
    _, found = index.vectors.search(index.passage_vectors[row:row + 1], 1)
    assert index.passages[int(found[0][0])].doc_id == "c.txt"


def test_a_build_stopped_after_its_index_went_live_reports_it_built(built, embedder, monkeypatch):
    # Ctrl-C (or SIGTERM) while the old generations are being dropped: the new index is already the one in use,
    # so the build says what it built instead of "interrupted".
    import qa.files.build

    corpus, _ = built
    (corpus.corpus_dir / "c.txt").write_text("Kereta Cepat\n\nKereta cepat mulai beroperasi pada 2 Oktober 2023.")
    real, calls = qa.files.build.prune_generations, []

    def stopped_at_the_second_prune(index_dir):
        calls.append(index_dir)
        if len(calls) == 2:  # the first runs before writing, the second after the new generation went live
            raise KeyboardInterrupt
        real(index_dir)

    monkeypatch.setattr(qa.files.build, "prune_generations", stopped_at_the_second_prune)
    report = build_index(corpus, embedder=embedder)
    assert len(calls) == 2 and report.updated == ["c.txt"]
    assert current_generation(corpus.index_dir) == report.generation
    assert "Oktober 2023" in load_index(corpus.index_dir).documents["c.txt"].text


def test_a_renamed_or_moved_file_keeps_its_vectors_without_embedding_again(built, embedder):
    corpus, _ = built
    before = vectors_by_passage(load_index(corpus.index_dir))
    (corpus.corpus_dir / "arsip").mkdir()
    (corpus.corpus_dir / "c.txt").rename(corpus.corpus_dir / "arsip" / "c-lama.txt")
    report = build_index(corpus, embedder=embedder)
    assert (report.added, report.removed, report.embedded_passages) == (["arsip/c-lama.txt"], ["c.txt"], 0)
    index = load_index(corpus.index_dir)
    after = vectors_by_passage(index)
    moved = {(doc_id, start, end) for doc_id, start, end in after if doc_id == "arsip/c-lama.txt"}
    assert moved and all(np.array_equal(after[key], before[("c.txt", *key[1:])]) for key in moved)
    assert index.passages[int(np.argmax(index.lexical.scores(UNIQUE_WORD["c.txt"])))].doc_id == "arsip/c-lama.txt"
    # Renamed to another type, the same bytes read differently (Markdown): embedded again.
    (corpus.corpus_dir / "a.txt").write_text("# Judul\n\nIsi **tebal** yang lain sekali.\n", encoding="utf-8")
    build_index(corpus, embedder=embedder)
    (corpus.corpus_dir / "a.txt").rename(corpus.corpus_dir / "a.md")
    report = build_index(corpus, embedder=embedder)
    assert report.added == ["a.md"] and report.embedded_passages > 0


def test_a_run_with_no_change_writes_nothing_new(built, embedder):
    corpus, first = built
    generations = corpus.index_dir / GENERATIONS_DIR
    listing = sorted(p.name for p in generations.iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in generations.rglob("*")}

    again = build_index(corpus, embedder=embedder)
    assert again.generation == first.generation == current_generation(corpus.index_dir)
    assert sorted(again.unchanged) == sorted(ARTICLES)
    assert (again.added, again.updated, again.removed, again.embedded_passages) == ([], [], [], 0)
    assert again.passages == first.passages
    assert sorted(p.name for p in generations.iterdir()) == listing
    assert {p: p.stat().st_mtime_ns for p in generations.rglob("*")} == stamps


def test_touching_a_file_without_changing_it_reembeds_nothing(built, embedder):
    corpus, _ = built
    path = corpus.corpus_dir / "a.txt"
    path.write_bytes(path.read_bytes())
    os.utime(path, (1, 1))
    report = build_index(corpus, embedder=embedder)
    assert report.embedded_passages == 0 and "a.txt" in report.unchanged


def test_an_indexed_file_saved_empty_keeps_its_last_good_version_and_says_so(built, embedder):
    corpus, _ = built
    (corpus.corpus_dir / "a.txt").write_bytes(b"")
    report = build_index(corpus, embedder=embedder)
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("a.txt", "empty file (its last good version stays in the index)")]
    assert "a.txt" in load_index(corpus.index_dir).documents and report.removed == []
    assert report.kept == ["a.txt"] and " / 1 kept as last built / " in report.summary()  # the counts add up


@pytest.mark.parametrize(("change", "reason"), [
    ({"passage_overlap": 0}, "settings changed: passage_overlap"),
    ({"passage_max_chars": 300, "passage_sentences": 2}, "settings changed: passage_max_chars, passage_sentences"),
])
def test_a_changed_setting_rebuilds_everything(built, embedder, change, reason):
    corpus, _ = built
    changed = corpus.model_copy(update=change)
    report = build_index(changed, embedder=embedder)
    assert report.full_rebuild and report.rebuild_reason == reason
    assert report.unchanged == [] and sorted(report.added) == sorted(ARTICLES)
    assert report.embedded_passages == report.passages
    manifest = load_index(corpus.index_dir).manifest
    key, value = next(iter(change.items()))
    assert manifest[key] == value


def test_bad_files_are_skipped_with_reasons_and_good_ones_indexed(make_corpus, embedder):
    corpus_dir, index_dir = make_corpus({
        **ARTICLES,
        "kosong.txt": b"",
        "gambar.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "latin1.txt": "Harga naik di café kota.".encode("latin-1"),
        "besar.txt": "Judul\n\n" + "Kalimat yang panjang sekali. " * 100,
        "iklan.txt": "Iklan\nScroll Untuk Melanjutkan\nBaca juga: Berita lain",
        "catatan.pdf": b"%PDF-1.4",
    })
    os.symlink(corpus_dir / "hilang.txt", corpus_dir / "rusak.txt")
    settings = Settings(corpus_dir=corpus_dir, index_dir=index_dir, max_file_bytes=1_000)
    report = build_index(settings, embedder=embedder)
    reasons = {s.path: s.reason for s in report.skipped}
    assert set(reasons) == {"kosong.txt", "gambar.txt", "latin1.txt", "besar.txt", "iklan.txt", "rusak.txt"}
    assert reasons["kosong.txt"] == "empty file"
    assert reasons["gambar.txt"] == "binary file, not text"
    assert reasons["latin1.txt"].startswith("not valid UTF-8 (byte 0xe9")
    assert reasons["besar.txt"].startswith("file too large")
    assert reasons["iklan.txt"] == "nothing left after removing page furniture"
    assert reasons["rusak.txt"] == (f"a link to {corpus_dir / 'hilang.txt'}, which does not exist: point it at the "
                                    "article or remove it")
    assert sorted(report.added) == sorted(ARTICLES)
    assert set(load_index(index_dir).documents) == set(ARTICLES)


def test_a_file_a_parser_fails_on_is_skipped_and_the_build_goes_on(make_corpus, embedder, monkeypatch):
    import qa.indexer

    real = qa.indexer.load_document

    def failing(path, *args):
        if path.name == "aneh.html":
            raise RuntimeError("the parser gave up")
        return real(path, *args)

    corpus_dir, index_dir = make_corpus({**ARTICLES, "aneh.html": "<html><body><p>Isi.</p></body></html>"})
    monkeypatch.setattr(qa.indexer, "load_document", failing)
    report = build_index(Settings(corpus_dir=corpus_dir, index_dir=index_dir), embedder=embedder)
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("aneh.html", "could not be read (RuntimeError: the parser gave up)")]
    assert sorted(report.added) == sorted(ARTICLES)


def test_a_file_that_turns_bad_keeps_its_previous_passages(built, embedder):
    corpus, _ = built
    before = on_disk_counts(corpus, "a.txt")
    (corpus.corpus_dir / "a.txt").write_bytes(b"\xff\xfe\x00\x00")
    report = build_index(corpus, embedder=embedder)
    assert [s.path for s in report.skipped] == ["a.txt"] and report.removed == []
    assert on_disk_counts(corpus, "a.txt")["passages"] == before["passages"]


def cannot_list(monkeypatch, name: str) -> None:
    """Folders of this name cannot be listed from now on, as one without read permission (tests run as root)."""
    listing = os.scandir

    def refusing(path="."):
        if Path(path).name == name:
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", refusing)


def test_a_folder_that_cannot_be_listed_keeps_its_articles_and_says_so(built, embedder, monkeypatch):
    settings, _ = built
    cannot_list(monkeypatch, "ekonomi")
    report = build_index(settings, embedder=embedder)
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("ekonomi/", "cannot list the folder: Permission denied (the article indexed from it before stays in the "
                     "index)")]
    assert report.removed == [] and sorted(report.unchanged) == ["a.txt", "c.txt"]
    assert set(load_index(settings.index_dir).documents) == set(ARTICLES)


def test_a_folder_that_can_be_listed_but_not_searched_does_not_stop_the_scan(built, embedder, monkeypatch):
    settings, _ = built
    (settings.corpus_dir / "ekonomi" / "2024").mkdir()
    (settings.corpus_dir / "ekonomi" / "2024" / "d.txt").write_text(ARTICLES["c.txt"], encoding="utf-8")
    status = os.stat

    def refuse_inside_ekonomi(path, *args, **kwargs):  # what a folder of mode 644 does to anyone but root
        if Path(path).parent.name == "ekonomi":
            raise PermissionError(13, "Permission denied", str(path))
        return status(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", refuse_inside_ekonomi)
    report = build_index(settings, embedder=embedder)
    assert "ekonomi/2024/d.txt" in report.added


def test_names_that_cannot_be_document_ids_and_linked_folders_are_named_not_dropped(built, embedder, tmp_path):
    settings, _ = built
    corpus = os.fsencode(settings.corpus_dir)
    with open(corpus + b"/caf\xe9.txt", "wb") as bad:  # from a zip made on an old Windows machine
        bad.write(b"Kafe\n\nKafe Tugu didirikan pada tahun 1960.\n")
    os.mkdir(corpus + b"/arsip-\xff")
    with open(corpus + b"/lap\xffor.pdf", "wb") as pdf:  # no article, but named among the files not read
        pdf.write(b"%PDF-1.4\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "d.txt").write_text(ARTICLES["c.txt"], encoding="utf-8")
    os.symlink(elsewhere, settings.corpus_dir / "tautan")
    # A line break in a name: no link to the article could carry it (a URL path stops there).
    (settings.corpus_dir / "baris\nbaru.txt").write_text(ARTICLES["c.txt"], encoding="utf-8")
    (settings.corpus_dir / "baris\rlama").mkdir()
    (settings.corpus_dir / "baris\rlama" / "e.txt").write_text(ARTICLES["c.txt"], encoding="utf-8")
    report = build_index(settings, embedder=embedder)
    assert {s.path: s.reason for s in report.skipped} == {
        "arsip-\\xff/": "folder name is not UTF-8: rename it",
        "caf\\xe9.txt": "file name is not UTF-8: rename it",
        "baris\\x0abaru.txt": "file name holds a line break (\\x0a): rename it",
        "baris\\x0dlama/": "folder name holds a line break (\\x0d): rename it",
        "tautan/": "a link to a folder, not followed: copy the folder in, or link its files one by one"}
    assert report.not_read == ["lap\\xffor.pdf"]
    json.dumps(report.as_dict(), ensure_ascii=False).encode("utf-8")  # `qa index --json` can print it
    assert set(load_index(settings.index_dir).documents) == set(ARTICLES)


def test_a_corpus_or_index_folder_without_permission_fails_before_loading_a_model(built, monkeypatch):
    settings, _ = built

    def no_model(name, threads=0):
        raise AssertionError("the model must not be loaded when nothing can be built")

    monkeypatch.setattr("qa.indexer.load_embedder", no_model)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != settings.index_dir and real_access(path, mode))
    with pytest.raises(BuildError, match=f"^cannot write to the index folder {settings.index_dir}: permission denied$"):
        build_index(settings)
    monkeypatch.setattr(os, "access", real_access)
    listing = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                        if Path(path) == settings.corpus_dir else listing(path))
    with pytest.raises(BuildError, match=f"^cannot read the corpus folder {settings.corpus_dir}: Permission denied$"):
        build_index(settings)


def test_missing_empty_or_non_folder_corpus_fails_before_loading_a_model(tmp_path, monkeypatch):
    def no_model(name):
        raise AssertionError("the model must not be loaded for a corpus with nothing to index")

    monkeypatch.setattr("qa.indexer.load_embedder", no_model)
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-other-files").mkdir()
    (tmp_path / "only-other-files" / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "file.txt").write_text("teks")
    cases = {
        tmp_path / "nowhere": "does not exist",
        tmp_path / "file.txt": "is not a folder",
        tmp_path / "empty": "holds no articles: no .txt, .md, .markdown, .html or .htm files",
        tmp_path / "only-other-files": "holds no articles: no .txt, .md, .markdown, .html or .htm files",
    }
    for corpus_dir, message in cases.items():
        with pytest.raises(BuildError, match=message) as info:
            build_index(Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index"))
        assert str(corpus_dir) in str(info.value)
    assert current_generation(tmp_path / "index") is None


def test_nothing_indexable_fails_and_names_the_files(make_corpus, embedder):
    corpus_dir, index_dir = make_corpus({"kosong.txt": b"", "gambar.md": b"\x00\x01\x02"})
    with pytest.raises(BuildError) as info:
        build_index(Settings(corpus_dir=corpus_dir, index_dir=index_dir), embedder=embedder)
    message = str(info.value)
    assert "kosong.txt: empty file" in message and "gambar.md: binary file, not text" in message
    assert current_generation(index_dir) is None


def test_a_second_build_waits_or_reports_busy(corpus, embedder):
    corpus.index_dir.mkdir(parents=True)
    with FileLock(str(corpus.index_dir / LOCK_FILE)):
        with pytest.raises(BuildBusyError, match="another build"):
            build_index(corpus, embedder=embedder)


class Crash(BaseException):
    """Stands for the process dying: nothing may catch it."""


def _crash_while_writing_bm25(monkeypatch):
    def build(texts, count=None):
        raise Crash()

    monkeypatch.setattr(files_writer.LexicalIndex, "build", staticmethod(build))


def _crash_after_rename_before_current(monkeypatch):
    real = files_writer._fsync_dir

    def fsync_dir(path):
        if Path(path).name == GENERATIONS_DIR:
            raise Crash()
        real(path)

    monkeypatch.setattr(files_writer, "_fsync_dir", fsync_dir)


def _crash_before_current_is_replaced(monkeypatch):
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == CURRENT_FILE:
            raise Crash()
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(pointer.os, "replace", replace)


@pytest.mark.parametrize("crash", [_crash_while_writing_bm25, _crash_after_rename_before_current,
                                   _crash_before_current_is_replaced])
def test_a_build_that_dies_leaves_the_previous_index_and_the_next_build_repairs(built, embedder, monkeypatch,
                                                                                crash):
    corpus, first = built
    previous = load_index(corpus.index_dir)
    path = corpus.corpus_dir / "c.txt"
    path.write_text(path.read_text() + " Jadwal baru berlaku mulai bulan depan.")

    with monkeypatch.context() as patch:
        crash(patch)
        with pytest.raises(Crash):
            build_index(corpus, embedder=embedder)

    survivor = load_index(corpus.index_dir)
    assert survivor.generation == first.generation
    assert [(p.doc_id, p.start, p.end, p.text) for p in survivor.passages] == \
        [(p.doc_id, p.start, p.end, p.text) for p in previous.passages]
    assert survivor.vectors.ntotal == len(previous.passages)

    report = build_index(corpus, embedder=embedder)
    assert report.updated == ["c.txt"] and report.generation != first.generation
    generations = corpus.index_dir / GENERATIONS_DIR
    assert not [p for p in generations.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert not list(corpus.index_dir.glob(f"{CURRENT_FILE}.*.tmp"))
    assert "bulan depan" in load_index(corpus.index_dir).documents["c.txt"].text


def test_worker_processes_embed_the_same_vectors(corpus, embedder, tmp_path):
    """`qa index --workers 2`: documents embedded in two processes give the index one process gives."""
    one = build_index(corpus, embedder=embedder)
    single = load_index(corpus.index_dir)
    parallel_settings = corpus.model_copy(update={"index_dir": tmp_path / "parallel", "index_workers": 2})
    report = build_index(parallel_settings, embedder=embedder)
    assert report.workers == 2 and report.embedded_passages == one.embedded_passages
    assert "with 2 workers" in report.summary()
    parallel = load_index(parallel_settings.index_dir)
    assert [p.text for p in parallel.passages] == [p.text for p in single.passages]
    assert np.allclose(parallel.passage_vectors, single.passage_vectors, atol=1e-5)
    assert np.allclose(parallel.sentence_vectors, single.sentence_vectors, atol=1e-5)


def test_a_large_collection_gets_an_approximate_index_that_finds_its_own_vectors(tmp_path, monkeypatch):
    """Above APPROXIMATE_FROM passages the vectors go into a memory-mapped IVF index; a stored vector, asked
    for, comes back first."""
    from qa.records import Document, Passage, Span

    monkeypatch.setattr(files_writer, "APPROXIMATE_FROM", 1000)
    rng = np.random.default_rng(1)
    writer = files_writer.GenerationWriter(tmp_path / "index", 16)
    for number in range(3000):
        text = f"Kalimat nomor {number}."
        span = Span(0, len(text))
        vectors = rng.normal(size=(1, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors)
        writer.add(DocumentEntry(Document(f"d{number}.txt", f"D{number}", text), [span], vectors,
                                 [Passage(f"d{number}.txt", 0, 0, len(text), text, (span,))], vectors))
    writer.commit({"dim": 16, "model": "test"})
    index = load_index(tmp_path / "index")
    assert index.manifest["vector_index"] == "ivf" and index.vectors.ntotal == 3000
    rows = [7, 1234, 2999]
    _, found = index.vectors.search(np.asarray(index.passage_vectors[rows]), 1)
    assert found[:, 0].tolist() == rows
    assert index.passages[1234].text == "Kalimat nomor 1234." and index.documents["d1234.txt"].title == "D1234"


def test_an_opened_generation_stays_readable_after_it_is_pruned(built):
    corpus, _ = built
    index = load_index(corpus.index_dir)
    shutil.rmtree(generation_dir(corpus))
    assert [p.doc_id for p in index.passages][:1] and len(index.documents) == len(ARTICLES)
    assert index.passage_vectors.shape[0] == len(index.passages)


def test_an_index_of_the_old_format_says_to_rebuild_and_a_build_does(built, embedder):
    corpus, _ = built
    con = sqlite3.connect(generation_dir(corpus) / "store.sqlite")
    con.execute("UPDATE manifest SET value = '1' WHERE key = 'format'")
    con.commit()
    con.close()
    with pytest.raises(IndexCorruptError, match="format 1, and this version reads format 2: rebuild it with `qa index`"):
        load_index(corpus.index_dir)
    report = build_index(corpus, embedder=embedder)
    assert report.full_rebuild and "format 1" in report.rebuild_reason
    assert load_index(corpus.index_dir).manifest["format"] == 2


def test_an_index_let_go_closes_its_database_without_waiting_for_the_garbage_collector(built):
    """A server swapping generations must not keep each old one's (deleted) database file open."""
    settings, _ = built

    def open_databases() -> int:
        return sum(os.readlink(f"/proc/self/fd/{fd}").endswith("store.sqlite") for fd in os.listdir("/proc/self/fd")
                   if os.path.exists(f"/proc/self/fd/{fd}"))

    gc.collect()
    before = open_databases()
    gc.disable()
    try:
        for _ in range(5):
            index = load_index(settings.index_dir)
            assert index.passages[0].text  # a query, as answering makes
            del index
        assert open_databases() == before
    finally:
        gc.enable()


def _build_in_a_thread(settings: Settings, embedder, **kwargs):
    """build_index's report (or what it raised), from a thread: a build that waits forever fails the test."""
    outcome: dict = {}

    def run():
        try:
            outcome["report"] = build_index(settings, embedder=embedder, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, outcome


def test_an_article_replaced_by_a_pipe_keeps_its_last_good_version_and_a_device_is_never_read(built, embedder):
    settings, _ = built
    (settings.corpus_dir / "c.txt").unlink()
    os.mkfifo(settings.corpus_dir / "c.txt")  # reading it would wait for a writer, holding the build lock
    os.symlink("/dev/zero", settings.corpus_dir / "nol.txt")  # reading it would never end
    worker, outcome = _build_in_a_thread(settings, embedder)
    worker.join(120)
    assert not worker.is_alive(), "the build is stuck on a pipe or a device"
    report = outcome["report"]
    assert {s.path: s.reason for s in report.skipped} == {
        "c.txt": "not a file but a pipe: it is not read (its last good version stays in the index)",
        "nol.txt": "not a file but a device: it is not read"}
    assert report.removed == [] and set(load_index(settings.index_dir).documents) == set(ARTICLES)


def test_a_file_deleted_while_the_build_waits_for_the_lock_leaves_the_index_without_a_word(built, embedder,
                                                                                          monkeypatch):
    import qa.indexer

    settings, _ = built
    listed = threading.Event()
    real = qa.indexer._articles_of

    def articles_of(corpus_dir):
        found = real(corpus_dir)
        listed.set()
        return found

    monkeypatch.setattr(qa.indexer, "_articles_of", articles_of)
    with FileLock(str(settings.index_dir / LOCK_FILE)):
        worker, outcome = _build_in_a_thread(settings, embedder, lock_timeout=60)
        assert listed.wait(60)  # the build has listed the corpus, and waits for the lock
        time.sleep(0.2)
        (settings.corpus_dir / "c.txt").unlink()
    worker.join(120)
    report = outcome["report"]
    assert report.removed == ["c.txt"] and report.skipped == []


def _disk_full_in_faiss(monkeypatch):
    def write_index(index, path):
        raise RuntimeError("Error in void faiss::write_index(const faiss::Index*, const char*) at "
                           "impl/io.cpp:123: Error: 'ret == (size)' failed: write error (No space left on device)")

    monkeypatch.setattr(files_writer.faiss, "write_index", write_index)


def _disk_full_in_sqlite(monkeypatch):
    def add(self, entry):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(files_writer.GenerationWriter, "add", add)


def _disk_full_at_the_start(monkeypatch):
    real = sqlite3.connect

    def connect(path, *args, **kwargs):
        if Path(path).parent.name.startswith(TMP_PREFIX):
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(files_writer.sqlite3, "connect", connect)


@pytest.mark.parametrize("disk_full, why", [
    (_disk_full_in_faiss, "Error in void faiss::write_index(const faiss::Index*, const char*) at impl/io.cpp:123: "
                          "Error: 'ret == (size)' failed: write error (No space left on device)"),
    (_disk_full_in_sqlite, "database or disk is full"),
    (_disk_full_at_the_start, "No space left on device"),
])
def test_a_full_disk_fails_the_build_in_one_line_and_keeps_the_previous_index(built, embedder, monkeypatch,
                                                                               disk_full, why):
    settings, first = built
    path = settings.corpus_dir / "c.txt"
    path.write_text(path.read_text() + " Jadwal baru berlaku mulai bulan depan.")
    with monkeypatch.context() as patch:
        disk_full(patch)
        with pytest.raises(IndexWriteError) as raised:
            build_index(settings, embedder=embedder)
    assert str(raised.value) == (f"writing the index into {settings.index_dir} failed ({why}); the previous index "
                                 "is still the one in use")
    assert load_index(settings.index_dir).generation == first.generation
    assert not [p for p in (settings.index_dir / GENERATIONS_DIR).iterdir() if p.name.startswith(TMP_PREFIX)]
    assert build_index(settings, embedder=embedder).updated == ["c.txt"]


def test_a_current_pointer_that_cannot_be_read_fails_the_build_with_how_to_mend_it(built, embedder):
    settings, _ = built
    (settings.index_dir / CURRENT_FILE).unlink()
    (settings.index_dir / CURRENT_FILE).mkdir()
    with pytest.raises(BuildError, match=f"^cannot read {settings.index_dir / CURRENT_FILE}: Is a directory: remove "
                                         "it, and the next build starts the index anew$"):
        build_index(settings, embedder=embedder)


def test_a_generation_never_made_current_is_pruned_and_does_not_push_out_the_previous_one(built, embedder):
    settings, first = built
    path = settings.corpus_dir / "c.txt"
    path.write_text(path.read_text() + " Jadwal baru berlaku mulai bulan depan.")
    second = build_index(settings, embedder=embedder).generation
    generations = settings.index_dir / GENERATIONS_DIR
    orphan = generations / "99991231T235959-deadbeef"  # written in full, its build killed before CURRENT moved
    shutil.copytree(generations / second, orphan)
    files_writer.prune_generations(settings.index_dir)
    assert sorted(p.name for p in generations.iterdir()) == sorted([first.generation, second])


def test_the_previous_generation_is_kept_however_the_names_sort(built, embedder):
    """Two builds in one second (names differ by a random suffix), or a clock set back: the previous generation
    is the one CURRENT named before, not the one whose name sorts next."""
    settings, first = built
    generations = settings.index_dir / GENERATIONS_DIR
    names = {"current": "20000101T000000-aaaaaaaa", "previous": "20990101T000000-bbbbbbbb",
             "never made current": "20500101T000000-cccccccc", "older": "19990101T000000-dddddddd"}
    for name in names.values():
        shutil.copytree(generations / first.generation, generations / name)
    (settings.index_dir / CURRENT_FILE).write_text(names["current"] + "\n")
    (settings.index_dir / PREVIOUS_FILE).write_text(names["previous"] + "\n")
    files_writer.prune_generations(settings.index_dir)
    assert sorted(p.name for p in generations.iterdir()) == sorted([names["current"], names["previous"]])
    assert load_index(settings.index_dir).generation == names["current"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_worker_process_ends_with_the_build_that_started_it(tmp_path):
    """`qa index --workers N` killed with kill -9: its workers (~270 MB each) used to run on for good."""
    script = tmp_path / "build.py"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        "from qa.indexer import die_with_parent\n"
        "def work(parent):\n"
        "    die_with_parent(parent)\n"
        "    print('working', flush=True)\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    worker = multiprocessing.get_context('spawn').Process(target=work, args=(os.getpid(),))\n"
        "    worker.start()\n"
        "    print(worker.pid, flush=True)\n"
        "    time.sleep(120)\n")
    build = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(build.stdout.readline())
        assert build.stdout.readline().strip() == "working"
        build.kill()
        build.wait(30)
        deadline = time.monotonic() + 30
        while _is_running(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _is_running(worker_pid), "the worker outlived the build"
    finally:
        build.kill()


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def test_a_build_says_it_runs_while_it_holds_the_lock_and_a_dead_builds_word_does_not_count(corpus, embedder):
    seen = []

    class Watching:  # looks at the folder while the build embeds
        def __getattr__(self, name):
            return getattr(embedder, name)

        def encode_documents(self, *args, **kwargs):
            seen.append(pointer.build_running(corpus.index_dir))
            return embedder.encode_documents(*args, **kwargs)

    build_index(corpus, embedder=Watching())
    assert seen and all(seen) and not pointer.build_running(corpus.index_dir)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (corpus.index_dir / BUILDING_FILE).write_text(dead.stdout)  # left by a build killed with kill -9
    assert not pointer.build_running(corpus.index_dir)
    # The dead build's number taken by a process that started after the file was written: not a build.
    marker = corpus.index_dir / BUILDING_FILE
    marker.write_text(f"{os.getpid()}\n")
    assert pointer.build_running(corpus.index_dir)  # this process started before the file: it could be the build
    started = pointer._process_start(os.getpid())
    os.utime(marker, (started - 60, started - 60))
    assert not pointer.build_running(corpus.index_dir)


def test_a_folder_with_a_tab_in_its_name_that_cannot_be_listed_keeps_its_articles(corpus, embedder, monkeypatch):
    odd = corpus.corpus_dir / "arsip\tlama"
    odd.mkdir()
    (odd / "d.txt").write_text(ARTICLES["c.txt"], encoding="utf-8")
    build_index(corpus, embedder=embedder)
    cannot_list(monkeypatch, "arsip\tlama")
    report = build_index(corpus, embedder=embedder)
    assert [s.path for s in report.skipped] == ["arsip\tlama/"] and report.removed == []
    assert "arsip\tlama/d.txt" in load_index(corpus.index_dir).documents
