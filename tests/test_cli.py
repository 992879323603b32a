"""The `qa` command's refusals: settings, options and paths that cannot work get one clear line and exit 2."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.reader.runtime import MODEL_DIR


def run(*args: str, **env: str):
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("command", [["ask", "Kapan?"], ["index"], ["serve"]])
def test_a_setting_that_does_not_fit_is_named_with_its_value(command):
    code, output = run(*command, QA_TOP_K_DEFAULT="abc", QA_PORT="99999")
    assert code == 2
    assert ("error: invalid setting QA_TOP_K_DEFAULT='abc': Input should be a valid integer, unable to parse string "
            "as an integer; QA_PORT='99999': Input should be less than or equal to 65535") in output


def test_a_misspelt_setting_is_warned_about_not_silently_ignored(tmp_path):
    # Said before anything else the command says (here: that this folder holds no index).
    code, output = run("ask", "Kapan?", QA_TOPK_MAX="3", QA_COLOUR="1", QA_INDEX_DIR=str(tmp_path))
    assert output.startswith("warning: QA_COLOUR is not a setting: it is ignored warning: QA_TOPK_MAX is not a "
                             "setting (did you mean QA_TOP_K_MAX?): it is ignored error: no index")
    code, output = run("ask", "Kapan?", QA_TOP_K_MAX="7", QA_INDEX_DIR=str(tmp_path))
    assert output.startswith("error: no index") and "warning" not in output


def test_an_admin_token_that_does_not_fit_is_named_but_never_printed():
    code, output = run("serve", QA_ADMIN_TOKEN="s3cret tøken")
    assert code == 2 and "QA_ADMIN_TOKEN=(hidden): must be printable ASCII" in output and "s3cret" not in output


@pytest.mark.parametrize("args, env, words", [
    (["serve", "--host", ""], {}, "error: --host is empty: give an address (127.0.0.1 for this machine only, "
                                  "0.0.0.0 for every interface)"),
    (["serve"], {"QA_HOST": " "}, "error: invalid setting QA_HOST=' ': is empty: give an address"),
])
def test_an_empty_host_is_refused_not_read_as_every_interface(args, env, words):
    code, output = run(*args, **env)
    assert code == 2 and words in output

EMPTY_OPTION = "is empty: name a folder, or leave the option out for the default"


@pytest.mark.parametrize("args, env, words", [
    (["index", "--corpus", ""], {}, f"Invalid value for '--corpus': {EMPTY_OPTION}"),
    (["index", "--index", " "], {}, f"Invalid value for '--index': {EMPTY_OPTION}"),
    (["ask", "Kapan?", "--index", ""], {}, f"Invalid value for '--index': {EMPTY_OPTION}"),
    (["train-reader", "--out", ""], {}, f"Invalid value for '--out': {EMPTY_OPTION}"),
    (["export-reader", "--out", ""], {}, f"Invalid value for '--out': {EMPTY_OPTION}"),
    (["index"], {"QA_CORPUS_DIR": ""}, "error: invalid setting QA_CORPUS_DIR='': is empty: name a folder, or unset "
                                       "it for the default"),
    (["ask", "Kapan?"], {"QA_INDEX_DIR": " "}, "error: invalid setting QA_INDEX_DIR=' ': is empty"),
    (["serve"], {"QA_READER_DIR": ""}, "error: invalid setting QA_READER_DIR='': is empty"),
])
def test_an_empty_folder_is_refused_not_read_as_the_current_one(tmp_path, monkeypatch, args, env, words):
    # Run where an index or a corpus could be written: nothing may be.
    monkeypatch.chdir(tmp_path)
    code, output = run(*args, **env)
    assert code == 2 and words in output.replace("│", "")
    assert list(tmp_path.iterdir()) == []



@pytest.mark.parametrize("option, words", [
    (["--port", "99999"], "Invalid value for '--port': Input should be less than or equal to 65535"),
    (["--port", "-1"], "Invalid value for '--port': Input should be greater than or equal to 0"),
    (["--workers", "0"], "Invalid value for '--workers': Input should be greater than or equal to 1"),
])
def test_serve_refuses_a_port_or_worker_count_out_of_range(option, words):
    code, output = run("serve", *option)
    assert code == 2 and words in output.replace("│", "")


@pytest.mark.parametrize("command", [
    ["export-reader", str(MODEL_DIR / "reader.npz"), "--out"],
    ["train-reader", "--out"],
])
def test_an_output_folder_that_is_a_file_is_said_before_any_work(tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, output = run(*command, str(blocker / "sub"))
    assert code == 2
    assert f"folder {blocker / 'sub'}: " in output and "(it or a folder above it is a file)" in output


@pytest.mark.parametrize("options, coming", [
    ([], "questions get 503 until `qa index --index {tmp}/none` builds one"),
    (["--watch", "--corpus", "{tmp}/no-articles-yet"],
     "--watch builds one once {tmp}/no-articles-yet holds articles; questions get 503 until then"),
])
def test_serve_without_an_index_says_so_at_once(tmp_path, options, coming):
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--index", str(tmp_path / "none"),
                                "--port", "0", *(o.format(tmp=tmp_path) for o in options)],
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline, seen = time.monotonic() + 60, ""
        while "no index" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert f"note: there is no index in {tmp_path / 'none'} yet: {coming.format(tmp=tmp_path)}" in seen
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("command", [["index"], ["ask", "Kapan?"], ["eval", "questions.jsonl"], ["serve"]])
def test_an_index_folder_beside_a_database_url_is_refused_by_every_command(tmp_path, command):
    code, output = run(*command, "--index", str(tmp_path / "idx"), QA_DATABASE_URL="postgresql://qa@127.0.0.1:1/qa")
    assert code == 2
    assert f"error: --index {tmp_path / 'idx'} names a folder, but QA_DATABASE_URL is set" in output


@pytest.mark.parametrize("command", [["index"], ["ask", "Kapan?"], ["eval", "questions.jsonl"]])
def test_with_json_a_setting_error_is_json_on_stdout_too(command):
    result = CliRunner().invoke(app, [*command, "--json"], env={"QA_TOP_K_DEFAULT": "abc"})
    assert result.exit_code == 2
    first_line = result.stdout.splitlines()[0]
    assert json.loads(first_line)["error"].startswith("invalid setting QA_TOP_K_DEFAULT='abc'")


def test_ask_with_earlier_questions_prints_what_the_api_answers(built_index, client):
    settings, _ = built_index
    ambassador, hope = "Siapa Duta Besar Rusia untuk Korea Utara?", "Apa harapannya untuk tahun 2024?"
    follow_up = "Siapa menurut dia akan berkunjung ke Pyongyang?"
    result = CliRunner().invoke(app, ["ask", follow_up, "--after", ambassador, "--after", hope, "--json",
                                      "--index", str(settings.index_dir)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    history = []
    for earlier in (ambassador, hope):
        body = client.post("/ask", json={"question": earlier, "history": history}).json()
        history.append({"question": earlier, "answer": None if body["abstained"] else body["answer"]})
    api = client.post("/ask", json={"question": follow_up, "history": history}).json()
    assert printed["answer"] == api["answer"] and "Vladimir Putin" in api["answer"]
    assert printed["context_used"] == api["context_used"] and "Alexander Matsegora" in printed["context_used"]

    # More earlier questions than a question is read with (5): each is read with the latest ones before it.
    earlier_questions = ["Kapan Perang Korea dimulai?"] * 5 + [ambassador, hope]
    longer = CliRunner().invoke(app, ["ask", follow_up, *[a for q in earlier_questions for a in ("--after", q)],
                                      "--json", "--index", str(settings.index_dir)])
    assert longer.exit_code == 0, longer.output
    history = []
    for earlier in earlier_questions:
        body = client.post("/ask", json={"question": earlier, "history": history[-5:]}).json()
        history.append({"question": earlier, "answer": None if body["abstained"] else body["answer"]})
    api = client.post("/ask", json={"question": follow_up, "history": history[-5:]}).json()
    assert json.loads(longer.stdout)["answer"] == api["answer"]


def test_an_earlier_question_that_cannot_be_asked_is_named_as_the_after_it_is(built_index):
    settings, _ = built_index
    result = CliRunner().invoke(app, ["ask", "Siapa dia?", "--after", "Kapan Putin tiba di Pyongyang?",
                                      "--after", "x" * 501, "--json", "--index", str(settings.index_dir)])
    assert result.exit_code == 2
    assert json.loads(result.stdout.splitlines()[0]) == {
        "error": "--after #2: question is too long (501 characters; the limit is 500)"}


def test_eval_writes_no_progress_bar_where_no_one_watches_it(built_index, tmp_path):
    settings, _ = built_index
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "Kapan Putin tiba di Pyongyang?", "answers": ["19 Juni 2024"]}) + "\n")
    result = CliRunner().invoke(app, ["eval", str(questions), "--index", str(settings.index_dir)])
    assert result.exit_code == 0, result.output
    assert "answer hit rate" in result.stdout and "asking" not in result.stderr and "\r" not in result.stderr


def test_eval_with_another_model_than_the_index_was_built_with_says_so_before_loading_it(built_index, tmp_path):
    settings, _ = built_index
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "Kapan?", "answers": ["2024"]}) + "\n")
    result = CliRunner().invoke(app, ["eval", str(questions), "--index", str(settings.index_dir),
                                      "--model", "no-such-org/no-such-model", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": f"the index in {settings.index_dir} was built with model "
                                                  f"{settings.model!r}, not 'no-such-org/no-such-model': run "
                                                  "`qa index` with the same model first"}


def test_ask_tells_a_person_that_a_question_without_words_has_nothing_to_look_for():
    code, output = run("ask", "?!")
    assert code == 2 and output == "error: A question needs words: this one has no letter or digit."
    assert run("ask", "   ") == (2, "error: question is empty")
    assert run("ask", "?" * 501) == (2, "error: question is too long (501 characters; the limit is 500)")


def test_ask_names_the_option_a_person_typed_when_top_k_is_out_of_range():
    assert run("ask", "--top-k", "0", "Kapan?") == (2, "error: --top-k must be between 1 and 50")
    assert run("ask", "--top-k", "51", "Kapan?", QA_TOP_K_MAX="50") == (2, "error: --top-k must be between 1 and 50")


def test_version_and_the_ask_usage_name_what_they_are():
    from qa import __version__

    code, output = run("--version")
    assert code == 0 and output == f"qa {__version__}"
    code, output = run("ask", "--help")
    assert code == 0 and "ask [OPTIONS] {QUESTION}" in output and 'goes after "--"' in output


def test_the_defaults_the_readme_states():
    import re

    from qa.config import Settings

    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8").split())
    defaults = Settings()

    def stated(pattern: str) -> tuple[str, ...]:
        found = re.search(pattern, readme)
        assert found, pattern
        return found.groups()

    assert stated(r"`top_k` \(1–(\d+), default (\d+);") == (str(defaults.top_k_max), str(defaults.top_k_default))
    assert int(stated(r"413 for a body over (\d+) kB")[0]) * 1024 == defaults.max_body_bytes
    assert float(stated(r"504 after (\d+) s")[0]) == defaults.request_timeout_s
    assert int(stated(r"over-(\d+) MB")[0]) * 1_000_000 == defaults.max_file_bytes
    assert int(stated(r"\| `QA_MAX_HISTORY_TURNS` \| (\d+) \|")[0]) == defaults.max_history_turns
    assert stated(r"\| `QA_HOST`, `QA_PORT` \| `([\d.]+)`, (\d+) \|") == (defaults.host, str(defaults.port))
    assert stated(r"\| `QA_MAX_QUESTION_CHARS`, `QA_MAX_HISTORY_ANSWER_CHARS` \| (\d+), (\d+) \|") == (
        str(defaults.max_question_chars), str(defaults.max_history_answer_chars))
    assert stated(r"`QA_PASSAGE_MAX_CHARS` \| (\d+), (\d+), (\d+) \|") == (
        str(defaults.passage_sentences), str(defaults.passage_overlap), str(defaults.passage_max_chars))
    # Every setting has its row in the table of settings.
    table = readme[readme.index("| variable | default | what it sets |"):]
    table = table[:table.index("## ")]
    assert [name for name in Settings.model_fields if f"`QA_{name.upper()}`" not in table] == []

def test_index_and_eval_put_back_the_sigterm_handler_they_found(tmp_path):
    """They answer SIGTERM as Ctrl-C only while they run: a program that calls them keeps its own handler."""
    import signal

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("")  # nothing to index: the build fails at once
    before = signal.getsignal(signal.SIGTERM)
    code, _ = run("index", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index"))
    assert code == 2 and signal.getsignal(signal.SIGTERM) is before
    code, _ = run("eval", str(tmp_path / "missing.jsonl"), "--index", str(tmp_path / "index"))
    assert code == 2 and signal.getsignal(signal.SIGTERM) is before


def test_eval_of_a_pipe_says_to_save_it_to_a_file_not_that_it_is_empty(tmp_path):
    # `qa eval <(head eval/x.jsonl)`: the file is read for its format and again for its questions, and a pipe
    # gives its lines only once.
    pipe = tmp_path / "questions.jsonl"
    os.mkfifo(pipe)

    def write() -> None:
        try:
            pipe.write_text(json.dumps({"id": "q1", "question": "Kapan?", "answers": ["2024"]}) + "\n")
        except OSError:
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        code, output = run("eval", str(pipe))
    finally:
        os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))  # lets a writer still waiting for a reader go
        writer.join(timeout=10)
    assert (code, output) == (2, f"error: {pipe} is not a regular file (a pipe or a device): save the questions to a "
                                 "file and give its path")
