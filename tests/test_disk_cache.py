"""What is built at load is kept on disk: reused when intact, built again when missing, damaged or unwritable."""

from __future__ import annotations

import pytest

from qa.disk_cache import cached_bytes


def counting(data: bytes):
    calls = []

    def build() -> bytes:
        calls.append(1)
        return data
    return build, calls


def test_bytes_are_built_once_then_read_back(tmp_path):
    build, calls = counting(b"graph")
    file = tmp_path / "cache" / "thing-v1.onnx"
    assert cached_bytes(file, build) == b"graph" and cached_bytes(file, build) == b"graph"
    assert len(calls) == 1 and file.read_bytes() == b"graph"
    assert sorted(p.name for p in file.parent.iterdir()) == ["thing-v1.onnx", "thing-v1.onnx.sha256"]


def test_a_damaged_copy_is_built_again(tmp_path):
    build, calls = counting(b"graph")
    file = tmp_path / "thing.onnx"
    cached_bytes(file, build)
    file.write_bytes(b"grap")  # cut short
    assert cached_bytes(file, build) == b"graph" and len(calls) == 2
    assert file.read_bytes() == b"graph"


def test_a_cache_that_cannot_be_written_only_costs_building(tmp_path):
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    build, calls = counting(b"graph")
    file = tmp_path / "blocked" / "thing.onnx"
    assert cached_bytes(file, build) == b"graph" and cached_bytes(file, build) == b"graph"
    assert len(calls) == 2


def test_the_tokenizer_reads_the_same_from_its_cached_model(tmp_path):
    from qa.e5_runtime import E5Tokenizer, default_model_file, read_model_file

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

    from qa.e5_runtime import E5Tokenizer, ThreadSessions, default_model_file, read_model_file

    weights = read_model_file(default_model_file())
    text = "Kapan Rusia memveto resolusi Dewan Keamanan PBB?"
    built = E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text)
    [model] = tmp_path.glob("e5-*.model")
    junk = b"not a sentencepiece model" * 200
    model.write_bytes(junk)
    model.with_name(model.name + ".sha256").write_text(hashlib.sha256(junk).hexdigest() + "\n")
    assert E5Tokenizer(weights, cache_dir=tmp_path).content_ids(text) == built
    assert model.read_bytes() != junk  # and the cache holds a good copy again

    without_rebuild = ThreadSessions(b"", rebuild=None)
    with pytest.raises(Exception):
        without_rebuild(1)  # no way to rebuild: the loader's error stands
    rebuilt = []
    graph = ThreadSessions(junk, rebuild=lambda: rebuilt.append(1) or _tiny_graph())
    assert graph(1).get_inputs()[0].name == "x" and rebuilt == [1]


def _tiny_graph() -> bytes:
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
