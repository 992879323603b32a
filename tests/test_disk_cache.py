"""What is built at load is kept on disk: reused when intact, built again when missing, damaged or unwritable."""

from __future__ import annotations

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
