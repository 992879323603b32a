"""What is built at load is kept on disk: reused when intact, built again when missing, damaged or unwritable."""

from __future__ import annotations

from qa.disk_cache import cached_and_loaded


def counting(data: bytes):
    calls = []

    def build() -> bytes:
        calls.append(1)
        return data
    return build, calls


def loaded(file, build) -> str:
    """What a loader makes of the cached bytes (here their text), as the tokenizer and the graphs load theirs."""
    return cached_and_loaded(file, build, bytes.decode)


def test_bytes_are_built_once_then_read_back(tmp_path):
    build, calls = counting(b"graph")
    file = tmp_path / "cache" / "thing-v1.onnx"
    assert loaded(file, build) == "graph" and loaded(file, build) == "graph"
    assert len(calls) == 1 and file.read_bytes() == b"graph"
    assert sorted(p.name for p in file.parent.iterdir()) == ["thing-v1.onnx", "thing-v1.onnx.sha256"]


def test_a_damaged_copy_is_built_again(tmp_path):
    build, calls = counting(b"graph")
    file = tmp_path / "thing.onnx"
    loaded(file, build)
    file.write_bytes(b"grap")  # cut short
    assert loaded(file, build) == "graph" and len(calls) == 2
    assert file.read_bytes() == b"graph"


def test_a_cache_that_cannot_be_written_only_costs_building(tmp_path):
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    build, calls = counting(b"graph")
    file = tmp_path / "blocked" / "thing.onnx"
    assert loaded(file, build) == "graph" and loaded(file, build) == "graph"
    assert len(calls) == 2


def test_the_tokenizer_reads_the_same_from_its_cached_model(tmp_path):
    from qa.e5.tokenizer import E5Tokenizer
    from qa.e5.weights import default_model_file, read_model_file

    weights = read_model_file(default_model_file())
    text = "Kapan Rusia memveto resolusi Dewan Keamanan PBB? When did Putin arrive in Pyongyang?"
    built = E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text)
    [model] = tmp_path.glob("e5-*.model")
    assert E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text) == built
    model.write_bytes(model.read_bytes()[:1000])  # damaged: built again, the same
    assert E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text) == built
    assert len(built) > 10


def test_a_cached_copy_whose_checksum_matches_but_cannot_be_used_is_built_again(tmp_path):
    """Written whole by something else (its .sha256 matching): the loader's failure, not the checksum, tells."""
    import hashlib

    from qa.e5.tokenizer import E5Tokenizer
    from qa.e5.weights import default_model_file, read_model_file

    weights = read_model_file(default_model_file())
    text = "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"
    built = E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text)
    [model] = tmp_path.glob("e5-*.model")
    junk = b"not a sentencepiece model" * 200
    model.write_bytes(junk)
    model.with_name(model.name + ".sha256").write_text(hashlib.sha256(junk).hexdigest() + "\n")
    assert E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text) == built
    assert model.read_bytes() != junk  # and the cache holds a good copy again



def _spoil(file) -> None:
    """Junk in place of a cached file, with a checksum that matches it."""
    import hashlib

    junk = b"not a graph" * 500
    file.write_bytes(junk)
    file.with_name(file.name + ".sha256").write_text(hashlib.sha256(junk).hexdigest() + "\n")


def test_an_encoder_graph_cached_whole_but_unusable_is_built_again(tmp_path, monkeypatch):
    import numpy as np

    from qa.e5.runtime import E5Runtime

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = E5Runtime().encode(["Kapan Putin tiba di Pyongyang?"], is_query=True)
    [graph] = (tmp_path / "qa-news" / "embedder").glob("*.onnx")
    _spoil(graph)
    again = E5Runtime().encode(["Kapan Putin tiba di Pyongyang?"], is_query=True)
    assert np.allclose(first, again) and graph.read_bytes() != b"not a graph" * 500


def test_a_reader_graph_cached_whole_but_unusable_is_built_again(tmp_path, monkeypatch):
    from qa.reader.runtime import ReaderRuntime

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    context = "Rusia memveto resolusi itu pada 28 Maret 2024."
    first = ReaderRuntime().read("Kapan Rusia memveto resolusi itu?", context)[0]
    [graph] = (tmp_path / "qa-news" / "reader").glob("*.onnx")
    _spoil(graph)
    again = ReaderRuntime().read("Kapan Rusia memveto resolusi itu?", context)[0]
    assert (again.start, again.end) == (first.start, first.end) and context[first.start:first.end].startswith("28 Maret 2024")
