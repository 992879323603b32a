"""Load test for the /ask endpoint: several clients at a steady rate, then where the time went.

    .venv/bin/qa index                                   # the bundled corpus, into index/
    .venv/bin/python benchmarks/load.py                  # starts `qa serve`, 1 client then 8, 60 s each
    .venv/bin/python benchmarks/load.py --url http://127.0.0.1:8000 --clients 4 --duration 20 --rate 50

Each client is a thread with its own keep-alive connection (http.client). With --rate the clients together
send that many requests per second on a fixed schedule (a client that falls behind sends at once, so an
overloaded server shows as lower throughput and higher latency); without it every client sends its next
request as soon as the last one is answered. Reported per run: answers per second, client latency
p50/p95/p99/max, errors, and the split of a request's time: embedding the question, search and reading
as the server measured them (`timings_ms` of each answer), and the rest, HTTP (client latency minus the
server's total: parsing, the thread pool, the network stack, the client itself). A server started here
also has its CPU time per answer reported, a figure that other work on the machine does not inflate.

This is a measuring tool, not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (at_least_one, command_line, counts, existing_file, file_to_write, positive_number,  # noqa: E402
                    zero_or_more)
from qa.evaluation.metrics import percentile  # noqa: E402

# Questions about the bundled corpus (Russia and North Korea), in English and Indonesian, some unanswerable.
QUESTIONS = [
    "Kapan Putin mengunjungi Korea Utara?",
    "When did Putin visit North Korea?",
    "Berapa lama Putin tidak berkunjung ke Pyongyang?",
    "What did Russia and North Korea sign?",
    "Siapa pemimpin Korea Utara?",
    "When did Russia veto the sanctions panel?",
    "Apa isi perjanjian kemitraan strategis komprehensif?",
    "Who is the leader of North Korea?",
    "Kapan Kim Jong Un mengunjungi Rusia?",
    "Where did Kim Jong Un meet Putin in 2023?",
    "Mengapa Rusia membutuhkan amunisi dari Korea Utara?",
    "How many years since Putin last visited Pyongyang?",
    "Apa yang diberikan Putin kepada Kim Jong Un?",
    "Which car did Putin give Kim?",
    "Kapan Uni Soviet runtuh?",
    "Who founded North Korea?",
    "Berapa jumlah artileri yang dikirim Korea Utara ke Rusia?",
    "What is the capital of North Korea?",
    "Apa reaksi Amerika Serikat terhadap kunjungan Putin?",
    "What is the price of rice in Jakarta?",  # not in the articles: should abstain
]


@dataclass
class Sample:
    started: float
    latency_ms: float
    status: int
    timings: dict = field(default_factory=dict)
    error: str | None = None
    cached: bool = False


class Client(threading.Thread):
    def __init__(self, url: str, number: int, questions: list[str], interval: float | None, offset: float,
                 start_at: float, measure_from: float, stop_at: float, method: str, top_k: int) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.number, self.questions, self.interval, self.offset = number, questions, interval, offset
        self.start_at, self.measure_from, self.stop_at = start_at, measure_from, stop_at
        self.method, self.top_k = method, top_k
        self.samples: list[Sample] = []
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.connection

    def _request(self, question: str) -> tuple[int, bytes]:
        connection = self._connect()
        if self.method == "GET":
            connection.request("GET", "/ask?" + urlencode({"q": question, "top_k": self.top_k}))
        else:
            body = json.dumps({"question": question, "top_k": self.top_k}).encode()
            connection.request("POST", "/ask", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()

    def run(self) -> None:
        turn = self.number * 7  # clients start at different questions
        sent = 0
        while True:
            if self.interval:
                due = self.start_at + self.offset + sent * self.interval
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            now = time.perf_counter()
            if now >= self.stop_at:
                break
            question = self.questions[turn % len(self.questions)]
            turn += 1
            sent += 1
            try:
                status, payload = self._request(question)
                latency = (time.perf_counter() - now) * 1000
                body = json.loads(payload) if status == 200 else {}
                timings, cached = body.get("timings_ms", {}), bool(body.get("cached"))
                error = None if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                latency, status, timings, error = (time.perf_counter() - now) * 1000, 0, {}, type(exc).__name__
                cached = False
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
            if now >= self.measure_from:
                self.samples.append(Sample(now, latency, status, timings, error, cached))
        if self.connection is not None:
            self.connection.close()


def run_load(url: str, clients: int, duration: float, rate: float, warmup: float, questions: list[str],
             method: str, top_k: int, server_pgid: int | None = None) -> dict:
    start = time.perf_counter() + 0.2
    measure_from, stop_at = start + warmup, start + warmup + duration
    interval = clients / rate if rate > 0 else None
    threads = [Client(url, n, questions, interval, (interval or 0) * n / clients, start, measure_from, stop_at,
                      method, top_k) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_before = (group_cpu_seconds(server_pgid) if server_pgid else None), time.process_time()
    time.sleep(max(0.0, stop_at - time.perf_counter()))
    cpu_after = (group_cpu_seconds(server_pgid) if server_pgid else None), time.process_time()
    for thread in threads:
        thread.join(timeout=warmup + duration + 120)
    samples = [s for t in threads for s in t.samples]
    ok = [s for s in samples if s.error is None]
    errors: dict[str, int] = {}
    for sample in samples:
        if sample.error:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    latencies = [s.latency_ms for s in ok]

    def split(key: str) -> dict:
        values = [float(s.timings.get(key, 0.0)) for s in ok]
        return {"mean": statistics.fmean(values) if values else float("nan"), "p50": percentile(values, 50),
                "p99": percentile(values, 99)}

    http_overhead = [s.latency_ms - float(s.timings.get("total", 0.0)) for s in ok]
    in_window = sum(1 for s in samples if s.error is None and s.started + s.latency_ms / 1000 <= stop_at) or 1
    server_cpu = (None if cpu_before[0] is None or cpu_after[0] is None
                  else 1000 * (cpu_after[0] - cpu_before[0]) / in_window)
    return {
        "clients": clients,
        "target_rate": rate or None,
        "duration_s": duration,
        "requests": len(samples),
        "answers": len(ok),
        "errors": errors,
        "cache_hits": sum(1 for s in ok if s.cached) / len(ok) if ok else 0.0,
        "throughput": len(ok) / duration,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                       "p99": percentile(latencies, 99), "max": max(latencies, default=float("nan")),
                       "mean": statistics.fmean(latencies) if latencies else float("nan")},
        "split_ms": {"embed": split("embed"), "search": split("search"), "read": split("read"),
                     "server_total": split("total"),
                     "http": {"mean": statistics.fmean(http_overhead) if http_overhead else float("nan"),
                              "p50": percentile(http_overhead, 50), "p99": percentile(http_overhead, 99)}},
        # CPU per answer, whatever else runs on the machine: server (all its processes) and this client.
        "cpu_ms_per_answer": {"server": server_cpu, "client": 1000 * (cpu_after[1] - cpu_before[1]) / in_window},
        "load_average": os.getloadavg()[0],
    }


def print_report(result: dict) -> None:
    lat, split = result["latency_ms"], result["split_ms"]
    rate = f"{result['target_rate']:g}/s" if result["target_rate"] else "as fast as answered"
    print(f"\n== {result['clients']} client(s), {result['duration_s']:g} s, rate: {rate}")
    print(f"   answers {result['answers']}  errors {sum(result['errors'].values())} {result['errors'] or ''}")
    print(f"   throughput {result['throughput']:.1f} answers/s   answered from the cache: {100 * result['cache_hits']:.0f}%")
    print(f"   latency ms  p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}"
          f"  mean {lat['mean']:.1f}")
    mean_latency = lat["mean"] or float("nan")
    print("   where the time goes (mean ms, share of client latency; p50, p99;"
          " embed includes waiting for a core when more questions are in flight than cores):")
    for key in ("embed", "search", "read", "http"):
        part = split[key]
        print(f"     {key:<8} {part['mean']:7.2f}  {100 * part['mean'] / mean_latency:5.1f}%"
              f"   p50 {part['p50']:7.2f}   p99 {part['p99']:7.2f}")
    cpu = result["cpu_ms_per_answer"]
    server_cpu = f"server {cpu['server']:.1f}" if cpu["server"] is not None else "server ? (not started here)"
    print(f"   CPU ms per answer: {server_cpu}, client {cpu['client']:.1f}"
          f"   (machine load average {result['load_average']:.1f} on {os.cpu_count()} cores)")


def group_cpu_seconds(pgid: int) -> float | None:
    """CPU time (user + system) used so far by the processes of a process group (the server and its workers)."""
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
    return total if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_health(host: str, port: int, timeout: float) -> dict:
    """The server's /health report (a 503 has one too). OSError, HTTPException or ValueError when there is none."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--workers", str(args.workers)]
    if args.index:
        command += ["--index", str(args.index)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if args.no_cache:
        env["QA_ANSWER_CACHE_SIZE"] = "0"
    log = open(args.server_log, "wb") if args.server_log else subprocess.DEVNULL
    server = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"qa serve exited with {server.returncode}" +
                             (f"; see {args.server_log}" if args.server_log else "; run with --server-log FILE"))
        try:
            health = read_health("127.0.0.1", port, timeout=5)
            if health.get("status") == "ok":
                return server, url
            stop_server(server)
            raise SystemExit(f"the server has no index: {health.get('detail')} (run `qa index` first)")
        except (OSError, ValueError, http.client.HTTPException):
            time.sleep(0.5)
    server.kill()
    raise SystemExit("qa serve did not come up within 300 s")


def stop_server(server: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def server_problem(url: str) -> str | None:
    """Why the server at `url` cannot be loaded (not reachable, not this service, no index), or None."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return f"--url must look like http://HOST:PORT, not {url!r}"
    try:
        health = read_health(parts.hostname, parts.port or 80, timeout=10)
    except (OSError, http.client.HTTPException) as exc:
        return f"cannot reach {url}: {getattr(exc, 'strerror', None) or exc}"
    except ValueError:
        return f"{url}/health did not answer with JSON: is it a qa serve?"
    if health.get("status") != "ok":
        return f"the server at {url} cannot answer: {health.get('detail')}"
    return None


def refused(url: str, method: str, top_k: int, question: str) -> str | None:
    """The server's reason when it refuses the requests this run would send (a 4xx), or None."""
    parts = urlsplit(url)
    client = Client(url, 0, [question], None, 0.0, 0.0, 0.0, 0.0, method, top_k)
    try:
        status, payload = client._request(question)
    except (OSError, http.client.HTTPException):
        return None  # not a refusal: the run itself counts connection errors
    finally:
        if client.connection is not None:
            client.connection.close()
    if not 400 <= status < 500:
        return None
    try:
        detail = json.loads(payload).get("detail")
    except (ValueError, AttributeError):
        detail = payload[:200].decode("utf-8", "replace")
    return f"{parts.hostname}:{parts.port} refuses these requests (HTTP {status}): {detail}"


def main(argv: list[str] | None = None) -> int:
    parser = command_line(__doc__)
    parser.add_argument("--url", help="Server to load; without it `qa serve` is started on a free port")
    parser.add_argument("--index", type=Path, help="Index folder for the started server (default: qa's default)")
    parser.add_argument("--workers", type=at_least_one, default=1, help="Workers of the started server (default 1)")
    parser.add_argument("--no-cache", action="store_true",
                        help="Start the server with its answer cache off, so every request embeds, searches and "
                             "reads (the cost of questions never asked before)")
    parser.add_argument("--server-log", type=file_to_write, help="Write the started server's output here")
    parser.add_argument("--clients", type=counts, default="1,8",
                        help="Client counts to run one after the other (default 1,8)")
    parser.add_argument("--duration", type=positive_number, default=60.0, help="Measured seconds per run (default 60)")
    parser.add_argument("--warmup", type=zero_or_more, default=3.0,
                        help="Unmeasured seconds before each run (default 3)")
    parser.add_argument("--rate", type=zero_or_more, default=0.0,
                        help="Requests per second from all clients together; 0 = each client as fast as answered")
    parser.add_argument("--method", choices=["POST", "GET"], default="POST", help="how /ask is called")
    parser.add_argument("--top-k", type=int, default=5, help="top_k of every request")
    parser.add_argument("--questions", type=existing_file,
                        help="A file with one question a line (default: built-in list)")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON too")
    args = parser.parse_args(argv)

    questions = QUESTIONS
    if args.questions:
        questions = [q.strip() for q in args.questions.read_text(encoding="utf-8").splitlines() if q.strip()]
    if not questions:
        parser.error(f"{args.questions} holds no questions: give a file with one question a line")

    if args.url and args.no_cache:
        parser.error("--no-cache applies to a server started here; start yours with QA_ANSWER_CACHE_SIZE=0")
    if args.url and args.server_log:
        parser.error("--server-log applies to a server started here; yours writes its output where you started it")
    server = None
    url = args.url
    if url:
        problem = server_problem(url)
        if problem:
            print(f"load: {problem}", file=sys.stderr)
            return 2
    else:
        server, url = start_server(args)
        print(f"started qa serve --workers {args.workers} at {url}" + (" (answer cache off)" if args.no_cache else ""))
    try:
        problem = refused(url, args.method, args.top_k, questions[0])
        if problem:
            print(f"load: {problem}", file=sys.stderr)
            return 2
        results = []
        for clients in args.clients:
            result = run_load(url, clients, args.duration, args.rate, args.warmup, questions, args.method, args.top_k,
                              server.pid if server is not None else None)
            results.append(result)
            print_report(result)
        if args.json:
            print(json.dumps(results, indent=2))
    finally:
        if server is not None:
            stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
