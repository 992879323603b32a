"""The reader: its input windows and offsets, span decoding, the shipped weights and their checks, export,
and a few training steps."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from conftest import LOCAL
from tiny_training_set import write_tiny_training_set

from qa.config import SHARED_DIR
from qa.reader.decode import best_span
from qa.reader.read import tidy_span
from qa.reader.runtime import CARD_FILE, MODEL_DIR, ReaderModelError, ReaderRuntime
from qa.reader.windows import token_span

CONTEXT = ("Pada 28 Maret 2024, Rusia memveto resolusi Dewan Keamanan PBB yang memperpanjang panel pemantau "
           "sanksi terhadap Korea Utara. Putin tiba di Pyongyang pada 19 Juni 2024, kunjungan pertamanya dalam "
           "24 tahun.")


@pytest.fixture(scope="module")
def reader():
    return ReaderRuntime()


def test_every_context_token_slices_to_characters_of_its_word(reader):
    tokens = reader.words.context(CONTEXT)
    assert len(tokens.ids) == len(tokens.starts) == len(tokens.ends)
    words = [(w.start(), w.end()) for w in __import__("re").finditer(r"\S+", CONTEXT)]
    for start, end in zip(tokens.starts, tokens.ends):
        assert start < end
        assert any(ws <= start and end <= we for ws, we in words)
    # A comma glued to a date is a token of its own, so the date can be an answer without it.
    assert CONTEXT.index("2024,") + 4 in tokens.ends


def test_windows_cover_the_whole_context_and_overlap(reader):
    tokens = reader.words.context(CONTEXT * 6)
    question = reader.words.question_ids("Kapan Rusia memveto resolusi?")
    windows = reader.words.windows(question, tokens, max_tokens=64, stride=40)
    assert len(windows) > 2
    assert windows[0].first == 0
    assert windows[-1].first + windows[-1].count == len(tokens.ids)
    for before, after in zip(windows, windows[1:]):
        assert after.first == before.first + 40 and after.first < before.first + before.count
    assert all(len(w.ids) <= 64 for w in windows)


def test_an_answer_maps_to_the_tokens_of_the_window_that_holds_it(reader):
    tokens = reader.words.context(CONTEXT)
    window = reader.words.windows(reader.words.question_ids("Kapan?"), tokens, 192, 128)[0]
    start = CONTEXT.index("28 Maret 2024")
    first, last = token_span(tokens, window, start, start + len("28 Maret 2024"))
    i, j = first - window.offset + window.first, last - window.offset + window.first
    assert CONTEXT[tokens.starts[i]:tokens.ends[j]] == "28 Maret 2024"
    # A window that does not hold the answer gives no span.
    late = reader.words.windows([], tokens, 24, 16)[-1]
    assert token_span(tokens, late, start, start + 13) is None


def test_best_span_respects_order_and_length():
    start = np.array([5.0, 0, 3, -5, -5, -5])
    end = np.array([5.0, 0, 0, 0, 4, 9])
    # Context tokens are positions 1..5; position 0 is "no answer".
    span = best_span(start, end, offset=1, count=5, max_tokens=3)
    assert (span.first, span.last) == (1, 3)  # positions 2..4: start 3 + end 4; 2..5 would be 4 tokens
    assert span.score == 7.0 and span.null == 10.0 and span.margin == -3.0


@pytest.mark.parametrize("text, expected", [
    ("28 Maret 2024,", "28 Maret 2024"),
    ("pada tahun 2017.", "pada tahun 2017"),
    ("Vladivostok.", "Vladivostok"),
    ("Kim Jong Un dan Dr.", "Kim Jong Un dan Dr."),
    ("anggota Dewan Keamanan PBB.", "anggota Dewan Keamanan PBB"),
    ("di AS.", "di AS"),
    ("Presiden George W.", "Presiden George W."),
    ("dan lain-lain, dll.", "dan lain-lain, dll."),
    ("the U.S.", "the U.S."),
    (" Vladivostok ", "Vladivostok"),
    ("(Korea Utara", "Korea Utara"),
    ("panel (PBB)", "panel (PBB)"),
    ("“perang suci”", "“perang suci”"),
    (".", ""),
    (" — ", ""),
    ("“”", ""),
])
def test_tidy_span_trims_what_no_answer_ends_with(text, expected):
    start, end = tidy_span(text, 0, len(text))
    assert text[start:end] == expected


def test_the_shipped_reader_finds_the_date_and_the_place(reader):
    span = reader.read("Kapan Rusia memveto resolusi Dewan Keamanan PBB?", CONTEXT)[0]
    assert CONTEXT[span.start:span.end] == "28 Maret 2024"
    assert span.margin > 0
    span = reader.read("Where did Putin arrive in June 2024?", CONTEXT)[0]
    assert CONTEXT[span.start:span.end] == "Pyongyang"


def test_the_shipped_reader_sees_no_answer_where_there_is_none(reader):
    answered = reader.read("Kapan Rusia memveto resolusi Dewan Keamanan PBB?", CONTEXT)[0]
    unrelated = reader.read("Siapa istri Kim Jong Un?", CONTEXT)[0]
    assert unrelated.margin < answered.margin
    assert reader.calibration.confidence(unrelated.margin, 0.8) < reader.calibration.threshold


def test_the_shipped_weights_are_small_and_their_card_says_how_they_were_made():
    card = json.loads(CARD_FILE.read_text())
    weights = MODEL_DIR / card["weights_file"]
    assert weights.stat().st_size <= 40_000_000
    assert card["sha256"]
    # The operating points the README states: 0.02 for Indonesian questions, 0.09 for English ones.
    assert (card["calibration"]["threshold"], card["calibration"]["english_threshold"]) == (0.02, 0.09)
    assert card["held_out"]["indonesian"]["has_answer_f1"] > 0.6


@pytest.fixture
def reader_copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(MODEL_DIR, folder)
    return folder


def test_a_missing_weights_file_is_named_with_how_to_restore_it(reader_copy):
    (reader_copy / "reader.npz").unlink()
    with pytest.raises(ReaderModelError) as raised:
        ReaderRuntime(reader_copy / "reader.json")
    assert str(reader_copy / "reader.npz") in str(raised.value)
    assert "missing" in str(raised.value)
    # A reader outside the repository (QA_READER_DIR) is not restored by git: the shipped one is the way back.
    assert (f"export it again (`qa export-reader --out {reader_copy}`), or unset QA_READER_DIR to use the shipped "
            "reader in qa/reader/model/") in str(raised.value)


def test_a_damaged_weights_file_is_refused_by_its_checksum(reader_copy):
    weights = reader_copy / "reader.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ReaderModelError, match="damaged"):
        ReaderRuntime(reader_copy / "reader.json")


def test_a_missing_card_is_named(reader_copy):
    (reader_copy / "reader.json").unlink()
    with pytest.raises(ReaderModelError, match="model card .*missing"):
        ReaderRuntime(reader_copy / "reader.json")


@pytest.mark.parametrize("card, message", [
    ("[]", "is not a JSON object"),
    ("{}", "names no weights file (its weights_file is None)"),
    ('{"weights_file": "../reader.npz"}', "names no weights file (its weights_file is '../reader.npz')"),
])
def test_a_card_that_is_not_a_card_is_named_with_how_to_restore_it(reader_copy, card, message):
    (reader_copy / "reader.json").write_text(card, encoding="utf-8")
    with pytest.raises(ReaderModelError, match=re.escape(message) + ".*unset QA_READER_DIR"):
        ReaderRuntime(reader_copy / "reader.json")


def test_an_unreadable_weights_file_is_named_with_how_to_restore_it(reader_copy, monkeypatch):
    from qa.reader import runtime

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(runtime, "sha256_of", unreadable)  # root reads any file: chmod 000 cannot test this
    with pytest.raises(ReaderModelError, match=r"reader\.npz cannot be read \(Permission denied\).*QA_READER_DIR"):
        ReaderRuntime(reader_copy / "reader.json")


def test_export_keeps_the_torch_models_scores(tmp_path, reader):
    """A checkpoint exported to 8-bit weights and run by ONNX Runtime's integer kernels scores spans as torch
    does, within what two 8-bit quantizations cost (measured on TyDi QA: F1 0.733 -> 0.725, docs/reader.md)."""
    torch = pytest.importorskip("torch")
    from qa.reader.export import export_checkpoint
    from qa.reader.model import Reader

    torch.manual_seed(0)
    model = Reader(reader.e5).eval()
    torch.nn.init.normal_(model.head.weight, std=0.5)
    torch.save({"model": model.state_dict(), "config": {"max_tokens": 192}}, tmp_path / "best.pt")
    card = export_checkpoint(tmp_path / "best.pt", tmp_path / "out" / "reader.npz", tmp_path / "out" / "reader.json")
    exported = ReaderRuntime(tmp_path / "out" / "reader.json", e5=reader.e5, calibrated=False)
    assert card["sha256"] == exported.card["sha256"]
    window = exported.words.windows(exported.words.question_ids("Kapan?"), exported.words.context(CONTEXT), 192, 128)[0]
    with torch.no_grad():
        start, _ = model(torch.tensor([window.ids]), torch.ones(1, len(window.ids), dtype=torch.bool))
    onnx_start, _ = exported.logits(window.ids)
    expected = start[0].numpy()
    assert np.corrcoef(expected, onnx_start)[0, 1] > 0.97
    assert np.abs(expected - onnx_start).max() < 0.2 * np.abs(expected).max()
    assert np.argmax(onnx_start[window.offset:]) == np.argmax(expected[window.offset:])  # the same best start


def test_the_shipped_weights_read_back_as_float_export_to_the_same_file(tmp_path, reader):
    """Training can continue from the shipped reader (--init-from reader.npz): its weights read back as a float
    state that fits the torch model and quantizes to exactly the shipped codes and scales."""
    pytest.importorskip("torch")
    from qa.reader.export import export_checkpoint, load_state
    from qa.reader.model import Reader
    from qa.reader.runtime import load_arrays
    from qa.reader.train import torch_state

    Reader(reader.e5).load_state_dict(torch_state(load_state(MODEL_DIR / "reader.npz")[0]))  # every name, strict

    card = export_checkpoint(MODEL_DIR / "reader.npz", tmp_path / "reader.npz", tmp_path / "reader.json")
    _, shipped = load_arrays()
    _, again = load_arrays(tmp_path / "reader.json")
    assert card["layers"] == 12 and sorted(again) == sorted(shipped)
    for name in shipped:
        assert np.array_equal(again[name], shipped[name]), name


def test_several_checkpoints_are_exported_as_their_average(tmp_path, reader):
    torch = pytest.importorskip("torch")
    from qa.reader.export import export_checkpoint, load_state
    from qa.reader.model import Reader

    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = Reader(reader.e5)
        torch.nn.init.normal_(model.head.weight, std=0.5)
        torch.nn.init.normal_(model.layers[3].fi.bias, std=0.5)
        paths.append(tmp_path / f"run{seed}.pt")
        torch.save({"model": model.state_dict(), "config": {"seed": seed}, "held_out": {"run": seed}}, paths[-1])
    card = export_checkpoint(paths, tmp_path / "out" / "reader.npz", tmp_path / "out" / "reader.json",
                             score=lambda state: {"average": True})
    first, second = (load_state(p)[0] for p in paths)
    averaged, meta = load_state(tmp_path / "out" / "reader.npz")
    for name in ("head.weight", "layers.3.fi.bias"):
        assert np.allclose(averaged[name], (first[name] + second[name]) / 2, atol=1e-6)
        assert not np.allclose(averaged[name], first[name])
    assert [a["held_out"] for a in card["averaged"]] == [{"run": 1}, {"run": 2}]
    assert card["held_out"] == meta["held_out"] == {"average": True} and card["training"] is None


@pytest.fixture(params=["tiny", "shared"])
def training_folder(request, tmp_path):
    """(folder, examples per source): a made-up training folder of the real files' shape (every machine), and the
    real one, cut to its first examples (where it is)."""
    if request.param == "tiny":
        return write_tiny_training_set(tmp_path / "train"), None
    if not (SHARED_DIR / "train").is_dir():
        pytest.skip("../shared/train is not here")
    return SHARED_DIR / "train", 6


def test_a_few_training_steps_write_a_checkpoint_and_resume_from_it(tmp_path, training_folder):
    pytest.importorskip("torch")
    from qa.reader.train import TrainConfig, train

    data, limit = training_folder
    config = TrainConfig(data_dir=data, out_dir=tmp_path / "run", epochs=1.0, batch_size=8,
                         limit=limit, held_out_limit=4, checkpoint_every=2, evaluations_per_epoch=1,
                         init_from=MODEL_DIR / "reader.npz", near_share=0.5, respell=True,
                         generated_unanswerable=False)
    best = train(config, progress=False)
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()
    assert "indonesian" in best and "indonesian-respelled" in best and best["step"] >= 1
    evals = [json.loads(line)["eval"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
             if "eval" in line]
    assert best["selection_score"] == max(e["selection_score"] for e in evals)
    # Run again with a longer schedule: it resumes from the checkpoint instead of starting over.
    config.epochs = 2.0
    train(config, progress=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    steps = [json.loads(line)["eval"]["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
             if "eval" in line]
    assert steps == sorted(set(steps)) and steps[-1] == 2 * run["steps_per_epoch"]


def test_train_then_export_from_the_command_line_gives_a_reader_that_answers(tmp_path):
    """The retraining workflow of docs/reader.md end to end, on a made-up training folder: `qa train-reader`,
    `qa export-reader` into a folder of its own, and that reader loads (its sha256 checked) and reads."""
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from qa.cli import app

    data = write_tiny_training_set(tmp_path / "train")
    trained = CliRunner().invoke(app, ["train-reader", "--data", str(data), "--out", str(tmp_path / "run"),
                                       "--epochs", "0.5", "--batch-size", "8", "--held-out-limit", "4",
                                       "--init-from", str(MODEL_DIR / "reader.npz")])
    assert trained.exit_code == 0, trained.output
    assert f"best held-out checkpoint: {tmp_path / 'run' / 'best.pt'}" in trained.output
    exported = CliRunner().invoke(app, ["export-reader", str(tmp_path / "run" / "best.pt"),
                                        "--out", str(tmp_path / "model"), "--data", str(data)])
    assert exported.exit_code == 0, exported.output
    assert f"wrote {tmp_path / 'model' / 'reader.npz'}" in exported.output
    assert f"next: .venv/bin/python benchmarks/calibrate.py --write --card {tmp_path / 'model' / 'reader.json'}" in exported.output
    card = json.loads((tmp_path / "model" / "reader.json").read_text())
    assert card["training"]["data_dir"] == str(data) and card["held_out"]["step"] >= 1
    with pytest.raises(ReaderModelError, match=r"is not calibrated \(its card reader.json has no calibration\): run "
                                               r"`.venv/bin/python benchmarks/calibrate.py --write --card .*model/reader.json`"):
        ReaderRuntime(tmp_path / "model" / "reader.json")  # its confidence would mean nothing
    spans = ReaderRuntime(tmp_path / "model" / "reader.json", calibrated=False).read("Kapan Putin tiba di Pyongyang?",
                                                                                     CONTEXT)
    assert spans[0] is not None and CONTEXT[spans[0].start:spans[0].end].strip()


def test_ask_with_a_damaged_reader_is_a_503_that_names_the_file(built_index, embedder, reader_copy):
    from fastapi.testclient import TestClient

    from qa.api import create_app
    from qa.service import QAService

    settings, _ = built_index
    (reader_copy / "reader.npz").write_bytes(b"not the weights")
    broken = QAService(settings.model_copy(update={"reader_dir": reader_copy}), embedder=embedder)
    with TestClient(create_app(broken.settings, service=broken), base_url=LOCAL) as client:
        response = client.post("/ask", json={"question": "When did Putin visit Pyongyang?"})
    assert response.status_code == 503
    assert str(reader_copy / "reader.npz") in response.json()["detail"]
    assert "damaged" in response.json()["detail"]


def test_serve_refuses_to_start_without_the_reader_and_says_how_to_restore_it(reader_copy, tmp_path):
    import os
    import subprocess
    import sys

    (reader_copy / "reader.npz").unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"QA_READER_DIR": str(reader_copy)}
    result = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--port", "0"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2
    assert f"error: the reader's weights file {reader_copy / 'reader.npz'} is missing" in result.stderr
    assert "or unset QA_READER_DIR to use the shipped reader in qa/reader/model/" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_the_shipped_reader_is_restored_from_the_repository():
    from qa.reader.runtime import CARD_FILE, restore_hint

    assert restore_hint(CARD_FILE).startswith("restore it with `git checkout -- qa/reader/model/`")


def test_serve_refuses_to_start_with_a_reader_that_is_not_calibrated(reader_copy):
    import os
    import subprocess
    import sys

    card = json.loads((reader_copy / "reader.json").read_text())
    card.pop("calibration")  # as `qa export-reader` leaves new weights
    (reader_copy / "reader.json").write_text(json.dumps(card))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"QA_READER_DIR": str(reader_copy)}
    result = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--port", "0"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "serving on" not in result.stdout
    assert (f"error: the reader in {reader_copy} is not calibrated (its card reader.json has no calibration): run "
            f"`.venv/bin/python benchmarks/calibrate.py --write --card {reader_copy / 'reader.json'}`") in result.stderr


def test_a_one_step_smoke_run_finishes_and_a_run_is_not_resumed_with_other_settings(tmp_path):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from qa.cli import app

    data = write_tiny_training_set(tmp_path / "train")
    run = ["train-reader", "--data", str(data), "--out", str(tmp_path / "run"), "--limit", "2", "--held-out-limit", "2",
           "--epochs", "1"]
    smoke = CliRunner().invoke(app, [*run, "--batch-size", "512"])  # one step: its warm-up is the whole run
    assert smoke.exit_code == 0, smoke.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["total_steps"] == 1
    other = CliRunner().invoke(app, [*run, "--learning-rate", "0.001", "--batch-size", "4"])
    assert other.exit_code == 2 and "Traceback" not in other.output
    assert (f"{tmp_path / 'run'} holds a run trained with other settings (--batch-size 512 there, --batch-size 4 now; "
            "--learning-rate 8e-05 there, --learning-rate 0.001 now): resume it with its own settings, or give another --out "
            "for a new run") in " ".join(other.output.split())


def test_a_finished_run_is_never_overwritten_and_a_stopped_run_keeps_its_steps(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    import qa.reader.train
    from qa.cli import app

    data = write_tiny_training_set(tmp_path / "train")
    run = ["train-reader", "--data", str(data), "--out", str(tmp_path / "run"), "--limit", "4", "--held-out-limit", "2",
           "--epochs", "2", "--batch-size", "2"]
    real, calls = qa.reader.train.tensors, []

    def stopped_at_the_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C
        return real(*args)

    monkeypatch.setattr(qa.reader.train, "tensors", stopped_at_the_third_step)
    stopped = CliRunner().invoke(app, run)
    assert stopped.exit_code == 130 and "Traceback" not in stopped.output
    assert "stopped at step 2 of" in stopped.output and "the same command resumes it" in stopped.output
    monkeypatch.setattr(qa.reader.train, "tensors", real)
    resumed = CliRunner().invoke(app, run)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from" in resumed.output and "at step 2 of" in resumed.output  # no step lost

    (tmp_path / "run" / "checkpoint.pt").unlink()  # the big file, removed once the run is done
    best = (tmp_path / "run" / "best.pt").read_bytes()
    again = CliRunner().invoke(app, run)
    assert again.exit_code == 2 and "holds a finished run (best.pt) without the checkpoint.pt" in again.output
    assert (tmp_path / "run" / "best.pt").read_bytes() == best
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps(record | {"finished": False}))  # killed before a checkpoint
    assert CliRunner().invoke(app, run).exit_code == 0  # not finished: it starts again


def test_train_reader_stopped_by_sigterm_keeps_its_last_step_and_says_how_to_resume(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import os
    import signal

    from typer.testing import CliRunner

    import qa.reader.train
    from qa.cli import app

    data = write_tiny_training_set(tmp_path / "train")
    real, calls = qa.reader.train.tensors, []

    def terminated_at_the_third_step(*args):  # as `timeout`, systemd or `kill` stop it
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(qa.reader.train, "tensors", terminated_at_the_third_step)
    before = signal.getsignal(signal.SIGTERM)
    stopped = CliRunner().invoke(app, ["train-reader", "--data", str(data), "--out", str(tmp_path / "run"),
                                       "--limit", "4", "--held-out-limit", "2", "--epochs", "2", "--batch-size", "2"])
    assert stopped.exit_code == 128 + signal.SIGTERM and "Traceback" not in stopped.output
    assert "stopped at step 2 of" in stopped.output and "the same command resumes it" in stopped.output
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("option, value", [("--epochs", "0"), ("--epochs", "nan"), ("--epochs", "-1"),
                                           ("--learning-rate", "inf"), ("--learning-rate", "-0.1")])
def test_train_reader_refuses_numbers_that_cannot_train_before_loading_anything(tmp_path, option, value):
    from typer.testing import CliRunner

    from qa.cli import app

    result = CliRunner().invoke(app, ["train-reader", "--out", str(tmp_path / "run"), option, value])
    assert result.exit_code == 2 and f"{option} must be a number above 0, not {float(value)}" in result.output
    assert not (tmp_path / "run").exists()


def test_training_data_of_the_wrong_shape_is_named_not_a_traceback(tmp_path):
    from qa.reader.data import TrainingDataError, read_squad

    (tmp_path / "bad.json").write_text(json.dumps({"data": [{"title": "x"}]}))
    with pytest.raises(TrainingDataError, match=r"bad.json is not SQuAD-format JSON \(missing 'paragraphs'\)"):
        read_squad(tmp_path / "bad.json", "idk_mrc")


def test_export_leaves_the_old_reader_whole_when_the_card_beside_it_is_damaged(tmp_path):
    from qa.reader.export import export_checkpoint

    (tmp_path / "reader.json").write_text("{not json")
    (tmp_path / "reader.npz").write_bytes(b"the old weights")
    with pytest.raises(ValueError, match=r"the card .*reader.json cannot be read"):
        export_checkpoint(MODEL_DIR / "reader.npz", tmp_path / "reader.npz", tmp_path / "reader.json")
    assert (tmp_path / "reader.npz").read_bytes() == b"the old weights"


def test_train_reader_help_explains_the_command():
    from typer.testing import CliRunner

    from qa.cli import app

    result = CliRunner().invoke(app, ["train-reader", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    # Where the data comes from, how long it takes, where it goes, and how to make a smoke run of it.
    assert "../shared/train/" in text and "About an hour on 2 cores" in text
    assert "a run found here is resumed" in text and "(a smoke test)" in text


def test_export_without_a_checkpoint_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from qa.cli import app

    result = CliRunner().invoke(app, ["export-reader", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "no checkpoint at" in result.output and "qa train-reader" in result.output


def test_a_file_that_is_not_a_checkpoint_is_named_not_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from qa.cli import app

    (tmp_path / "notes.pt").write_text("not weights")
    export = CliRunner().invoke(app, ["export-reader", str(tmp_path / "notes.pt"), "--out", str(tmp_path / "m")])
    assert export.exit_code == 2 and "is not a checkpoint written by qa train-reader" in export.output
    assert not (tmp_path / "m").exists()  # nothing written, so no folder made
    train = CliRunner().invoke(app, ["train-reader", "--init-from", str(tmp_path / "notes.pt"),
                                     "--out", str(tmp_path / "run"), "--limit", "2"])
    assert train.exit_code == 2 and f"cannot start from {tmp_path / 'notes.pt'}" in train.output
    assert not (tmp_path / "run").exists()
    (tmp_path / "mine.npz").write_text("not weights")  # someone's own file, not the shipped reader
    train = CliRunner().invoke(app, ["train-reader", "--init-from", str(tmp_path / "mine.npz"),
                                     "--out", str(tmp_path / "run"), "--limit", "2"])
    assert train.exit_code == 2 and "mine.npz has no card beside it (mine.json)" in " ".join(train.output.split())
    assert "git checkout" not in train.output  # the shipped reader's advice is not for this file


def test_the_passage_read_is_the_one_whose_best_sentence_matches_the_question():
    """Retrieval's first passage is not always the one to read: a passage a hair behind it in retrieval whose
    sentence is much closer to the question is read instead; a clearly better retrieval score still wins."""
    from types import SimpleNamespace

    from qa.reader.read import PASSAGES_CONSIDERED, passages_to_read
    from qa.records import Hit
    from qa.sentences import ScoredSentence

    index = SimpleNamespace(passage_sentence_rows=[range(0, 2), range(2, 4), range(4, 6), range(6, 8)])
    dense = [0.80, 0.81, 0.79, 0.88, 0.80, 0.80, 0.95, 0.70]
    ranked = [ScoredSentence(row, "d", 0, 1, "x", row // 2, d, d) for row, d in enumerate(dense)]
    hits = [Hit(0, 0.850), Hit(1, 0.845), Hit(2, 0.700), Hit(3, 0.840)]
    order = passages_to_read(index, hits, ranked)
    assert [h.passage_row for h in order] == [1, 0, 2][:PASSAGES_CONSIDERED]  # passage 3 is beyond the ones considered
    assert passages_to_read(index, hits, ranked, considered=4)[0].passage_row == 3
    far_behind = [Hit(0, 0.850), Hit(1, 0.600)]
    assert passages_to_read(index, far_behind, ranked)[0].passage_row == 0
    assert passages_to_read(index, [], ranked) == []


def test_a_sentence_whose_best_span_is_only_punctuation_gives_way_to_the_next_best_answer():
    from types import SimpleNamespace

    from qa.reader.read import read_answer
    from qa.reader.runtime import Calibration, ReadSpan
    from qa.records import Hit
    from qa.sentences import ScoredSentence

    text = "Perjanjian itu belum dirilis. Isinya dibahas di Pyongyang."
    first, second = text.index("Perjanjian"), text.index("Isinya")
    sentences = [ScoredSentence(0, "d", 0, second - 1, text[:second - 1], 0, 0.8, 1.0),
                 ScoredSentence(1, "d", second, len(text), text[second:], 0, 0.8, 1.0)]
    stop = text.index(".")
    spans = [ReadSpan(stop, stop + 1, 6.0, 1.0), ReadSpan(text.index("Pyongyang"), len(text) - 1, 3.0, 1.0)]
    reader = SimpleNamespace(read=lambda question, context, threads, parts: spans, calibration=Calibration())
    index = SimpleNamespace(passages={0: SimpleNamespace(text=text, start=first)}, passage_sentence_rows={0: [0, 1]})
    reading = read_answer(reader, "Di mana isinya dibahas?", index, [Hit(0, 1.0, 1.0)], sentences)
    assert text[reading.start:reading.end] == "Pyongyang" and reading.margin == 2.0
