"""Server time of the timeline: `python benchmarks/timeline.py [--requests 200]`.

Serves the index in QA_INDEX_DIR (default index/) in process and times GET /timeline and GET /api/timeline,
unfiltered and filtered, from the request to the last byte. The first request also builds the timeline from
the loaded index (once per index generation); it is reported on its own.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fastapi.testclient import TestClient

from qa.api import create_app
from qa.config import Settings


def timed(client: TestClient, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with TestClient(create_app(Settings())) as client:
        events = None
        first = timed(client, "/timeline")
        events = client.get("/api/timeline").json()["total"]
        print(f"{events} events; first /timeline (builds the timeline): {first:.1f} ms")
        article = client.get("/api/sources").json()[0]["doc_id"]
        for url in ("/timeline", "/api/timeline", f"/timeline?article={article}&from=1990&to=2010"):
            times = sorted(timed(client, url) for _ in range(args.requests))
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{url[:60]:<60} p50 {statistics.median(times):6.2f} ms  p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
