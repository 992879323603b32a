"""The benchmark scripts refuse what they cannot measure, with a message, before measuring."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_the_load_benchmark_refuses_a_server_it_cannot_reach_before_loading_it():
    script = str(PROJECT_DIR / "benchmarks" / "load.py")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: nothing answers there
        run = subprocess.run([sys.executable, script, "--url", f"http://127.0.0.1:{port}", "--duration", "1"],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and f"load: cannot reach http://127.0.0.1:{port}" in run.stderr
    assert "answers" not in run.stdout
    bad = subprocess.run([sys.executable, script, "--url", "notaurl", "--duration", "1"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--url must look like http://HOST:PORT, not 'notaurl'" in bad.stderr


def test_the_load_benchmark_stops_with_the_servers_reason_when_it_refuses_the_requests(live_server):
    run = subprocess.run([sys.executable, str(PROJECT_DIR / "benchmarks" / "load.py"), "--url", live_server,
                          "--top-k", "99", "--duration", "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "refuses these requests (HTTP 422): top_k must be between 1 and 50" in run.stderr
    assert "answers" not in run.stdout


@pytest.mark.parametrize("script, args, words", [
    ("timeline.py", [], "no index"),
    ("calibrate.py", ["--data", "{tmp}/nowhere"], "the training data folder {tmp}/nowhere does not exist"),
    ("calibrate.py", ["--write", "--json", "{tmp}/nowhere/x.json"],
     "cannot write {tmp}/nowhere/x.json: the folder {tmp}/nowhere does not exist"),
    ("calibrate.py", ["--write", "--limit", "5"], "must be fitted on the whole held-out split; drop --limit"),
    ("read_candidates.py", ["--held-out", "--data", "{tmp}/nowhere", "--out", "{tmp}/c.json"],
     "the training data folder {tmp}/nowhere does not exist"),
    ("read_candidates.py", ["--held-out", "--out", "{tmp}"], "{tmp} is a folder: give the name of a file to write"),
    ("read_candidates.py", ["--held-out", "--out", "{tmp}/nowhere/c.json"], "the folder {tmp}/nowhere does not exist"),
    ("read_variants.py", ["{tmp}/empty.json"], "holds no questions of benchmarks/read_candidates.py"),
    ("read_variants.py", ["{tmp}/empty.json", "--feature", "bogus"], "invalid choice: 'bogus'"),
    ("compare_evals.py", ["{tmp}/empty.json", "{tmp}/empty.json"], "not a `qa eval --json` report"),
    ("index_bench.py", ["{tmp}/missing.json"], "missing.json is not there: give a file"),
    ("index_bench.py", ["{tmp}/other.json"], "{tmp}/other.json is not SQuAD-format JSON (an object with a `data` list"),
    ("scale.py", ["--sizes", "5k"], "sizes are 10k, 100k, 1m (comma-separated), not '5k'"),
    ("scale_pg.py", ["--stores", "bogus"], "stores are files and postgres, not bogus"),
    ("load.py", ["--clients", "1,abc"], "must be whole numbers of at least 1 separated by commas"),
    ("load.py", ["--server-log", "{tmp}/nowhere/log"], "the folder {tmp}/nowhere does not exist"),
    ("load.py", ["--rate", "nan"], "--rate: must be a number of 0 or more, not 'nan'"),
    ("load.py", ["--rate", "inf"], "--rate: must be a number of 0 or more, not 'inf'"),
    ("load.py", ["--rate", "-1"], "--rate: must be a number of 0 or more, not '-1'"),
    ("load.py", ["--duration", "nan"], "--duration: must be a number above 0, not 'nan'"),
    ("timeline.py", ["--requests", "0"], "must be a whole number of at least 1, not '0'"),
    ("soak.py", ["--minutes", "0"], "must be a whole number of at least 1, not '0'"),
    ("worst_case.py", [], "no index"),
    ("worst_case.py", ["--repeat", "0"], "must be a whole number of at least 1, not '0'"),
])
def test_a_benchmark_says_what_is_missing_or_wrong_instead_of_a_traceback(tmp_path, script, args, words):
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "other.json").write_text('{"x": 1}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"QA_INDEX_DIR": str(tmp_path / "none")}
    run = subprocess.run([sys.executable, str(PROJECT_DIR / "benchmarks" / script),
                          *(a.format(tmp=tmp_path) for a in args)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 2, run.stderr
    assert words.format(tmp=tmp_path) in run.stderr and "Traceback" not in run.stderr


def _eval_report(file: str, rows: list[tuple[str, bool]]) -> str:
    """A `qa eval --json` report cut down to what compare_evals reads: unanswerable questions only."""
    return json.dumps({"file": file, "per_question": [{"id": i, "answerable": False, "abstained": a}
                                                      for i, a in rows]})


def test_compare_evals_pairs_only_the_questions_of_one_file(tmp_path):
    reports = {"before": ("eval/a.jsonl", [("line1", True), ("line2", False)]),
               "after": ("eval/./a.jsonl", [("line1", True), ("line2", True)]),  # the same file, run again
               "other": ("eval/b.jsonl", [("line1", False), ("line2", False)]),  # questions without ids: line1, ...
               "fewer": ("eval/a.jsonl", [("line1", True), ("line3", True)]),
               "twice": ("eval/a.jsonl", [("line1", True), ("line1", False)])}
    for name, (file, rows) in reports.items():
        (tmp_path / f"{name}.json").write_text(_eval_report(file, rows))

    def compare(first: str, second: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(PROJECT_DIR / "benchmarks" / "compare_evals.py"),
                               str(tmp_path / f"{first}.json"), str(tmp_path / f"{second}.json")],
                              capture_output=True, text=True, timeout=60)

    assert compare("before", "after").returncode == 0
    refusals = {("before", "other"): f"{tmp_path}/before.json is a run of eval/a.jsonl, {tmp_path}/other.json of "
                                     "eval/b.jsonl: their questions cannot be paired",
                ("before", "fewer"): f"only in {tmp_path}/before.json: line2; only in {tmp_path}/fewer.json: line3",
                ("twice", "after"): f"{tmp_path}/twice.json scores several questions under one id (line1)"}
    for (first, second), words in refusals.items():
        run = compare(first, second)
        assert run.returncode == 2 and words in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert len(run.stderr.splitlines()) == 1
