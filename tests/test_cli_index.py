"""`qa index` as a user runs it: a subprocess with its report (human-readable and --json) and exit code.

Exit codes: 0 all files indexed, 1 some files skipped (listed by name and reason), 2 nothing built.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.config import Settings
from qa.files.pointer import current_generation
from qa.files.reader import load_index
from qa.files.schema import GENERATIONS_DIR, TMP_PREFIX
from qa.indexer import build_index

PROJECT_DIR = Path(__file__).resolve().parent.parent
REPORT_FIELDS = {"added", "updated", "removed", "unchanged", "kept", "skipped", "not_read", "passages", "sentences",
                 "embedded_passages",
                 "embed_seconds", "workers",
                 "full_rebuild", "rebuild_reason", "generation", "seconds"}

ARTICLES = {
    "a.txt": (
        "Panen Padi di Karawang\n\n"
        "Petani di Karawang memanen padi lebih awal tahun ini. Hasil panen mencapai 7 ton per hektare. "
        "Varietas baru bernama zorbulanium dipakai di banyak sawah."
    ),
    "ekonomi/b.md": (
        "# Harga Cabai Turun\n\n"
        "Harga cabai rawit di Pasar Induk turun menjadi Rp 40.000 per kilogram. Pedagang menyebut pasokan "
        "dari Jawa Tengah melimpah."
    ),
    "c.txt": (
        "Kereta Cepat Tambah Jadwal\n\n"
        "Operator kereta cepat menambah empat perjalanan setiap akhir pekan. Penumpang kereta qwertyvoss "
        "meningkat selama libur sekolah."
    ),
}


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def qa_index(corpus: Path, index: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus), "--index", str(index), *args],
        capture_output=True, text=True, env=clean_env(**env), cwd=PROJECT_DIR, timeout=900,
    )


def json_report(result: subprocess.CompletedProcess) -> dict:
    assert result.stdout.strip(), f"no JSON on stdout; stderr: {result.stderr}"
    return json.loads(result.stdout)


def passages_of(index_dir: Path, doc_id: str) -> int:
    return sum(p.doc_id == doc_id for p in load_index(index_dir).passages)


def test_bad_files_are_listed_good_ones_indexed_and_exit_code_is_1(make_corpus):
    corpus, index = make_corpus({
        **ARTICLES,
        "kosong.txt": b"",
        "gambar.html": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "arsip/latin1.txt": "Harga naik di café kota.".encode("latin-1"),
        "besar.md": "Judul\n\n" + "Kalimat yang panjang sekali. " * 200,
        "tanggal.md": "---\npublished: 2024-13-45\n---\nIsi berita yang cukup panjang.\n",
    })
    os.symlink(corpus / "tidak-ada.txt", corpus / "rusak.txt")

    result = qa_index(corpus, index, "--json", QA_MAX_FILE_BYTES="2000")
    assert result.returncode == 1, result.stderr
    report = json_report(result)
    assert set(report) == REPORT_FIELDS
    assert sorted(report["added"]) == sorted(ARTICLES)
    assert (report["updated"], report["removed"], report["unchanged"]) == ([], [], [])
    assert report["full_rebuild"] is True and report["rebuild_reason"] == "no index yet"
    assert report["passages"] == report["embedded_passages"] == len(load_index(index).passages) > 0
    assert report["generation"] == current_generation(index)
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert reasons == {
        "kosong.txt": "empty file",
        "gambar.html": "binary file, not text",
        "arsip/latin1.txt": reasons["arsip/latin1.txt"],
        "besar.md": reasons["besar.md"],
        "rusak.txt": reasons["rusak.txt"],
        "tanggal.md": "front matter has a value YAML cannot read (month must be in 1..12): put it in quotes to "
                      "keep it as text",
    }
    assert reasons["arsip/latin1.txt"].startswith("not valid UTF-8")
    assert reasons["besar.md"].startswith("file too large")
    assert reasons["rusak.txt"].startswith(f"a link to {corpus / 'tidak-ada.txt'}, which does not exist")

    # The same corpus again, human-readable: the skipped files are named on stderr, nothing is rewritten.
    again = qa_index(corpus, index, QA_MAX_FILE_BYTES="2000")
    assert again.returncode == 1
    for path, reason in reasons.items():
        assert f"skipped {path}: {reason}" in again.stderr
    assert "0 added / 0 updated / 0 removed / 3 unchanged" in again.stdout
    assert "6 skipped" in again.stdout
    assert f"(generation {report['generation']})" in again.stdout
    assert current_generation(index) == report["generation"]


def test_files_of_other_types_are_named_as_not_read_and_do_not_fail_the_build(make_corpus):
    corpus, index = make_corpus({**ARTICLES, "laporan.pdf": b"%PDF-1.4", "foto/kereta.jpg": b"\xff\xd8\xff"})
    report = json_report(qa_index(corpus, index, "--json"))
    assert report["not_read"] == ["foto/kereta.jpg", "laporan.pdf"]
    assert sorted(report["added"]) == sorted(ARTICLES) and report["skipped"] == []

    again = qa_index(corpus, index)
    assert again.returncode == 0, again.stderr
    assert ("not read (only .txt, .md, .markdown, .html, .htm files are articles): foto/kereta.jpg, laporan.pdf"
            in again.stderr)
    assert "3 unchanged / " in again.stdout and " / 2 not read in " in again.stdout


def test_missing_corpus_path_exits_2_with_a_clear_message(tmp_path):
    result = qa_index(tmp_path / "no-such-folder", tmp_path / "index", "--json")
    assert result.returncode == 2
    message = f"corpus folder {tmp_path / 'no-such-folder'} does not exist"
    assert f"error: {message}" in result.stderr
    assert json_report(result)["error"].startswith(message)  # --json: a program reading stdout gets the error too
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("wait", ["nan", "-1", "inf"])
def test_a_wait_that_is_no_number_of_seconds_is_refused(tmp_path, wait):
    result = qa_index(tmp_path, tmp_path / "index", f"--wait={wait}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: --wait must be a number of seconds, 0 or more, not {float(wait)}" in result.stderr


def test_a_skipped_file_whose_name_holds_a_line_break_is_named_on_one_line(make_corpus):
    corpus, index = make_corpus({**ARTICLES, "rusak\nbaris.txt": "Judul\n\nTeks yang bisa dibaca."})
    result = qa_index(corpus, index)
    assert result.returncode == 1
    assert "skipped rusak\\x0abaris.txt: file name holds a line break (\\x0a): rename it\n" in result.stderr


def test_index_option_and_a_database_url_together_are_refused_not_one_silently_ignored(tmp_path):
    result = qa_index(tmp_path, tmp_path / "index", QA_DATABASE_URL="postgresql://qa@127.0.0.1:1/qa")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"error: --index {tmp_path / 'index'} names a folder, but QA_DATABASE_URL is set, so the index is in "
            "PostgreSQL: leave out --index, or unset QA_DATABASE_URL to use the folder") in result.stderr


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_an_index_path_that_is_a_file_exits_2_with_a_clear_message_for_index_and_ask(make_corpus, where):
    corpus, index = make_corpus(ARTICLES)
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text("not a folder")
    target = index if where == "file" else index / "sub"
    built = qa_index(corpus, target)
    assert built.returncode == 2 and "Traceback" not in built.stderr
    assert f"error: cannot make the index folder {target}: it or a folder above it is a file" in built.stderr
    asked = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "Berapa ton panen padi?", "--index", str(index)],
                           capture_output=True, text=True, env=clean_env(), cwd=PROJECT_DIR, timeout=300)
    assert asked.returncode == 2 and "Traceback" not in asked.stderr
    assert f"error: the index folder {index} is a file, not a folder" in asked.stderr
    assert index.read_text() == "not a folder"


def test_empty_corpus_folder_exits_2_with_a_clear_message(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "readme.pdf").write_bytes(b"%PDF")
    result = qa_index(tmp_path / "corpus", tmp_path / "index")
    assert result.returncode == 2
    assert "holds no articles: no .txt, .md, .markdown, .html or .htm files (not read: readme.pdf)" in result.stderr
    assert str(tmp_path / "corpus") in result.stderr
    assert "Traceback" not in result.stderr
    assert current_generation(tmp_path / "index") is None


def test_corpus_of_only_bad_files_exits_2_and_names_them(make_corpus):
    corpus, index = make_corpus({"kosong.txt": b"", "iklan.txt": "Iklan\nScroll Untuk Melanjutkan\n"})
    result = qa_index(corpus, index, "--json")
    assert result.returncode == 2
    assert "no file in the corpus could be indexed" in result.stderr
    assert "kosong.txt: empty file" in json_report(result)["error"]
    assert "kosong.txt: empty file" in result.stderr
    assert "iklan.txt: nothing left after removing page furniture" in result.stderr


def test_edit_delete_restore_and_a_changed_setting(make_corpus, embedder):
    corpus, index = make_corpus(ARTICLES)
    build_index(Settings(corpus_dir=corpus, index_dir=index), embedder=embedder)
    c_passages = passages_of(index, "c.txt")

    # Edit one article: only it is re-embedded.
    path = corpus / "ekonomi/b.md"
    path.write_text(path.read_text() + " Pemerintah berjanji menjaga harga stabil hingga akhir tahun.")
    result = qa_index(corpus, index, "--json")
    assert result.returncode == 0, result.stderr
    report = json_report(result)
    assert report["updated"] == ["ekonomi/b.md"]
    assert (report["added"], report["removed"], report["skipped"]) == ([], [], [])
    assert sorted(report["unchanged"]) == ["a.txt", "c.txt"]
    assert report["full_rebuild"] is False
    assert report["embedded_passages"] == passages_of(index, "ekonomi/b.md")

    # Delete one: it is gone from the report's count and from the index.
    original = (corpus / "c.txt").read_bytes()
    (corpus / "c.txt").unlink()
    report = json_report(qa_index(corpus, index, "--json"))
    assert report["removed"] == ["c.txt"] and report["embedded_passages"] == 0
    loaded = load_index(index)
    assert "c.txt" not in loaded.documents and passages_of(index, "c.txt") == 0
    assert loaded.vectors.ntotal == len(loaded.passages) == report["passages"]
    assert not loaded.lexical.scores("qwertyvoss").any()

    # Restore it: back, and only it is embedded.
    (corpus / "c.txt").write_bytes(original)
    report = json_report(qa_index(corpus, index, "--json"))
    assert report["added"] == ["c.txt"] and report["embedded_passages"] == c_passages
    assert passages_of(index, "c.txt") == c_passages
    assert load_index(index).lexical.scores("qwertyvoss").any()

    # A changed splitting setting rebuilds everything by itself, and says why.
    result = qa_index(corpus, index, "--json", QA_PASSAGE_SENTENCES="3")
    report = json_report(result)
    assert report["full_rebuild"] is True
    assert report["rebuild_reason"] == "settings changed: passage_sentences"
    assert report["embedded_passages"] == report["passages"] and report["unchanged"] == []
    assert load_index(index).manifest["passage_sentences"] == 3


def test_human_readable_report_says_why_everything_was_rebuilt(make_corpus, embedder):
    # In-process (the model is already loaded by the fixture); the subprocess tests cover the real command.
    from typer.testing import CliRunner

    from qa.cli import app

    corpus, index = make_corpus(ARTICLES)
    build_index(Settings(corpus_dir=corpus, index_dir=index), embedder=embedder)
    result = CliRunner().invoke(app, ["index", "--corpus", str(corpus), "--index", str(index)],
                                env={"QA_PASSAGE_OVERLAP": "0"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "full rebuild (settings changed: passage_overlap)"
    passages = len(load_index(index).passages)
    assert re.fullmatch(rf"3 added / 0 updated / 0 removed / 0 unchanged / {passages} passages in \d+\.\ds "
                        rf"\(embedded {passages} passages at \d+\.\d/s with 1 worker\)", lines[1])
    assert lines[2] == f"index: {index} (generation {current_generation(index)})"


def _article(number: int) -> str:
    return (f"Berita Daerah Nomor {number}\n\n"
            f"Warga desa nomor {number} membangun jembatan baru sepanjang {number * 3} meter bersama relawan.")


def _wait_for(predicate, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            pytest.fail(f"the build ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


PAUSE_WHILE_WRITING = """
import sys, time
import qa.files.writer as writer
def pause(path):
    print("writing", path, flush=True)
    time.sleep(600)
writer._fsync_tree = pause  # the new generation is fully written to its temporary folder; wait to be killed
from qa.cli import app
sys.argv = ["qa", "index", "--corpus", sys.argv[1], "--index", sys.argv[2]]
app()
"""


def test_kill_9_at_any_point_keeps_the_previous_index_and_the_next_run_repairs(make_corpus, embedder, tmp_path):
    corpus, index = make_corpus({"a.txt": ARTICLES["a.txt"], "c.txt": ARTICLES["c.txt"]})
    settings = Settings(corpus_dir=corpus, index_dir=index)
    first = build_index(settings, embedder=embedder)
    before = [(p.doc_id, p.start, p.end, p.text) for p in load_index(index).passages]
    generations = index / GENERATIONS_DIR

    def still_the_previous_index() -> None:
        loaded = load_index(index)
        assert loaded.generation == first.generation
        assert [(p.doc_id, p.start, p.end, p.text) for p in loaded.passages] == before
        assert loaded.vectors.ntotal == len(before) == loaded.lexical.size

    # 1. Killed while the new generation is being written (files complete, not yet renamed into place).
    (corpus / "d-001.txt").write_text(_article(1))
    log = tmp_path / "writer.log"
    with open(log, "w") as out:
        writer = subprocess.Popen([sys.executable, "-c", PAUSE_WHILE_WRITING, str(corpus), str(index)],
                                  stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=PROJECT_DIR)
        _wait_for(lambda: "writing" in log.read_text(), writer, 600, "the new generation to be written")
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    leftovers = [p for p in generations.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert leftovers and (leftovers[0] / "store.sqlite").exists()
    still_the_previous_index()

    # 2. Killed in the middle of embedding a corpus big enough to take a while (50 files show progress).
    for number in range(2, 50):
        (corpus / f"d-{number:03}.txt").write_text(_article(number))
    progress = tmp_path / "progress.log"
    with open(progress, "w") as err:
        build = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus),
                                  "--index", str(index)],
                                 stdout=subprocess.DEVNULL, stderr=err, env=clean_env(), cwd=PROJECT_DIR)

        def some_files_done() -> bool:
            counts = [int(n) for n in re.findall(r"(\d+)/51\b", progress.read_text(errors="replace"))]
            return bool(counts) and max(counts) >= 8

        _wait_for(some_files_done, build, 600, "indexing progress")
        os.kill(build.pid, signal.SIGKILL)
        build.wait()
    assert build.returncode == -signal.SIGKILL
    assert not leftovers[0].exists(), "the second run should have cleared the first run's leftover"
    still_the_previous_index()

    # 2b. Stopped with Ctrl-C in the middle of embedding: one line that says so, exit 130, the index as it was.
    with open(progress, "w") as err:
        build = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus),
                                  "--index", str(index)],
                                 stdout=subprocess.DEVNULL, stderr=err, env=clean_env(), cwd=PROJECT_DIR,
                                 # a shell running this in the background may ignore SIGINT; a terminal does not
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        _wait_for(some_files_done, build, 600, "indexing progress")
        os.kill(build.pid, signal.SIGINT)
        build.wait(timeout=120)
    assert build.returncode == 130
    said = progress.read_text(errors="replace")
    assert said.rstrip().endswith("error: interrupted: the index in use is the last build that finished")
    assert "Traceback" not in said
    still_the_previous_index()

    # 2c. Stopped by SIGTERM (`timeout`, systemd, `kill`): the same line, exit 143.
    with open(progress, "w") as err:
        build = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus),
                                  "--index", str(index)],
                                 stdout=subprocess.DEVNULL, stderr=err, env=clean_env(), cwd=PROJECT_DIR)
        _wait_for(some_files_done, build, 600, "indexing progress")
        os.kill(build.pid, signal.SIGTERM)
        build.wait(timeout=120)
    assert build.returncode == 128 + signal.SIGTERM
    said = progress.read_text(errors="replace")
    assert said.rstrip().endswith("error: interrupted: the index in use is the last build that finished")
    still_the_previous_index()

    # 3. The next run succeeds, indexes everything and clears what the killed runs left behind.
    report = build_index(settings, embedder=embedder)
    assert sorted(report.added) == sorted(f"d-{n:03}.txt" for n in range(1, 50))
    assert sorted(report.unchanged) == ["a.txt", "c.txt"]
    assert not [p for p in generations.iterdir() if p.name.startswith(TMP_PREFIX)]
    loaded = load_index(index)
    assert loaded.generation == report.generation != first.generation
    assert len(loaded.documents) == 51 and loaded.vectors.ntotal == len(loaded.passages) == report.passages
