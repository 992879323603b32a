"""Soak test: `qa serve` under mixed load and repeated rebuilds for minutes, watched for slow leaks.

    .venv/bin/python benchmarks/soak.py                       # 3 minutes, 2 clients
    .venv/bin/python benchmarks/soak.py --minutes 30 --clients 4 --rebuild-every 20

Copies corpus/ into a temporary folder, indexes it with `qa index` and starts `qa serve` there (free port, admin
token). Client threads with keep-alive connections send new questions (articles' words and a changing number,
so the answer cache misses), repeated ones, follow-ups with `history`, GET /timeline and GET /sources/<article>.
Every --rebuild-every seconds an article gets a sentence and the index is rebuilt, by `qa index` and by POST
/admin/reindex in turn. Every --sample-every seconds the load pauses for a sample of /proc/<server pid>: memory,
threads, open descriptors, descriptors of deleted files and memory maps of deleted index files (a let-go
generation still held), generations on disk and their size, requests and errors so far (an unexpected non-2xx,
a connection error), and the p50 of 10 new questions asked one at a time. Printed: the samples, then for each
resource its first and last value and its growth over the second half (~0 on a plateau; a leak keeps growing).
Exit 0; 1 when a request got a 5xx or a connection error, or a rebuild failed. The server is stopped and the
folder removed in every case.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PROJECT_DIR, at_least_one, command_line, stop  # noqa: E402
from load import free_port, read_health, stop_server  # noqa: E402
from qa.evaluation.metrics import percentile  # noqa: E402

QA = Path(sys.executable).parent / "qa"
PROBES_PER_SAMPLE = 10
MIX = ["new", "repeat", "follow-up", "new", "timeline", "new", "repeat", "source", "follow-up", "new"]  # per client


class Tally:
    """Requests and errors of all threads. A failure (5xx, connection error, failed rebuild) makes the exit 1."""

    def __init__(self) -> None:
        self.lock, self.requests, self.failures, self.errors = threading.Lock(), 0, 0, Counter()

    def count(self, what: str, status: int | None, expected: tuple[int, ...] = ()) -> None:
        with self.lock:
            self.requests += 1
            self.failures += status is None or status >= 500
            if status is None or not (200 <= status < 300 or status in expected):
                self.errors[f"{what}: {'connection error' if status is None else status}"] += 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures, self.errors[what] = self.failures + 1, self.errors[what] + 1


class Connection:
    """A keep-alive connection to the server that reconnects after an error and counts every request."""

    def __init__(self, port: int, tally: Tally) -> None:
        self.port, self.tally, self.http, self.last_used = port, tally, None, 0.0

    def send(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             expected: tuple[int, ...] = ()) -> tuple[int | None, dict]:
        what = method + (" /sources/…" if path.startswith("/sources/") else " " + path)
        if self.http is not None and time.monotonic() - self.last_used > 4:
            self.http.close()  # uvicorn closes connections idle for 5 s: a request could meet one closing
            self.http = None
        try:
            self.http = self.http or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.http.request(method, path, json.dumps(body) if body is not None else None,
                              {"Content-Type": "application/json", **(headers or {})})
            response = self.http.getresponse()
            payload = response.read()
            self.last_used = time.monotonic()
        except (OSError, http.client.HTTPException):
            if self.http is not None:
                self.http.close()
            self.http = None
            self.tally.count(what, None)
            return None, {}
        self.tally.count(what, response.status, expected)
        is_json = response.getheader("content-type", "").startswith("application/json")
        return response.status, json.loads(payload) if is_json and response.status == 200 else {}


def drive(number: int, connection: Connection, words: list[str], articles: list[str], busy: threading.Lock,
          load_allowed: threading.Event, finished: threading.Event) -> None:
    """One client: sends the MIX until finished, holding `busy` during each request so the load can pause."""
    last_turn, turn = {"question": "Siapa pemimpin Korea Utara?", "answer": None}, 0
    while not finished.is_set():
        if not load_allowed.wait(timeout=0.5):
            continue
        with busy:
            kind, turn = MIX[turn % len(MIX)], turn + 1
            new = f"tentang {words[(turn * 7 + number * 31) % len(words)]} {number}-{turn}?"
            if kind in ("new", "repeat", "follow-up"):
                question = {"new": "Apa yang dikatakan " + new, "follow-up": "Apa yang dia katakan " + new,
                            "repeat": f"Apa yang dikatakan tentang {words[turn % 5]}?"}[kind]
                history = [last_turn] if kind == "follow-up" else []
                status, answer = connection.send("POST", "/ask", {"question": question, "history": history})
                if status == 200:
                    last_turn = {"question": question, "answer": answer.get("answer")}
            elif kind == "timeline":
                connection.send("GET", "/timeline")
            else:
                connection.send("GET", "/sources/" + quote(articles[turn % len(articles)]))


def article_words(corpus: Path) -> list[str]:
    """Distinct words of six letters or more of the articles' text (front matter left out), in a fixed order."""
    words: set[str] = set()
    for path in sorted(corpus.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        words.update(re.findall(r"[A-Za-z]{6,}", text.split("\n---", 1)[-1] if text.startswith("---") else text))
    return sorted(words)


def run_qa(env: dict, *arguments: str) -> tuple[int, str]:
    """Runs `qa`; its exit code and the last line it printed."""
    done = subprocess.run([str(QA), *arguments], env=env, cwd=PROJECT_DIR, capture_output=True, text=True)
    return done.returncode, ((done.stderr + done.stdout).strip().splitlines() or ["(no output)"])[-1].strip()


def start_server(env: dict, corpus: Path, index: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    with open(log, "wb") as output:
        server = subprocess.Popen([str(QA), "serve", "--corpus", str(corpus), "--index", str(index),
                                   "--port", str(port)], env=env, cwd=PROJECT_DIR, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if read_health("127.0.0.1", port, timeout=5).get("status") == "ok":
                return server, port
        except (OSError, ValueError, http.client.HTTPException):
            time.sleep(0.5)
    exited = server.poll()
    stop_server(server)
    last = (log.read_text(errors="replace").strip().splitlines() or ["(no output)"])[-1]
    stop(f"qa serve exited with {exited}: {last}" if exited is not None else "qa serve did not come up in 120 s")


def read_sample(pid: int, index: Path, tally: Tally, probe: Connection, elapsed: float, number: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    fd_folder, targets = Path(f"/proc/{pid}/fd"), []
    for fd in os.listdir(fd_folder):
        try:
            targets.append(os.readlink(fd_folder / fd))
        except OSError:  # closed since it was listed
            pass
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    generations = [path for path in (index / "generations").iterdir() if path.is_dir()]
    latencies = []
    for n in range(PROBES_PER_SAMPLE):
        started = time.perf_counter()
        if probe.send("POST", "/ask", {"question": f"Kapan kunjungan nomor {number}-{n} terjadi?"})[0] == 200:
            latencies.append((time.perf_counter() - started) * 1000)
    return {"t": elapsed, "rss": int(status["VmRSS"].split()[0]) / 1024, "threads": int(status["Threads"]),
            "fds": len(targets), "deleted fds": sum(t.endswith(" (deleted)") for t in targets),
            "deleted maps": len({line.split(None, 5)[-1] for line in maps
                                 if line.endswith(" (deleted)") and str(index) in line}),
            "generations": len(generations),
            "disk": sum(f.stat().st_size for g in generations for f in g.rglob("*") if f.is_file()) / 1e6,
            "requests": tally.requests, "errors": sum(tally.errors.values()), "p50": percentile(latencies, 50)}


# Column title, sample key, format. Every column but time, requests and errors gets a verdict line.
COLUMNS = [("t s", "t", ".0f"), ("RSS MB", "rss", ".1f"), ("threads", "threads", "d"), ("fds", "fds", "d"),
           ("deleted fds", "deleted fds", "d"), ("deleted maps", "deleted maps", "d"),
           ("generations", "generations", "d"), ("gen MB", "disk", ".2f"), ("requests", "requests", "d"),
           ("errors", "errors", "d"), ("probe p50 ms", "p50", ".1f")]


def print_report(samples: list[dict], tally: Tally, rebuilds: Counter) -> None:
    print("  ".join(f"{title:>{max(len(title), 6)}}" for title, _, _ in COLUMNS))
    for sample in samples:
        print("  ".join(f"{sample[key]:>{max(len(title), 6)}{form}}" for title, key, form in COLUMNS))
    print(f"\nrebuilds: {rebuilds['qa index']} by qa index, {rebuilds['POST /admin/reindex']} by POST /admin/reindex")
    print(f"requests: {tally.requests}, errors: {sum(tally.errors.values())}"
          + "".join(f"\n  {what}: {count}" for what, count in tally.errors.most_common()))
    if len(samples) < 2:
        return
    middle = next(s for s in samples if s["t"] >= samples[-1]["t"] / 2)
    print(f"\nfirst and last value, and growth over the second half (t {middle['t']:.0f} to {samples[-1]['t']:.0f} s):")
    for title, key, form in COLUMNS:
        if key not in ("t", "requests", "errors"):
            first, last, growth = samples[0][key], samples[-1][key], samples[-1][key] - middle[key]
            print(f"  {title:<13} first {first:{form}}  last {last:{form}}  second half {growth:+{form}}")


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--minutes", type=at_least_one, default=3, help="How long the load runs")
    parser.add_argument("--clients", type=at_least_one, default=2, help="Client threads sending requests")
    parser.add_argument("--rebuild-every", type=at_least_one, default=30, help="Seconds between rebuilds")
    parser.add_argument("--sample-every", type=at_least_one, default=20, help="Seconds between samples")
    args = parser.parse_args()
    if not QA.is_file():
        stop(f"{QA} is not there: run this with the project's .venv/bin/python")

    token = secrets.token_hex(16)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_ADMIN_TOKEN": token}
    env.pop("QA_DATABASE_URL", None)  # the index goes into the temporary folder, never into a database
    folder = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    corpus, index = folder / "corpus", folder / "index"
    tally, rebuilds, samples, server = Tally(), Counter(), [], None
    load_allowed, finished = threading.Event(), threading.Event()
    try:
        shutil.copytree(PROJECT_DIR / "corpus", corpus)
        code, said = run_qa(env, "index", "--corpus", str(corpus), "--index", str(index))
        if code != 0:
            stop(f"qa index exited with {code}: {said}")
        server, port = start_server(env, corpus, index, folder / "serve.log")
        articles, words = sorted(p.name for p in corpus.glob("*.txt")), article_words(corpus)
        print(f"qa serve (pid {server.pid}, port {port}): {args.clients} client(s) for {args.minutes} min, "
              f"a rebuild every {args.rebuild_every} s, a sample every {args.sample_every} s", flush=True)
        own_connection, busy = Connection(port, tally), [threading.Lock() for _ in range(args.clients)]
        clients = [threading.Thread(target=drive, daemon=True, args=(n, Connection(port, tally), words, articles,
                                                                    busy[n], load_allowed, finished))
                   for n in range(args.clients)]

        def sample() -> None:
            load_allowed.clear()
            for lock in busy:
                lock.acquire()  # waits for that client's request in flight
            try:
                samples.append(read_sample(server.pid, index, tally, own_connection, time.monotonic() - started,
                                           len(samples)))
            finally:
                for lock in busy:
                    lock.release()
            load_allowed.set()

        def rebuild() -> None:
            done = sum(rebuilds.values())
            with open(corpus / articles[done % len(articles)], "a", encoding="utf-8") as article:
                article.write(f"\nPada uji ketahanan ke-{done + 1}, Putin kembali bertemu Kim.\n")
            if done % 2 == 0:
                code, said = run_qa(env, "index", "--corpus", str(corpus), "--index", str(index), "--wait", "60")
                if code:
                    tally.fail(f"qa index: exit {code} ({said})")
                rebuilds["qa index"] += 1
            else:  # a 409 says another build was running
                own_connection.send("POST", "/admin/reindex", headers={"Authorization": f"Bearer {token}"},
                                    expected=(409,))
                rebuilds["POST /admin/reindex"] += 1

        started = time.monotonic()
        end, next_rebuild, next_sample = started + 60 * args.minutes, started + args.rebuild_every, started
        for client in clients:
            client.start()
        while time.monotonic() < end and server.poll() is None:
            if time.monotonic() >= next_rebuild:
                rebuild()
                next_rebuild += args.rebuild_every
            if time.monotonic() >= next_sample:
                sample()  # starts the load the first time
                next_sample += args.sample_every
            time.sleep(max(0.0, min(next_rebuild, next_sample, end) - time.monotonic()))
        finished.set()
        for client in clients:
            client.join(timeout=150)
        if server.poll() is None:
            sample()
        else:
            tally.fail(f"qa serve exited with {server.returncode} after {time.monotonic() - started:.0f} s")
        print_report(samples, tally, rebuilds)
    except KeyboardInterrupt:
        print("stopped early" + ("; what was seen so far:\n" if samples else ""), file=sys.stderr)
        if samples:
            print_report(samples, tally, rebuilds)
        return 1 if tally.failures else 130
    finally:
        finished.set()
        load_allowed.set()
        if server is not None:
            stop_server(server)
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
