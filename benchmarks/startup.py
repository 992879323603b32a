"""Time from `qa serve` starting to its first answer (a question never asked before).

    .venv/bin/qa index && .venv/bin/python benchmarks/startup.py [--runs 3] [--cold]

Starts the server on a free port, asks POST /ask every 50 ms from the moment the process starts, and reports
when the first answer (200) came back; then stops it. `--cold` first asks the kernel to drop its file cache
(root only), so the first run reads the Python packages, the models and the index from disk, as after a reboot;
later runs are warm, as on a machine that has served before.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from common import at_least_one, command_line  # noqa: E402
from load import free_port  # noqa: E402


def first_answer_seconds(question: str) -> float:
    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--port", str(port)], cwd=PROJECT_DIR,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.monotonic() - started < 120:
            if server.poll() is not None:
                raise SystemExit(f"qa serve exited with {server.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("POST", "/ask", json.dumps({"question": question}),
                                   {"content-type": "application/json"})
                response = connection.getresponse()
                body = response.read()
                if response.status == 200:
                    return time.monotonic() - started
                if response.status == 503 and b"run `qa index`" in body:  # it will never answer: say why
                    raise SystemExit(f"qa serve has no index: {json.loads(body)['detail']}")
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("no answer within 120 s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def drop_file_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main() -> None:
    parser = command_line(__doc__)
    parser.epilog = "It serves the index `qa serve` would (QA_INDEX_DIR, default index/): run `qa index` first."
    parser.add_argument("--runs", type=at_least_one, default=3, help="servers started one after the other")
    parser.add_argument("--cold", action="store_true", help="drop the kernel's file cache before the first run")
    args = parser.parse_args()
    if args.cold and not drop_file_cache():
        print("could not drop the file cache (needs root and a writable /proc/sys): the first run is warm too")
    for run in range(args.runs):
        seconds = first_answer_seconds(f"When did the talks of round {run} begin?")
        label = "cold" if args.cold and run == 0 else "warm"
        print(f"run {run + 1} ({label}): first answer {seconds:.2f} s after start")


if __name__ == "__main__":
    main()
