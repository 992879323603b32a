"""The benchmark scripts refuse what they cannot measure, with a message, before measuring."""

from __future__ import annotations

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
    ("read_candidates.py", ["--held-out", "--data", "{tmp}/nowhere", "--out", "{tmp}/c.json"],
     "the training data folder {tmp}/nowhere does not exist"),
    ("read_variants.py", ["{tmp}/empty.json"], "holds no questions of benchmarks/read_candidates.py"),
    ("compare_evals.py", ["{tmp}/empty.json", "{tmp}/empty.json"], "not a `qa eval --json` report"),
    ("index_bench.py", ["{tmp}/missing.json"], "missing.json is not there: give a file"),
    ("scale.py", ["--sizes", "5k"], "sizes are 10k, 100k, 1m (comma-separated), not '5k'"),
    ("scale_pg.py", ["--stores", "bogus"], "stores are files and postgres, not bogus"),
    ("load.py", ["--clients", "1,abc"], "must be whole numbers of at least 1 separated by commas"),
    ("timeline.py", ["--requests", "0"], "must be a whole number of at least 1, not '0'"),
    ("soak.py", ["--minutes", "0"], "must be a whole number of at least 1, not '0'"),
])
def test_a_benchmark_says_what_is_missing_or_wrong_instead_of_a_traceback(tmp_path, script, args, words):
    (tmp_path / "empty.json").write_text("[]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"QA_INDEX_DIR": str(tmp_path / "none")}
    run = subprocess.run([sys.executable, str(PROJECT_DIR / "benchmarks" / script),
                          *(a.format(tmp=tmp_path) for a in args)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 2, run.stderr
    assert words.format(tmp=tmp_path) in run.stderr and "Traceback" not in run.stderr
