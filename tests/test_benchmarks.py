"""The benchmark scripts refuse what they cannot measure, with a message, before measuring."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

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
